"""bench/metrics.py on a hand-computed example (and, where available, agreement with the
peer harness's own metric functions in ../shared/bench/peers)."""

from __future__ import annotations

import importlib.util
import math
import os
import random
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent


def _load(name, path):
    spec = importlib.util.spec_from_file_location(name, path)
    mod = importlib.util.module_from_spec(spec)
    sys.modules[name] = mod
    spec.loader.exec_module(mod)
    return mod


# bench/ is a folder of scripts, not a package: load its metrics module under a unique name.
metrics = _load("oimsearch_bench_metrics", REPO / "bench" / "metrics.py")

# Hand-computed example. Ranks start at 1; gain = 2^grade - 1; discount = log2(rank + 1).
#
# q1: ranking a b c d e; judged c=2, e=1, x=3 (x never retrieved), b=0 (judged not relevant).
#   MRR@10      first relevant is c, rank 3                                    -> 1/3
#   DCG@10      c: (2^2-1)/log2(4) = 3/2               = 1.5
#               e: (2^1-1)/log2(6) = 1/2.5849625       = 0.3868528             -> 1.8868528
#   IDCG@10     all judged grades, best first: 3, 2, 1
#               7/log2(2) + 3/log2(3) + 1/log2(4) = 7 + 1.8927893 + 0.5        -> 9.3927893
#   nDCG@10     1.8868528 / 9.3927893                                          -> 0.2008831
#   Recall@100  {c, e} of {c, e, x}                                            -> 2/3
#   Recall@3    {c} of {c, e, x}                                               -> 1/3
# q2: ranking x y; judged y=1.
#   MRR@10 1/2; DCG 1/log2(3) = 0.6309298; IDCG 1/log2(2) = 1; nDCG 0.6309298; Recall 1
# q3: no hit at all; judged z=2.                     MRR 0, nDCG 0, Recall 0
# q4: only a grade-0 judgment -> not a judged query, left out of every average.
# q5: no judgment -> left out.
#
# Averages over the 3 judged queries q1 q2 q3:
#   MRR@10      (1/3 + 1/2 + 0) / 3          = 0.8333333 / 3 = 0.2777778
#   nDCG@10     (0.2008831 + 0.6309298 + 0) / 3 = 0.8318129 / 3 = 0.2772710
#   Recall@100  (2/3 + 1 + 0) / 3            = 1.6666667 / 3 = 0.5555556
# Topics: q1, q2 in t1; q3 in t2 (macro = mean over topics of the topic means):
#   nDCG topic-macro  ((0.2008831 + 0.6309298) / 2 + 0) / 2 = 0.4159064 / 2 = 0.2079532
#   MRR topic-macro   ((1/3 + 1/2) / 2 + 0) / 2   = 0.4166667 / 2 = 0.2083333
# Subset paraphrase=true: q2 only -> MRR 0.5, nDCG 0.6309298, Recall 1.

RUNS = {"q1": ["a", "b", "c", "d", "e"], "q2": ["x", "y"], "q4": ["a"], "q5": ["a"]}
QRELS = {
    "q1": {"c": 2, "e": 1, "x": 3, "b": 0},
    "q2": {"y": 1},
    "q3": {"z": 2},
    "q4": {"a": 0},
}
QUERIES = [
    {"qid": "q1", "query": "un", "topic": "t1", "paraphrase": False},
    {"qid": "q2", "query": "deux", "topic": "t1", "paraphrase": True},
    {"qid": "q3", "query": "trois", "topic": "t2"},
    {"qid": "q4", "query": "quatre", "topic": "t3"},
    {"qid": "q5", "query": "cinq", "topic": "t3"},
]


def approx(x):
    return pytest.approx(x, abs=1e-7)


def test_mrr():
    assert metrics.mrr_at_k(RUNS["q1"], QRELS["q1"], 10) == approx(1 / 3)
    assert metrics.mrr_at_k(RUNS["q1"], QRELS["q1"], 2) == 0.0  # c is below the cut-off
    assert metrics.mrr_at_k(["b"], QRELS["q1"], 10) == 0.0  # grade 0 is not relevant
    assert metrics.mrr_at_k([], QRELS["q1"], 10) == 0.0


def test_dcg_and_ndcg():
    assert metrics.dcg([0, 0, 2, 0, 1]) == approx(1.8868528)
    assert metrics.dcg([3, 2, 1]) == approx(9.3927893)
    assert metrics.ndcg_at_k(RUNS["q1"], QRELS["q1"], 10) == approx(0.2008831)
    assert metrics.ndcg_at_k(RUNS["q2"], QRELS["q2"], 10) == approx(0.6309298)
    assert metrics.ndcg_at_k(["x", "c", "e"], QRELS["q1"], 10) == approx(1.0)  # ideal order
    # The ideal is cut at k too: top 1 = c (gain 3) against the best grade 3 (gain 7).
    assert metrics.ndcg_at_k(["c", "x"], QRELS["q1"], 1) == approx(3 / 7)
    assert metrics.ndcg_at_k(RUNS["q1"], QRELS["q1"], 2) == 0.0
    assert metrics.ndcg_at_k(["a"], {"a": 0}, 10) == 0.0  # nothing relevant: 0, no error


def test_recall():
    assert metrics.recall_at_k(RUNS["q1"], QRELS["q1"], 100) == approx(2 / 3)
    assert metrics.recall_at_k(RUNS["q1"], QRELS["q1"], 3) == approx(1 / 3)
    assert metrics.recall_at_k(RUNS["q1"], {}, 100) == 0.0


def test_evaluate_averages_topics_and_subsets():
    out = metrics.evaluate(RUNS, QRELS, QUERIES)
    assert out["queries"] == 3  # q1 q2 q3; q4 (grade 0 only) and q5 (unjudged) left out
    assert out["mrr@10"] == approx(0.2777778)
    assert out["ndcg@10"] == approx(0.2772710)
    assert out["recall@100"] == approx(0.5555556)
    assert out["topics"] == 2
    assert out["ndcg@10_topic_macro"] == approx(0.2079532)
    assert out["mrr@10_topic_macro"] == approx(0.2083333)
    sub = out["subsets"]["paraphrase=true"]
    assert sub["queries"] == 1
    assert sub["mrr@10"] == approx(0.5)
    assert sub["ndcg@10"] == approx(0.6309298)
    assert sub["recall@100"] == approx(1.0)


def test_evaluate_edge_cases():
    assert metrics.evaluate({}, {}, QUERIES) is None
    # A docid listed twice counts once: y y -> y alone, nDCG 1, not 1 + 0.63.
    out = metrics.evaluate({"q2": ["y", "y"]}, QRELS, [QUERIES[1]])
    assert out["ndcg@10"] == approx(1.0)
    assert "topics" in out and "subsets" in out
    plain = metrics.evaluate({"q2": ["y"]}, QRELS, [{"qid": "q2", "query": "deux"}])
    assert "topics" not in plain and "subsets" not in plain


def test_percentile_nearest_rank():
    assert metrics.percentile([5, 1, 4, 2, 3], 50) == 3  # rank ceil(2.5) = 3 of 1 2 3 4 5
    assert metrics.percentile([5, 1, 4, 2, 3], 95) == 5  # rank ceil(4.75) = 5
    assert metrics.percentile([5, 1, 4, 2, 3], 0) == 1
    assert metrics.percentile(list(range(1, 21)), 95) == 19  # rank ceil(19.0) = 19
    assert metrics.percentile([7.0], 95) == 7.0
    assert math.isnan(metrics.mean([]))


def test_run_file_round_trip(tmp_path):
    p = tmp_path / "run.tsv"
    p.write_text("q1\tc\t2\t1.5\nq1\ta\t1\t2.0\nq2\tz\t1\n\n", encoding="utf-8")
    assert metrics.read_run(str(p)) == {"q1": ["a", "c"], "q2": ["z"]}
    r = tmp_path / "qrels.tsv"
    r.write_text("q1\tc\t2\nq1\tx\t0\n", encoding="utf-8")
    assert metrics.load_qrels(str(r)) == {"q1": {"c": 2, "x": 0}}


def _peer_metrics():
    peers = Path(os.environ.get("OIMSEARCH_PEERS_DIR", REPO.parent / "shared/bench/peers"))
    path = peers / "benchlib" / "metrics.py"
    if not path.exists():
        pytest.skip(f"peer harness not found at {peers}")
    return _load("peer_bench_metrics", path)


def test_agrees_with_peer_harness_metrics():
    """The peers' benchlib/metrics.py defines the same metrics: same values on random runs."""
    peer = _peer_metrics()
    rng = random.Random(7)
    docs = [f"d{i}" for i in range(60)]
    for _ in range(300):
        rels = {d: rng.choice([0, 1, 2, 3, 4, 5]) for d in rng.sample(docs, rng.randint(1, 15))}
        ranked = rng.sample(docs, rng.randint(0, 40))
        for k in (1, 3, 10):
            assert metrics.mrr_at_k(ranked, rels, k) == peer.mrr_at_k(ranked, rels, k)
            assert metrics.ndcg_at_k(ranked, rels, k) == approx(peer.ndcg_at_k(ranked, rels, k))
        assert metrics.recall_at_k(ranked, rels, 30) == approx(peer.recall_at_k(ranked, rels, 30))
    values = [rng.random() for _ in range(37)]
    for p in (0, 50, 95, 100):
        assert metrics.percentile(values, p) == peer.percentile(values, p)


def test_smoke_run(tmp_path):
    """CI's only benchmark run: bench/run.py --smoke on the sample corpus (a few seconds)."""
    import json
    import subprocess

    examples = REPO / "examples"
    if not examples.is_dir() or not any(p.is_file() for p in examples.rglob("*")):
        pytest.skip("no sample corpus in examples/")
    out = tmp_path / "smoke.json"
    p = subprocess.run(
        [sys.executable, str(REPO / "bench" / "run.py"), "--corpus", str(examples), "--smoke"]
        + ["--cold-runs", "1", "--out", str(out)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert p.returncode == 0, p.stdout + p.stderr
    assert "| oimsearch |" in p.stdout
    res = json.loads(out.read_text(encoding="utf-8"))
    (row,) = res["engines"]
    assert row["docs"] > 0 and row["build_s"] > 0 and row["index_bytes"] > 0
    ri = row["reindex"]["report"]
    assert ri["added"] == ri["updated"] == ri["removed"] == 0  # the second run changes nothing
    assert row["latency_ms"]["p50"] > 0 and row["queries_timed"] == res["queries_count"] > 0
    assert (tmp_path / "smoke.md").exists()
