"""Analyzer throughput: oimsearch's stemmed and exact chains vs Whoosh's ``LanguageAnalyzer("fr")``.

Reads the ``body`` of every document of a JSONL(.gz) corpus (default: the 69.7 M-character
``fr-codes-juridiques`` corpus), then, in one process, runs each analyzer over exactly the same
texts the way indexing does (``positions=True, chars=True``, token generator fully consumed) and
reports characters/s and tokens/s. Each timed pass starts with a cold per-process cache: the
oimsearch memo dicts are cleared and the stock analyzer is a fresh instance (its ``StemFilter``
LRU cache is per instance). A second, warm pass is also reported for information.

Usage::

    python bench/analyzer_speed.py [--corpus PATH] [--limit-docs N] [--out PATH]

Prints a Markdown table (ratio = time of the stock analyzer / time of the chain, so > 1 means
faster than stock) and writes the figures as JSON to ``--out``.
"""

from __future__ import annotations

import argparse
import gc
import gzip
import importlib.metadata
import json
import platform
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

DEFAULT_CORPUS = ROOT.parent / "shared" / "corpora" / "fr-codes-juridiques" / "docs.jsonl.gz"
DEFAULT_OUT = ROOT / "bench" / "results" / "analyzer_speed.json"


def read_bodies(path: Path, limit: int | None) -> list[str]:
    """The non-empty ``body`` fields of the first ``limit`` documents (all if None)."""
    opener = gzip.open if path.suffix == ".gz" else open
    bodies: list[str] = []
    with opener(path, "rt", encoding="utf-8") as f:
        for line in f:
            if limit is not None and len(bodies) >= limit:
                break
            body = json.loads(line).get("body") or ""
            if body:
                bodies.append(body)
    return bodies


def time_pass(analyzer: Callable[..., Iterator[Any]], texts: list[str]) -> tuple[float, int]:
    """Seconds to analyse every text (generator fully consumed) and the number of tokens."""
    tokens = 0
    gc.collect()
    gc.disable()
    try:
        start = time.perf_counter()
        for text in texts:
            for _ in analyzer(text, positions=True, chars=True, mode="index"):
                tokens += 1
        elapsed = time.perf_counter() - start
    finally:
        gc.enable()
    return elapsed, tokens


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--corpus", type=Path, default=DEFAULT_CORPUS, help="JSONL(.gz) corpus")
    parser.add_argument("--limit-docs", type=int, default=None, help="only the first N documents")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="JSON results path")
    args = parser.parse_args(argv)

    from whoosh.analysis import LanguageAnalyzer

    from oimsearch import analysis

    texts = read_bodies(args.corpus, args.limit_docs)
    chars = sum(len(t) for t in texts)
    print(f"{len(texts):,} documents, {chars:,} characters from {args.corpus}", file=sys.stderr)

    def stemmed() -> Callable[..., Iterator[Any]]:
        analysis.clear_caches()
        return analysis.stemmed_analyzer()

    def exact() -> Callable[..., Iterator[Any]]:
        analysis.clear_caches()
        return analysis.exact_analyzer()

    def stock() -> Callable[..., Iterator[Any]]:
        return LanguageAnalyzer("fr")

    chains: list[tuple[str, Callable[[], Callable[..., Iterator[Any]]]]] = [
        ("stock LanguageAnalyzer('fr')", stock),
        ("oimsearch stemmed", stemmed),
        ("oimsearch exact", exact),
    ]
    rows: list[dict[str, Any]] = []
    for name, make in chains:
        analyzer = make()  # cold: fresh caches
        cold_s, tokens = time_pass(analyzer, texts)
        warm_s, _ = time_pass(analyzer, texts)  # same instance, caches now warm
        rows.append(
            {
                "analyzer": name,
                "seconds": round(cold_s, 3),
                "tokens": tokens,
                "chars_per_s": round(chars / cold_s),
                "tokens_per_s": round(tokens / cold_s),
                "warm_seconds": round(warm_s, 3),
                "warm_chars_per_s": round(chars / warm_s),
            }
        )
        print(f"  {name}: {cold_s:.2f} s cold, {warm_s:.2f} s warm", file=sys.stderr)
    stock_s = rows[0]["seconds"]
    for row in rows:
        row["speedup_vs_stock"] = round(stock_s / row["seconds"], 2)

    print()
    print(f"{len(texts):,} documents, {chars:,} characters; cold per-process caches")
    print()
    print("| analyzer | time (s) | chars/s | tokens | tokens/s | × stock | warm time (s) |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        print(
            f"| {r['analyzer']} | {r['seconds']:.2f} | {r['chars_per_s']:,} | {r['tokens']:,} "
            f"| {r['tokens_per_s']:,} | {r['speedup_vs_stock']:.2f} | {r['warm_seconds']:.2f} |"
        )

    result = {
        "corpus": str(args.corpus),
        "documents": len(texts),
        "characters": chars,
        "analyzer_version": analysis.ANALYZER_VERSION,
        "python": platform.python_version(),
        "whoosh3": importlib.metadata.version("whoosh3"),
        "machine": platform.machine(),
        "results": rows,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    print(f"\nwrote {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
