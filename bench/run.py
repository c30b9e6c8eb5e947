#!/usr/bin/env python3
"""oimsearch beside its peers: speed and ranking quality, one command, one run.

    python bench/run.py --corpus DIR [--peers oimsearch,tantivy,fts5,bm25s,whoosh-naive,whoosh-fr]
                        [--query-sample N] [--limit-docs N] [--variant NAME=JSON ...]
    python bench/run.py --corpus examples --smoke        # CI: oimsearch only, seconds

DIR is a corpus folder in the format of ../shared/corpora (docs.jsonl.gz, optional
queries.jsonl + qrels.tsv). Every engine runs in its own child process, one after the other,
on the same documents and queries. The peers (tantivy, SQLite FTS5, bm25s, stock Whoosh) are
the adapters of the shared harness (../shared/bench/peers, or --peers-dir), measured by its
own worker; oimsearch is one more adapter (bench/oimsearch_peer.py) measured by that same
worker, plus what only oimsearch has: a second, no-change `index` run, the real CLI's cold
query (`oimsearch query "<q>" --json --index DIR`, a fresh process), `oimsearch --help`, and
ranking variants (--variant) run on the same index. Every engine's top-100 run lists are
scored here by bench/metrics.py (MRR@10, nDCG@10 with gain 2^g-1, Recall@100, topic macro).

Writes bench/results/NAME.json and NAME.md (NAME = corpus folder name, or --name) and prints
the table. See bench/README.md.
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

BENCH_DIR = os.path.dirname(os.path.abspath(__file__))
REPO_DIR = os.path.dirname(BENCH_DIR)
if BENCH_DIR not in sys.path:
    sys.path.insert(0, BENCH_DIR)

import metrics  # noqa: E402
import peers_bridge  # noqa: E402

DEFAULT_ENGINES = "oimsearch,tantivy,fts5,bm25s,whoosh-naive,whoosh-fr"
OURS = "oimsearch"


# ----------------------------------------------------------------------------- small helpers


def _proc_status_mb(key: str) -> float | None:
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(key + ":"):
                    return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    return None


def peak_rss_mb() -> float | None:
    """VmHWM of this process (the harness's measure; ru_maxrss survives fork+exec)."""
    return _proc_status_mb("VmHWM")


def dir_size(path: str) -> int:
    total = 0
    for root, _, names in os.walk(path):
        for n in names:
            try:
                total += os.path.getsize(os.path.join(root, n))
            except OSError:
                pass
    return total


def load_queries(path: str) -> list[dict]:
    out = []
    with open(path, encoding="utf-8") as f:
        for line in f:
            if line.strip():
                q = json.loads(line)
                q["qid"] = str(q["qid"])
                out.append(q)
    return out


def wall_of(cmd: list[str], timeout: float = 120, ok=(0,)) -> tuple[float, str]:
    """Wall time of a fresh process, and its stdout; raises if its exit code is not in ``ok``."""
    t0 = time.perf_counter()
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, cwd=REPO_DIR)
    wall = time.perf_counter() - t0
    if p.returncode not in ok:
        raise RuntimeError(
            "%s failed (exit %d): %s" % (cmd[:3], p.returncode, p.stderr.strip()[-1500:])
        )
    return wall, p.stdout


def oimsearch_cli() -> list[str]:
    """The installed console script beside this interpreter, else ``python -m oimsearch``."""
    exe = os.path.join(os.path.dirname(sys.executable), "oimsearch")
    if os.path.exists(exe):
        return [exe]
    found = shutil.which("oimsearch")
    return [found] if found else [sys.executable, "-m", "oimsearch"]


def machine_info() -> dict:
    cpu = None
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next(
                (ln.split(":", 1)[1].strip() for ln in f if ln.startswith("model name")), None
            )
    except OSError:
        pass
    return {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
        "cpu_model": cpu,
        "loadavg_start": os.getloadavg(),
    }


def source_digest() -> dict:
    """Which oimsearch code was measured: git HEAD (if any) and a hash of oimsearch/*.py."""
    import hashlib

    h = hashlib.sha256()
    pkg = os.path.join(REPO_DIR, "oimsearch")
    for name in sorted(os.listdir(pkg)):
        if name.endswith(".py"):
            with open(os.path.join(pkg, name), "rb") as f:
                h.update(name.encode() + b"\0" + f.read())
    try:
        head = subprocess.run(
            ["git", "rev-parse", "HEAD"], capture_output=True, text=True, cwd=REPO_DIR
        ).stdout.strip()
    except OSError:
        head = ""
    return {"git_head": head or None, "oimsearch_py_sha256": h.hexdigest()[:16]}


def package_versions() -> dict:
    from importlib.metadata import PackageNotFoundError, version

    out = {}
    for p in ("oimsearch", "whoosh3", "Whoosh-Reloaded", "tantivy", "bm25s", "PyStemmer", "numpy"):
        try:
            out[p] = version(p)
        except PackageNotFoundError:
            out[p] = None
    import sqlite3

    out["sqlite3 (library)"] = sqlite3.sqlite_version
    return out


# ----------------------------------------------------------------------------- query runs


def record_runs(searcher, queries, qrels, runs_file=None, k=100) -> dict[str, list[str]]:
    """Runs every judged query with k=100; writes ``qid docid rank score`` lines."""
    runs = {}
    out = open(runs_file, "w", encoding="utf-8") if runs_file else None
    try:
        for q in queries:
            rels = qrels.get(q["qid"])
            if not rels or not any(g > 0 for g in rels.values()):
                continue
            hits = searcher.search(q["query"], k)
            runs[q["qid"]] = [d for d, _ in hits]
            if out:
                for i, (d, s) in enumerate(hits):
                    out.write("%s\t%s\t%d\t%r\n" % (q["qid"], d, i + 1, float(s)))
    finally:
        if out:
            out.close()
    return runs


def make_evaluate(peer_metrics):
    """Replacement for the harness's ``evaluate``: full top-100 run file (scored later by
    bench/metrics.py in the orchestrator) and, as a cross-check, the harness's own means."""

    def evaluate(searcher, queries, qrels, runs_file=None):
        runs = record_runs(searcher, queries, qrels, runs_file)
        if not runs:
            return None
        per = [
            (
                peer_metrics.mrr_at_k(r, qrels[q], 10),
                peer_metrics.ndcg_at_k(r, qrels[q], 10),
                peer_metrics.recall_at_k(r, qrels[q], 100),
            )
            for q, r in runs.items()
        ]
        return {
            "queries": len(per),
            "mrr@10": metrics.mean(p[0] for p in per),
            "ndcg@10": metrics.mean(p[1] for p in per),
            "recall@100": metrics.mean(p[2] for p in per),
            "scored_by": "harness benchlib.metrics, in the worker (cross-check)",
        }

    return evaluate


def time_queries(searcher, queries, warmup: int) -> dict:
    """The harness's latency protocol: ``warmup`` queries, then every query once with k=10."""
    for q in queries[:warmup]:
        searcher.search(q["query"], 10)
    lat, hits, zero = [], 0, 0
    perf = time.perf_counter
    for q in queries:
        t0 = perf()
        r = searcher.search(q["query"], 10)
        lat.append(perf() - t0)
        hits += len(r)
        zero += not r
    out = {"queries_timed": len(lat)}
    if lat:
        out["latency_ms"] = {
            "p50": metrics.percentile(lat, 50) * 1e3,
            "p95": metrics.percentile(lat, 95) * 1e3,
            "mean": metrics.mean(lat) * 1e3,
            "max": max(lat) * 1e3,
        }
        out["mean_hits_at_10"] = hits / len(lat)
        out["zero_hit_queries"] = zero
    return out


# ----------------------------------------------------------------------------- oimsearch only


def measure_variant(name, settings, index_dir, queries, qrels, warmup, runs_file) -> dict:
    """One ranking configuration on the already built index: open, latency, run lists."""
    import oimsearch_peer
    from oimsearch_peer import OimsearchPeer

    oimsearch_peer.FAILED_QUERIES.clear()
    peer = OimsearchPeer(settings=settings)
    t0 = time.perf_counter()
    peer.open(index_dir)
    res = {"peer": "%s[%s]" % (OURS, name) if name else OURS, "variant": name, "settings": settings}
    res["open_s"] = time.perf_counter() - t0
    res.update(time_queries(peer, queries, warmup))
    if qrels is not None:
        record_runs(peer, queries, qrels, runs_file)
        res["runs_file"] = runs_file
    peer.close()
    res["query_errors"] = query_errors(oimsearch_peer.FAILED_QUERIES)
    return res


def query_errors(failed: dict) -> dict:
    """Queries Searcher.search rejected (they count as no hit), with a few examples."""
    return {"count": len(failed), "examples": dict(list(failed.items())[:5])}


def first_ok_query(queries, failed: dict) -> str | None:
    return next((q["query"] for q in queries if q["query"] not in failed), None)


def cli_cold(index_dir: str, query: str, runs: int) -> dict:
    """The real CLI, a fresh process: ``oimsearch query --json --index DIR -- "<q>"`` (exit 1
    = no hit is fine; ``--`` so that a query starting with ``-`` stays a query)."""
    cmd = oimsearch_cli() + ["query", "--json", "--index", index_dir, "--", query]
    walls, hits = [], None
    for _ in range(runs):
        wall, out = wall_of(cmd, ok=(0, 1))
        walls.append(wall)
        if hits is None:
            hits = _count_json_hits(out)
    return {
        "command": " ".join(cmd[:-1]) + " " + json.dumps(query, ensure_ascii=False),
        "query": query,
        "wall_ms_median": statistics.median(walls) * 1e3,
        "wall_ms_min": min(walls) * 1e3,
        "runs_ms": [w * 1e3 for w in walls],
        "hits": hits,
    }


def _count_json_hits(out: str):
    try:
        data = json.loads(out)
    except ValueError:
        return None
    if isinstance(data, list):
        return len(data)
    if isinstance(data, dict):
        for key in ("hits", "results"):
            if isinstance(data.get(key), list):
                return len(data[key])
    return None


def help_time(runs: int) -> dict:
    cmd = oimsearch_cli() + ["--help"]
    walls = [wall_of(cmd)[0] for _ in range(runs)]
    return {"wall_ms_median": statistics.median(walls) * 1e3, "runs_ms": [w * 1e3 for w in walls]}


def reindex_no_change(source: str, index_dir: str) -> dict:
    """A second `index` run over the same, unchanged source."""
    from oimsearch.indexer import index_paths

    t0 = time.perf_counter()
    report = index_paths([source], index_dir=index_dir, progress=False)
    wall = time.perf_counter() - t0
    d = report.to_dict() if hasattr(report, "to_dict") else dict(vars(report))
    d.pop("problems", None)
    return {"wall_s": wall, "report": d}


def cli_build(source: str, index_dir: str) -> dict:
    """The real ``oimsearch index SOURCE --rebuild`` as a fresh process: wall time and the
    largest peak RSS among its processes (``wait4``'s ``ru_maxrss``: the process and its writer
    sub-processes), i.e. what a user's build costs, without the harness worker's memory (the
    worker holds the corpus, and writer sub-processes forked from it count those pages too)."""
    cmd = oimsearch_cli() + ["index", source, "--index", index_dir, "--rebuild", "--quiet"]
    # stderr to a file, not a pipe: nobody reads a pipe until wait4 returns
    with tempfile.TemporaryFile() as errf:
        t0 = time.perf_counter()
        p = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=errf, cwd=REPO_DIR)
        _pid, status, ru = os.wait4(p.pid, 0)
        wall = time.perf_counter() - t0
        p.returncode = code = os.waitstatus_to_exitcode(status)
        errf.seek(0)
        err = errf.read().decode("utf-8", "replace")
    if code != 0:
        raise RuntimeError("%s failed (exit %d): %s" % (cmd[:3], code, err.strip()[-1500:]))
    shutil.rmtree(index_dir, ignore_errors=True)
    return {
        "command": " ".join(cmd),
        "wall_s": wall,
        "peak_rss_mb": ru.ru_maxrss / 1024.0,
        "cpu_s": ru.ru_utime + ru.ru_stime,
    }


def compile_package() -> bool:
    """Write oimsearch's bytecode (``__pycache__``), as a user's first run of an editable
    install, or ``pip install .``, does. This machine sets PYTHONDONTWRITEBYTECODE, so without
    it every cold process of the editable install would compile the package's source again."""
    import compileall

    import oimsearch

    return bool(compileall.compile_dir(os.path.dirname(oimsearch.__file__), quiet=1))


def oimsearch_extras(a, queries, qrels, failed: dict) -> dict:
    """What only oimsearch gets, in the same worker, after the common measures. ``failed``:
    the queries the main measures saw rejected; the CLI cold query is the first other one."""
    out = {"reindex": reindex_no_change(a.source, a.index_dir)}
    out["cli_build"] = cli_build(a.source, a.index_dir.rstrip("/") + "-cli")
    q = first_ok_query(queries, failed)
    if a.cold_runs > 0 and q is not None:
        out["cli_cold"] = cli_cold(a.index_dir, q, a.cold_runs)
    if a.cold_runs > 0:
        out["help"] = help_time(a.cold_runs)
    variants = json.loads(a.variants_json) if a.variants_json else []
    out["variants"] = []
    for name, settings in variants:
        runs_file = a.runs_file[: -len(".tsv")] + "[%s].tsv" % name if a.runs_file else None
        out["variants"].append(
            measure_variant(
                name, settings, a.index_dir, queries, qrels, a.variant_warmup, runs_file
            )
        )
    return out


def titles_from_index(index_dir: str, n: int) -> list[dict]:
    """Smoke queries: ``n`` stored titles spread over the index (by id, deterministic)."""
    from whoosh import index as windex

    from oimsearch.schema import read_manifest

    ix = windex.open_dir(index_dir, indexname=read_manifest(index_dir).indexname)
    with ix.searcher() as s:
        docs = sorted((f.get("id", ""), f.get("title") or "") for f in s.all_stored_fields())
    ix.close()
    docs = [(i, t) for i, t in docs if t.strip()]
    step = max(1, len(docs) // max(1, n))
    return [{"qid": "t%d" % (j + 1), "query": t} for j, (_, t) in enumerate(docs[::step][:n])]


COLD_CODE = """\
import time
t0 = time.perf_counter()
import json, sys
sys.path.insert(0, {bench!r})
from oimsearch_peer import OimsearchPeer
t1 = time.perf_counter()
p = OimsearchPeer()
p.open({index_dir!r})
t2 = time.perf_counter()
hits = p.search({query!r}, 10)
t3 = time.perf_counter()
hwm = next((int(l.split()[1]) / 1024.0 for l in open("/proc/self/status") if l.startswith("VmHWM:")), None)
print(json.dumps({{"import_s": t1 - t0, "open_s": t2 - t1, "query_s": t3 - t2, "hits": len(hits),
                  "peak_rss_mb": hwm}}))
"""


def native_worker(a) -> None:
    """oimsearch measured without the harness (smoke mode, or any folder of files): the
    same protocol as the harness's worker, our own code."""
    import oimsearch_peer
    from oimsearch_peer import OimsearchPeer, children_usage

    from oimsearch.indexer import index_paths

    res = {"peer": OURS, "native": True, "config": OimsearchPeer().describe()}
    res["source"] = source_digest()
    res["bytecode_compiled"] = compile_package()
    shutil.rmtree(a.index_dir, ignore_errors=True)
    res["rss_before_build_mb"] = _proc_status_mb("VmRSS")
    cpu0 = time.process_time()
    ccpu0, _ = children_usage()
    t0 = time.perf_counter()
    procs = os.environ.get("OIMSEARCH_BENCH_PROCS")
    report = index_paths(
        [a.source],
        index_dir=a.index_dir,
        rebuild=True,
        procs=int(procs) if procs else None,
        progress=False,
    )
    res["build_s"] = time.perf_counter() - t0
    res["build_cpu_s"] = time.process_time() - cpu0
    ccpu1, crss = children_usage()
    stats = report.to_dict() if hasattr(report, "to_dict") else dict(vars(report))
    stats["problems"] = len(getattr(report, "problems", []) or [])
    stats["children_cpu_s"] = ccpu1 - ccpu0
    stats["children_peak_rss_mb"] = crss if ccpu1 > ccpu0 else None
    res["build_stats"] = stats
    res["peak_rss_after_build_mb"] = peak_rss_mb()
    res["docs"] = report.documents
    res["docs_per_s"] = report.documents / res["build_s"] if res["build_s"] > 0 else None
    res["index_bytes"] = dir_size(a.index_dir)

    if a.queries_file:
        queries = load_queries(a.queries_file)
    else:
        queries = titles_from_index(a.index_dir, a.smoke_queries)
        res["smoke_queries"] = queries
    qrels = metrics.load_qrels(a.qrels_file) if a.qrels_file else None
    main = measure_variant(None, None, a.index_dir, queries, qrels, a.warmup, a.runs_file)
    res.update({k: v for k, v in main.items() if k not in ("peer", "variant", "settings")})
    failed = dict(oimsearch_peer.FAILED_QUERIES)
    res["peak_rss_mb"] = peak_rss_mb()
    if a.cold_runs > 0 and queries:
        code = COLD_CODE.format(bench=BENCH_DIR, index_dir=a.index_dir, query=queries[0]["query"])
        runs = []
        for _ in range(a.cold_runs):
            wall, out = wall_of([sys.executable, "-c", code])
            info = json.loads(out.strip().splitlines()[-1])
            info["wall_s"] = wall
            runs.append(info)
        res["cold"] = {
            "query": queries[0]["query"],
            "wall_ms_median": statistics.median(r["wall_s"] for r in runs) * 1e3,
            "import_ms_median": statistics.median(r["import_s"] for r in runs) * 1e3,
            "open_ms_median": statistics.median(r["open_s"] for r in runs) * 1e3,
            "query_ms_median": statistics.median(r["query_s"] for r in runs) * 1e3,
            "peak_rss_mb_median": statistics.median(r["peak_rss_mb"] or 0 for r in runs),
            "runs": runs,
        }
    res.update(oimsearch_extras(a, queries, qrels, failed))
    with open(a.worker_out, "w", encoding="utf-8") as f:
        json.dump(res, f, ensure_ascii=False, indent=1)


def harness_worker(a) -> None:
    """One engine through the harness's own worker (build, latency, runs, adapter cold start);
    for oimsearch, then the extras."""
    peers_run = peers_bridge.load_harness(a.peers_dir)
    peers_bridge.install_hooks(peers_run, a.peers_dir, a.worker, make_evaluate(peers_run.metrics))
    ns = argparse.Namespace(
        worker=a.worker,
        corpus=a.corpus,
        limit_docs=a.limit_docs,
        queries_file=a.queries_file,
        qrels_file=a.qrels_file,
        store_body=a.store_body,
        index_dir=a.index_dir,
        warmup=a.warmup,
        worker_out=a.worker_out,
        runs_file=a.runs_file,
        cold_runs=a.cold_runs,
    )
    digest = source_digest() if a.worker == OURS else None
    compiled = compile_package() if a.worker == OURS else None
    peers_run.worker(ns)
    if a.worker == OURS:
        with open(a.worker_out, encoding="utf-8") as f:
            res = json.load(f)
        res["source"] = digest
        res["bytecode_compiled"] = compiled
        queries = load_queries(a.queries_file)
        qrels = metrics.load_qrels(a.qrels_file) if a.qrels_file else None
        # the harness imported our adapter as benchlib.adapters.oimsearch_peer
        failed = dict(sys.modules["benchlib.adapters.oimsearch_peer"].FAILED_QUERIES)
        res["query_errors"] = query_errors(failed)
        if res.get("cold") and res["cold"].get("query") in failed:
            res["cold"]["query_failed"] = True
        res.update(oimsearch_extras(a, queries, qrels, failed))
        with open(a.worker_out, "w", encoding="utf-8") as f:
            json.dump(res, f, ensure_ascii=False, indent=1)


# ----------------------------------------------------------------------------- orchestrator


def parse_variants(a) -> list[tuple[str, dict]]:
    out = []
    for v in a.variant or []:
        name, sep, js = v.partition("=")
        if not sep or not name.strip():
            sys.exit("--variant wants NAME=JSON, got %r" % v)
        try:
            settings = json.loads(js)
        except ValueError as e:
            sys.exit("--variant %s: bad JSON: %s" % (name, e))
        if not isinstance(settings, dict):
            sys.exit("--variant %s: JSON must be an object" % name)
        out.append((name.strip(), settings))
    return out


def check_settings(data: dict) -> None:
    """Fails early (in the orchestrator) on settings RankingSettings does not accept."""
    try:
        from oimsearch_peer import make_settings

        make_settings(data)
    except ImportError:
        return
    except (TypeError, ValueError) as e:
        sys.exit("bad oimsearch settings %s: %s" % (json.dumps(data), e))


def doc_ids(path: str) -> set[str]:
    with gzip.open(path, "rt", encoding="utf-8") as f:
        return {str(json.loads(line)["id"]) for line in f if line.strip()}


def limited_source(corpus: str, limit: int, workdir: str) -> str:
    """The first ``limit`` documents of docs.jsonl.gz, written once, outside any timing."""
    out = os.path.join(workdir, "docs.jsonl.gz")
    n = 0
    with gzip.open(os.path.join(corpus, "docs.jsonl.gz"), "rt", encoding="utf-8") as src:
        with gzip.open(out, "wt", encoding="utf-8") as dst:
            for line in src:
                if line.strip():
                    dst.write(line)
                    n += 1
                    if n >= limit:
                        break
    return out


def run_engine(
    a, name, workdir, index_root, qfile, qrels_path, source, settings, variants, peers_dir
):
    idx = os.path.join(index_root, name)
    wout = os.path.join(workdir, name + ".json")
    runs_file = os.path.join(workdir, "runs", name + ".tsv")
    cmd = [
        sys.executable,
        os.path.abspath(__file__),
        "--worker",
        name,
        "--corpus",
        a.corpus,
        "--index-dir",
        idx,
        "--worker-out",
        wout,
        "--warmup",
        str(a.warmup),
        "--cold-runs",
        str(a.cold_runs),
        "--variant-warmup",
        str(a.variant_warmup),
        "--runs-file",
        runs_file,
    ]
    if qfile:
        cmd += ["--queries-file", qfile]
    if qrels_path:
        cmd += ["--qrels-file", qrels_path]
    if a.limit_docs:
        cmd += ["--limit-docs", str(a.limit_docs)]
    if a.store_body:
        cmd.append("--store-body")
    env = dict(os.environ)
    if peers_dir:
        cmd += ["--peers-dir", peers_dir]
    else:
        cmd.append("--native")
    if name == OURS:
        cmd += ["--source", source, "--variants-json", json.dumps(variants)]
        cmd += ["--smoke-queries", str(a.smoke_queries)]
        env["OIMSEARCH_BENCH_SOURCE"] = source
        env["OIMSEARCH_BENCH_SETTINGS"] = json.dumps(settings)
        if a.procs:
            env["OIMSEARCH_BENCH_PROCS"] = str(a.procs)
    load = os.getloadavg()
    t0 = time.perf_counter()
    print("  %-13s ..." % name, end=" ", flush=True)
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=a.peer_timeout, env=env)
        if proc.returncode != 0:
            r = {
                "peer": name,
                "error": "exit %d: %s" % (proc.returncode, proc.stderr.strip()[-3000:]),
            }
        else:
            with open(wout, encoding="utf-8") as f:
                r = json.load(f)
    except subprocess.TimeoutExpired:
        r = {"peer": name, "error": "timeout after %d s" % a.peer_timeout}
    r["worker_wall_s"] = time.perf_counter() - t0
    r["loadavg_before"] = load
    print(
        "%s (%.0f s)"
        % ("FAILED: " + r["error"].splitlines()[-1] if "error" in r else "ok", r["worker_wall_s"]),
        flush=True,
    )
    if not a.keep_indexes:
        shutil.rmtree(idx, ignore_errors=True)
    return r, runs_file


def score(row: dict, runs_file: str | None, qrels, queries) -> None:
    """Quality of one row from its run file, by bench/metrics.py; keeps the worker's
    cross-check figures (harness metrics on the same lists) and their largest difference."""
    if qrels is None or not runs_file or not os.path.exists(runs_file):
        return
    check = row.get("quality")
    row["quality"] = metrics.evaluate(metrics.read_run(runs_file), qrels, queries)
    if check and row["quality"]:
        row["quality_harness"] = check
        row["metrics_max_diff"] = max(
            abs(row["quality"][k] - check[k]) for k in ("mrr@10", "ndcg@10", "recall@100")
        )


def orchestrate(a) -> dict:
    variants = parse_variants(a)
    settings = json.loads(a.oimsearch_settings) if a.oimsearch_settings else {}
    check_settings(settings)
    for _, s in variants:
        check_settings(s)
    engines = [p.strip() for p in a.peers.split(",") if p.strip()]
    peers_dir = None
    if a.smoke:
        engines = [OURS]
    else:
        peers_dir = peers_bridge.find_peers_dir(a.peers_dir)
        if peers_dir is None:
            sys.exit(
                "peer harness not found (looked for ../shared/bench/peers beside the repo); "
                "pass --peers-dir, or --smoke for oimsearch alone"
            )
        if not os.path.exists(os.path.join(a.corpus, "docs.jsonl.gz")):
            sys.exit("%s has no docs.jsonl.gz (use --smoke for a folder of files)" % a.corpus)
        peers_run = peers_bridge.load_harness(peers_dir)
        for p in engines:
            if p not in peers_run.ALL_PEERS:
                sys.exit("unknown engine %r; known: %s" % (p, ", ".join(peers_run.ALL_PEERS)))

    corpus_name = os.path.basename(os.path.normpath(a.corpus))
    suffix = ""
    if a.limit_docs:
        n = a.limit_docs
        suffix = ".%dk" % (n // 1000) if n % 1000 == 0 else ".%d" % n
    name = a.name or corpus_name + suffix
    workdir = tempfile.mkdtemp(prefix="oimsearch-bench-")
    os.makedirs(os.path.join(workdir, "runs"))
    index_root = a.index_root or os.path.join(workdir, "indexes")
    results = {
        "name": name,
        "corpus": corpus_name,
        "corpus_dir": os.path.abspath(a.corpus),
        "command": "python bench/run.py " + " ".join(sys.argv[1:]),
        "smoke": a.smoke,
        "limit_docs": a.limit_docs,
        "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "settings": {
            "warmup": a.warmup,
            "variant_warmup": a.variant_warmup,
            "cold_runs": a.cold_runs,
            "store_body": a.store_body,
            "k_latency": 10,
            "k_quality": 100,
            "seed": a.seed,
            "query_sample": a.query_sample,
        },
        "oimsearch": {"settings": settings, "variants": variants, "procs": a.procs or "auto"},
        "machine": machine_info(),
        "packages": package_versions(),
        "source": source_digest(),
        "peers_dir": peers_dir,
    }
    if a.smoke:
        qfile = qrels_path = None
        source = os.path.abspath(a.corpus)
        results.update(
            queries="%d document titles" % a.smoke_queries, queries_count=None, qrels=False
        )
        results["python_startup_ms"] = (
            statistics.median(wall_of([sys.executable, "-c", "pass"])[0] for _ in range(3)) * 1e3
        )
    else:
        qfile, qrels_path, origin, nq = peers_run.prepare_queries(a, workdir)
        source = os.path.join(os.path.abspath(a.corpus), "docs.jsonl.gz")
        if a.limit_docs:
            source = limited_source(a.corpus, a.limit_docs, workdir)
        results.update(queries=origin, queries_count=nq, qrels=bool(qrels_path))
        results["python_startup_ms"] = peers_run.python_startup_ms()
    print(
        "corpus %s  limit_docs=%s  queries: %s  qrels: %s  engines: %s"
        % (
            name,
            a.limit_docs,
            results["queries"],
            "yes" if results["qrels"] else "no",
            ",".join(engines),
        ),
        flush=True,
    )
    queries = load_queries(qfile) if qfile else []
    qrels = metrics.load_qrels(qrels_path) if qrels_path else None
    if qrels is not None and a.limit_docs:
        # as the harness's worker does: judgments of documents left out do not count
        present = doc_ids(source)
        qrels = {q: {d: g for d, g in r.items() if d in present} for q, r in qrels.items()}
    rows = []
    for p in engines:
        r, runs_file = run_engine(
            a, p, workdir, index_root, qfile, qrels_path, source, settings, variants, peers_dir
        )
        if "error" not in r:
            score(r, runs_file, qrels, queries)
            if a.smoke and r.get("smoke_queries"):
                results["queries_count"] = len(r["smoke_queries"])
        rows.append(r)
        for v in r.pop("variants", None) or []:
            score(v, v.get("runs_file"), qrels, queries)
            rows.append(v)
    results["engines"] = rows
    diffs = [r["metrics_max_diff"] for r in rows if "metrics_max_diff" in r]
    if diffs:
        results["metrics_check"] = {
            "what": "max |bench/metrics.py - harness benchlib.metrics| over engines and metrics",
            "max_abs_diff": max(diffs),
        }
    results["machine"]["loadavg_end"] = os.getloadavg()
    results["finished"] = time.strftime("%Y-%m-%dT%H:%M:%S%z")
    if a.runs_dir:
        os.makedirs(a.runs_dir, exist_ok=True)
        for f in os.listdir(os.path.join(workdir, "runs")):
            shutil.copy(os.path.join(workdir, "runs", f), os.path.join(a.runs_dir, name + "." + f))
    if a.keep_indexes:
        print("indexes, queries and run files kept in %s" % workdir)
    else:
        shutil.rmtree(workdir, ignore_errors=True)
    return results


# ----------------------------------------------------------------------------- tables


def fmt(v, spec: str) -> str:
    return "-" if v is None else format(v, spec)


def ratio(x, y):
    return x / y if (x is not None and y) else None


def fmt_ratio(v) -> str:
    """Ratios span 0.01 to 1000s: three significant figures at most."""
    if v is None:
        return "-"
    return format(v, ",.0f") if v >= 100 else format(v, ".1f") if v >= 10 else format(v, ".2f")


def delta(x, y):
    return x - y if (x is not None and y is not None) else None


def row_figures(p: dict) -> dict:
    """The table's figures for one engine row (None where not measured)."""
    lat = p.get("latency_ms") or {}
    q = p.get("quality") or {}
    bs = p.get("build_stats") or {}
    cpu = p.get("build_cpu_s")
    if cpu is not None and bs.get("children_cpu_s"):
        cpu += bs["children_cpu_s"]
    return {
        "build_s": p.get("build_s"),
        "docs_per_s": p.get("docs_per_s"),
        "cpu_s": cpu,
        "index_mb": p["index_bytes"] / 2**20 if p.get("index_bytes") is not None else None,
        "peak_rss_mb": p.get("peak_rss_mb"),
        "reindex_s": (p.get("reindex") or {}).get("wall_s"),
        "p50": lat.get("p50"),
        "p95": lat.get("p95"),
        "max": lat.get("max"),
        "zero": p.get("zero_hit_queries"),
        "qerr": (p.get("query_errors") or {}).get("count"),
        "cold_ms": (p.get("cold") or {}).get("wall_ms_median"),
        "cli_cold_ms": (p.get("cli_cold") or {}).get("wall_ms_median"),
        "mrr": q.get("mrr@10"),
        "ndcg": q.get("ndcg@10"),
        "r100": q.get("recall@100"),
        "topic": q.get("ndcg@10_topic_macro"),
    }


def render(results: dict) -> str:
    rows = results["engines"]
    docs = next((p.get("docs") for p in rows if p.get("docs")), None)
    m = results["machine"]
    la0, la1 = m.get("loadavg_start"), m.get("loadavg_end")
    head_line = (
        "%s: %s docs%s; queries: %s (%s); %s; %s cores, Python %s; load average %.1f at start, "
        "%.1f at end; python startup %.0f ms"
        % (
            results["name"],
            fmt(docs, ","),
            " (first %d)" % results["limit_docs"] if results.get("limit_docs") else "",
            results["queries"],
            results.get("queries_count") or "-",
            results["started"][:10],
            m.get("cpus"),
            m.get("python"),
            la0[0] if la0 else float("nan"),
            la1[0] if la1 else float("nan"),
            results.get("python_startup_ms") or float("nan"),
        )
    )
    qual = results.get("qrels")
    topics = any((p.get("quality") or {}).get("topics") for p in rows)
    qerr = any((p.get("query_errors") or {}).get("count") for p in rows)
    head = [
        "engine",
        "build s",
        "docs/s",
        "CPU s",
        "index MB",
        "peak RSS MB",
        "re-index s",
        "p50 ms",
        "p95 ms",
        "max ms",
        "0-hit q",
        "cold ms",
        "CLI cold ms",
    ]
    if qerr:
        head.insert(head.index("0-hit q") + 1, "query errors")
    if qual:
        head += ["MRR@10", "nDCG@10", "R@100"]
    if topics:
        head += ["nDCG@10 topic-macro"]
    lines = [head_line, "", "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for p in rows:
        if "error" in p:
            msg = p["error"].strip().splitlines()[-1][:150] if p["error"].strip() else "?"
            lines.append(
                "| %s | FAILED: %s |" % (p["peer"], msg.replace("|", "/")) + " |" * (len(head) - 2)
            )
            continue
        f = row_figures(p)
        row = [
            p["peer"],
            fmt(f["build_s"], ".2f"),
            fmt(f["docs_per_s"], ",.0f"),
            fmt(f["cpu_s"], ".2f"),
            fmt(f["index_mb"], ".2f"),
            fmt(f["peak_rss_mb"], ".0f"),
            fmt(f["reindex_s"], ".2f"),
            fmt(f["p50"], ".2f"),
            fmt(f["p95"], ".2f"),
            fmt(f["max"], ".2f"),
            fmt(f["zero"], "d"),
            fmt(f["cold_ms"], ".0f"),
            fmt(f["cli_cold_ms"], ".0f"),
        ]
        if qerr:
            row.insert(head.index("query errors"), fmt(f["qerr"], "d"))
        if qual:
            row += [fmt(f["mrr"], ".3f"), fmt(f["ndcg"], ".3f"), fmt(f["r100"], ".3f")]
        if topics:
            row += [fmt(f["topic"], ".3f")]
        lines.append("| " + " | ".join(row) + " |")

    subsets = sorted({s for p in rows for s in ((p.get("quality") or {}).get("subsets") or {})})
    for s in subsets:
        lines += [
            "",
            "subset %s:" % s,
            "",
            "| engine | queries | MRR@10 | nDCG@10 | R@100 |",
            "|---|---|---|---|---|",
        ]
        for p in rows:
            q = ((p.get("quality") or {}).get("subsets") or {}).get(s)
            if q:
                lines.append(
                    "| %s | %d | %.3f | %.3f | %.3f |"
                    % (p["peer"], q["queries"], q["mrr@10"], q["ndcg@10"], q["recall@100"])
                )

    ours = next((p for p in rows if p["peer"] == OURS and "error" not in p), None)
    peers = [p for p in rows if p["peer"] != OURS and "variant" not in p and "error" not in p]
    if ours and peers:
        o = row_figures(ours)
        rh = ["oimsearch vs", "docs/s ×", "index MB ×", "p50 ×", "p95 ×", "cold ×", "CLI cold ×"]
        if qual:
            rh += ["Δ MRR@10", "Δ nDCG@10", "Δ R@100"]
        if topics:
            rh += ["Δ topic-macro"]
        lines += ["", "| " + " | ".join(rh) + " |", "|" + "---|" * len(rh)]
        for p in peers:
            f = row_figures(p)
            row = [
                p["peer"],
                fmt_ratio(ratio(o["docs_per_s"], f["docs_per_s"])),
                fmt_ratio(ratio(o["index_mb"], f["index_mb"])),
                fmt_ratio(ratio(o["p50"], f["p50"])),
                fmt_ratio(ratio(o["p95"], f["p95"])),
                fmt_ratio(ratio(o["cold_ms"], f["cold_ms"])),
                fmt_ratio(ratio(o["cli_cold_ms"], f["cold_ms"])),
            ]
            if qual:
                row += [
                    fmt(delta(o["mrr"], f["mrr"]), "+.3f"),
                    fmt(delta(o["ndcg"], f["ndcg"]), "+.3f"),
                    fmt(delta(o["r100"], f["r100"]), "+.3f"),
                ]
            if topics:
                row += [fmt(delta(o["topic"], f["topic"]), "+.3f")]
            lines.append("| " + " | ".join(row) + " |")

    notes = []
    if ours:
        bs = ours.get("build_stats") or {}
        ri = (ours.get("reindex") or {}).get("report") or {}
        if bs.get("children_cpu_s"):
            notes.append(
                "oimsearch built with writer sub-processes: their CPU (%.1f s) is in CPU s, their "
                "peak RSS (largest %.0f MB) is not in peak RSS"
                % (bs["children_cpu_s"], bs.get("children_peak_rss_mb") or 0)
            )
        cb = ours.get("cli_build") or {}
        if cb:
            notes.append(
                "`oimsearch index --rebuild` run as a user would (a fresh process): %.1f s, largest "
                "peak RSS of its processes %.0f MB" % (cb["wall_s"], cb["peak_rss_mb"])
            )
        if ri:
            notes.append(
                "re-index = a second `index` run on the unchanged source: %s unchanged, %s added, "
                "%s updated, %s removed"
                % (ri.get("unchanged"), ri.get("added"), ri.get("updated"), ri.get("removed"))
            )
        if (ours.get("cold") or {}).get("query_failed"):
            notes.append(
                "oimsearch's adapter cold start ran the first query, which oimsearch rejects: "
                "its cold ms is the error path"
            )
        cc = ours.get("cli_cold")
        if cc:
            notes.append(
                "CLI cold = `oimsearch query --json --index DIR -- %s`, a fresh process, median of %d "
                "(%s hits)"
                % (json.dumps(cc["query"], ensure_ascii=False), len(cc["runs_ms"]), cc.get("hits"))
            )
        h = ours.get("help")
        if h:
            notes.append(
                "`oimsearch --help`: %.0f ms (median of %d)"
                % (h["wall_ms_median"], len(h["runs_ms"]))
            )
        src = ours.get("source") or results.get("source") or {}
        if src:
            notes.append(
                "oimsearch measured: git HEAD %s, oimsearch/*.py sha256 %s"
                % ((src.get("git_head") or "none")[:10], src.get("oimsearch_py_sha256"))
            )
        st = results["oimsearch"]["settings"]
        if st:
            notes.append("oimsearch row settings: `%s`" % json.dumps(st, ensure_ascii=False))
    for v in rows:
        if "variant" in v and v.get("variant"):
            notes.append("%s: `%s`" % (v["peer"], json.dumps(v["settings"], ensure_ascii=False)))
    if "metrics_check" in results:
        notes.append(
            "quality scored by bench/metrics.py from each engine's top-100 run; the harness's "
            "metrics on the same lists differ by at most %.1e"
            % results["metrics_check"]["max_abs_diff"]
        )
    if notes:
        lines += [""] + ["- " + n for n in notes]
    return "\n".join(lines)


# ----------------------------------------------------------------------------- main


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument(
        "--corpus", required=True, help="docs.jsonl.gz [queries.jsonl qrels.tsv] folder"
    )
    ap.add_argument(
        "--peers",
        default=DEFAULT_ENGINES,
        help="engines, comma-separated, run in this order (default: %s; extra: tantivy-1f)"
        % DEFAULT_ENGINES,
    )
    ap.add_argument("--peers-dir", help="the shared peer harness (default: ../shared/bench/peers)")
    ap.add_argument(
        "--smoke",
        action="store_true",
        help="oimsearch only, on a folder of files; no peers, no qrels",
    )
    ap.add_argument(
        "--smoke-queries", type=int, default=5, help="smoke: queries taken from titles (default 5)"
    )
    ap.add_argument(
        "--name", help="results name (default: corpus folder name, + .Nk with --limit-docs)"
    )
    ap.add_argument(
        "--out", help="results JSON (default: bench/results/NAME.json; smoke: bench/results/tmp/)"
    )
    ap.add_argument("--limit-docs", type=int, default=None, help="index only the first N documents")
    ap.add_argument(
        "--speed-only", action="store_true", help="ignore queries.jsonl/qrels.tsv, random queries"
    )
    ap.add_argument(
        "--random-queries", type=int, default=500, help="random queries without a query set"
    )
    ap.add_argument(
        "--query-sample", type=int, default=None, help="random sample of N queries (--seed)"
    )
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument(
        "--warmup", type=int, default=200, help="queries run before timing (default 200)"
    )
    ap.add_argument(
        "--cold-runs", type=int, default=None, help="fresh-process runs (default 5; smoke 3)"
    )
    ap.add_argument(
        "--peer-timeout", type=int, default=900, help="seconds per engine (default 900)"
    )
    ap.add_argument(
        "--store-body", action="store_true", help="peers store the body too (oimsearch always does)"
    )
    ap.add_argument("--index-root", help="where indexes are built (default: a temp dir)")
    ap.add_argument(
        "--keep-indexes", action="store_true", help="keep indexes, queries and run files"
    )
    ap.add_argument(
        "--runs-dir", help="copy every engine's top-100 run file (qid docid rank score) here"
    )
    ap.add_argument(
        "--procs", type=int, default=None, help="oimsearch indexer procs (default: its own choice)"
    )
    ap.add_argument(
        "--oimsearch-settings", help="JSON object of RankingSettings fields for the oimsearch row"
    )
    ap.add_argument(
        "--variant",
        action="append",
        metavar="NAME=JSON",
        help="one more oimsearch row with RankingSettings(**JSON), same index (repeatable)",
    )
    ap.add_argument(
        "--variant-warmup",
        type=int,
        default=50,
        help="queries run before timing a variant (default 50: same process, index already warm)",
    )
    # internal: one engine in a child process
    for opt in (
        "--worker",
        "--queries-file",
        "--qrels-file",
        "--index-dir",
        "--worker-out",
        "--runs-file",
    ):
        ap.add_argument(opt, help=argparse.SUPPRESS)
    ap.add_argument("--source", help=argparse.SUPPRESS)
    ap.add_argument("--variants-json", help=argparse.SUPPRESS)
    ap.add_argument("--native", action="store_true", help=argparse.SUPPRESS)
    a = ap.parse_args(argv)
    if a.cold_runs is None:
        a.cold_runs = 3 if a.smoke else 5

    if a.worker:
        if a.native:
            native_worker(a)
        else:
            harness_worker(a)
        return 0

    results = orchestrate(a)
    table = render(results)
    print()
    print(table)
    out = a.out or os.path.join(
        BENCH_DIR,
        "results",
        "tmp" if a.smoke else "",
        ("smoke-" if a.smoke else "") + results["name"] + ".json",
    )
    os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
    with open(out, "w", encoding="utf-8") as f:
        json.dump(results, f, ensure_ascii=False, indent=1)
    md = os.path.splitext(out)[0] + ".md"
    with open(md, "w", encoding="utf-8") as f:
        f.write(table + "\n")
    print("\nwrote %s and %s" % (os.path.relpath(out), os.path.relpath(md)))
    failed = [r["peer"] for r in results["engines"] if "error" in r]
    if failed:
        print("FAILED: %s" % ", ".join(failed), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
