"""Ranking metrics and latency percentiles of the benchmark (one code path for every engine).

``ranked`` is a list of docids, best first; ``rels`` maps docid -> grade, where a grade > 0
means relevant. Unjudged documents count as not relevant.

- MRR@k: reciprocal rank of the first relevant document in the top k, else 0.
- nDCG@k: DCG = sum over ranks r = 1..k of (2^grade - 1) / log2(r + 1); the ideal DCG sorts
  *all* the judged grades of the query (not only the retrieved ones) in decreasing order and
  cuts at k. A query with no relevant document scores 0 (it is never averaged in: see
  :func:`evaluate`).
- Recall@k: share of the query's relevant documents found in the top k.

:func:`evaluate` averages them over the judged queries, with per-topic macro averages when
queries carry a ``topic`` and the same metrics on each subset flagged by a boolean field
(``"paraphrase": true`` on fr-cnil-faq).

This file has no dependency outside the standard library; ``tests/test_bench_metrics.py``
checks it on a hand-computed example.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence


def mrr_at_k(ranked: Sequence[str], rels: Mapping[str, int], k: int = 10) -> float:
    for i, d in enumerate(ranked[:k]):
        if rels.get(d, 0) > 0:
            return 1.0 / (i + 1)
    return 0.0


def dcg(grades: Iterable[int]) -> float:
    """Exponential gain 2^g - 1, discount log2(rank + 1), ranks from 1."""
    return sum((2**g - 1) / math.log2(i + 2) for i, g in enumerate(grades) if g > 0)


def ndcg_at_k(ranked: Sequence[str], rels: Mapping[str, int], k: int = 10) -> float:
    ideal = dcg(sorted((g for g in rels.values() if g > 0), reverse=True)[:k])
    if ideal == 0:
        return 0.0
    return dcg(rels.get(d, 0) for d in ranked[:k]) / ideal


def recall_at_k(ranked: Sequence[str], rels: Mapping[str, int], k: int = 100) -> float:
    relevant = {d for d, g in rels.items() if g > 0}
    if not relevant:
        return 0.0
    return len(relevant.intersection(ranked[:k])) / len(relevant)


def percentile(values: Sequence[float], p: float) -> float:
    """Nearest-rank percentile (p in 0..100) of a non-empty sequence."""
    s = sorted(values)
    rank = max(1, math.ceil(p / 100.0 * len(s)))
    return s[rank - 1]


def mean(values: Iterable[float]) -> float:
    values = list(values)
    return sum(values) / len(values) if values else float("nan")


def dedupe(ranked: Iterable[str]) -> list[str]:
    """Keeps the first occurrence of each docid (a docid listed twice would count twice)."""
    seen: set[str] = set()
    out = []
    for d in ranked:
        if d not in seen:
            seen.add(d)
            out.append(d)
    return out


def per_query(
    runs: Mapping[str, Sequence[str]],
    qrels: Mapping[str, Mapping[str, int]],
    queries: Iterable[dict],
) -> dict[str, tuple[float, float, float]]:
    """qid -> (MRR@10, nDCG@10, Recall@100) for every query of ``queries`` that has a relevant
    judgment; a judged query missing from ``runs`` (no hit) scores 0 everywhere."""
    out = {}
    for q in queries:
        qid = q["qid"]
        rels = qrels.get(qid)
        if not rels or not any(g > 0 for g in rels.values()):
            continue
        ranked = dedupe(runs.get(qid, ()))
        out[qid] = (
            mrr_at_k(ranked, rels, 10),
            ndcg_at_k(ranked, rels, 10),
            recall_at_k(ranked, rels, 100),
        )
    return out


def summarize(scores: Mapping[str, tuple[float, float, float]], qids: Iterable[str]) -> dict | None:
    qids = [q for q in qids if q in scores]
    if not qids:
        return None
    return {
        "queries": len(qids),
        "mrr@10": mean(scores[q][0] for q in qids),
        "ndcg@10": mean(scores[q][1] for q in qids),
        "recall@100": mean(scores[q][2] for q in qids),
    }


def evaluate(
    runs: Mapping[str, Sequence[str]],
    qrels: Mapping[str, Mapping[str, int]],
    queries: Sequence[dict],
) -> dict | None:
    """Macro averages over the judged queries (each query counts once).

    Adds ``topics``, ``ndcg@10_topic_macro`` and ``mrr@10_topic_macro`` (mean over topics of
    the mean over the topic's queries) when queries have a ``topic``, and ``subsets``
    (``"FIELD=true"`` -> the same summary) for each boolean field of the queries.
    """
    scores = per_query(runs, qrels, queries)
    out = summarize(scores, scores)
    if out is None:
        return None
    topics: dict[str, list[str]] = {}
    for q in queries:
        if "topic" in q and q["qid"] in scores:
            topics.setdefault(q["topic"], []).append(q["qid"])
    if topics:
        out["topics"] = len(topics)
        out["ndcg@10_topic_macro"] = mean(mean(scores[q][1] for q in qs) for qs in topics.values())
        out["mrr@10_topic_macro"] = mean(mean(scores[q][0] for q in qs) for qs in topics.values())
    flags = sorted({k for q in queries for k, v in q.items() if isinstance(v, bool)})
    subsets = {}
    for k in flags:
        s = summarize(scores, [q["qid"] for q in queries if q.get(k) is True])
        if s:
            subsets[f"{k}=true"] = s
    if subsets:
        out["subsets"] = subsets
    return out


def read_run(path: str) -> dict[str, list[str]]:
    """A run file: ``qid<TAB>docid<TAB>rank[<TAB>score]`` lines -> qid -> docids by rank."""
    rows: dict[str, list[tuple[int, str]]] = {}
    with open(path, encoding="utf-8") as f:
        for line in f:
            parts = line.rstrip("\n").split("\t")
            if len(parts) < 3:
                continue
            rows.setdefault(parts[0], []).append((int(parts[2]), parts[1]))
    return {q: [d for _, d in sorted(r)] for q, r in rows.items()}


def load_qrels(path: str) -> dict[str, dict[str, int]]:
    """``qid<TAB>docid<TAB>grade`` -> qid -> {docid: grade}."""
    qrels: dict[str, dict[str, int]] = {}
    with open(path, encoding="utf-8") as f:
        for line in f:
            parts = line.rstrip("\n").split("\t")
            if len(parts) >= 3:
                qrels.setdefault(parts[0], {})[parts[1]] = int(parts[2])
    return qrels
