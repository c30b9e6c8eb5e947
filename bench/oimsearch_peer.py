"""oimsearch as one more peer of the shared harness (same interface as its adapters).

Goes through oimsearch's real code paths: ``build`` calls :func:`oimsearch.indexer.index_paths`
on a docs.jsonl.gz file (what a user would index), ``open``/``search`` use
:class:`oimsearch.searcher.Searcher`. Configured through the environment, so that the harness's
cold-start child (a fresh ``python -c`` that only knows the peer's name) sees the same setup:

``OIMSEARCH_BENCH_SOURCE``
    the docs.jsonl.gz to index: the corpus's own file, or (``--limit-docs``) its first N lines
    written beforehand by bench/run.py, outside the timed build. ``build()`` checks that the
    index ends up with ``len(docs)`` documents. Unset (the adapter used on its own), ``build()``
    writes ``docs`` to a docs.jsonl.gz beside the index first, inside the timed build.
``OIMSEARCH_BENCH_SETTINGS``
    JSON object of :class:`oimsearch.ranking.RankingSettings` fields (default: ``{}``), plus
    the adapter's own key ``"_query_mode"``: ``"raw"`` (default: the query text goes to
    ``Searcher.search`` as typed, user query syntax included, as the CLI does) or ``"plain"``
    (query-syntax characters are blanked first, see :func:`plain_text`: the peers never parse
    syntax, and a question ending in `` ?`` is a syntax error for oimsearch).

A query that ``Searcher.search`` rejects (:class:`oimsearch.errors.OimsearchError`, e.g. a
lone ``?``) returns no hit, as the CLI would show none, and is recorded in
:data:`FAILED_QUERIES` (query -> message), which bench/run.py reports.
``OIMSEARCH_BENCH_PROCS``
    ``procs`` for ``index_paths`` (default: unset, the library's own choice).
"""

from __future__ import annotations

import gzip
import json
import os
import re
import resource

from oimsearch.errors import OimsearchError
from oimsearch.indexer import index_paths
from oimsearch.searcher import Searcher

ENV_SOURCE = "OIMSEARCH_BENCH_SOURCE"
ENV_SETTINGS = "OIMSEARCH_BENCH_SETTINGS"
ENV_PROCS = "OIMSEARCH_BENCH_PROCS"
QUERY_MODES = ("raw", "plain")

# query text -> error message, for every query Searcher.search rejected in this process
FAILED_QUERIES: dict[str, str] = {}

_SYNTAX_CHARS = re.compile(r'[?*"()\[\]{}^~:\\/+-]')
_OPERATORS = re.compile(r"\b(AND|OR|NOT|ANDNOT|ANDMAYBE)\b")


def plain_text(query: str) -> str:
    """The query with oimsearch's query syntax neutralised: ``? * " ( ) [ ] { } ^ ~ : \\ / + -``
    blanked (the hyphen too: ``ex-conjoint`` parses as ``ex ANDNOT conjoint``), upper-case
    operators lower-cased. Words split at a hyphen are what the analyzer makes of them anyway."""
    t = _SYNTAX_CHARS.sub(" ", query)
    return _OPERATORS.sub(lambda m: m.group(0).lower(), t)


def split_settings(data: dict | None) -> tuple[dict, str]:
    """(RankingSettings fields, query mode) from a settings object."""
    data = dict(data or {})
    mode = data.pop("_query_mode", "raw")
    if mode not in QUERY_MODES:
        raise ValueError("_query_mode must be one of %s, not %r" % (QUERY_MODES, mode))
    return data, mode


def make_settings(data: dict | None = None):
    """``RankingSettings(**data)``; None when the library has no such class and data is empty."""
    data, _ = split_settings(data)
    try:
        from oimsearch.ranking import RankingSettings
    except ImportError:
        if data:
            raise
        return None
    if hasattr(RankingSettings, "from_dict"):
        return RankingSettings.from_dict(data)
    return RankingSettings(**data)


def settings_from_env() -> dict:
    return json.loads(os.environ.get(ENV_SETTINGS) or "{}")


def open_searcher(index_dir: str, settings_data: dict | None = None):
    settings = make_settings(settings_data)
    if settings is None:
        return Searcher(index_dir)
    return Searcher(index_dir, settings=settings)


def children_usage() -> tuple[float, float]:
    """(CPU s, largest peak RSS MB) of this process's waited-for children: the indexer's
    writer sub-processes (``procs=2``), which the harness's own CPU/RSS figures do not see."""
    ru = resource.getrusage(resource.RUSAGE_CHILDREN)
    return ru.ru_utime + ru.ru_stime, ru.ru_maxrss / 1024.0


class OimsearchPeer:
    name = "oimsearch"

    def __init__(self, store_body=False, settings: dict | None = None):
        # oimsearch always stores title and body (snippets): store_body is ignored.
        self.store_body = store_body
        self.settings_data = settings if settings is not None else settings_from_env()
        self.query_mode = split_settings(self.settings_data)[1]
        self.searcher = None

    def describe(self) -> dict:
        import oimsearch

        settings = make_settings(self.settings_data)
        return {
            "library": "oimsearch %s (whoosh3 %s)" % (oimsearch.__version__, _version("whoosh3")),
            "analyzer": "oimsearch.analysis (French: elision, folding, stemming)",
            "ranking": settings.to_dict() if hasattr(settings, "to_dict") else repr(settings),
            "query": "Searcher.search(q, limit=k, snippets=False), query text %s"
            % ("as typed" if self.query_mode == "raw" else "with syntax blanked (plain_text)"),
            "build": "oimsearch.indexer.index_paths([docs.jsonl.gz], rebuild=True), procs=%s"
            % (os.environ.get(ENV_PROCS) or "auto"),
            "stores": "title and body always (store_body ignored)",
        }

    def build(self, docs, index_dir) -> dict:
        source = os.environ.get(ENV_SOURCE)
        written = None
        if not source:
            written = index_dir.rstrip("/") + ".docs.jsonl.gz"
            with gzip.open(written, "wt", encoding="utf-8") as f:
                for d in docs:
                    f.write(json.dumps(d, ensure_ascii=False) + "\n")
            source = written
        procs = os.environ.get(ENV_PROCS)
        cpu0, _ = children_usage()
        report = index_paths(
            [source],
            index_dir=index_dir,
            rebuild=True,
            procs=int(procs) if procs else None,
            progress=False,
        )
        cpu1, child_rss = children_usage()
        stats = report.to_dict() if hasattr(report, "to_dict") else dict(vars(report))
        stats.pop("problems", None)
        stats["problems"] = len(getattr(report, "problems", []) or [])
        stats["source"] = source
        stats["children_cpu_s"] = cpu1 - cpu0
        stats["children_peak_rss_mb"] = child_rss if cpu1 > cpu0 else None
        if written:
            os.unlink(written)
        if report.documents != len(docs):
            raise RuntimeError(
                "oimsearch indexed %d documents, the harness loaded %d (report: %s)"
                % (report.documents, len(docs), stats)
            )
        return stats

    def open(self, index_dir) -> None:
        self.searcher = open_searcher(index_dir, self.settings_data)

    def search(self, query, k=10):
        text = plain_text(query) if self.query_mode == "plain" else query
        try:
            res = self.searcher.search(text, limit=k, snippets=False)
        except OimsearchError as e:
            FAILED_QUERIES[query] = e.one_line() if hasattr(e, "one_line") else str(e)
            return []
        return [(h.id, h.score) for h in res.hits]

    def close(self) -> None:
        if self.searcher is not None:
            self.searcher.close()
            self.searcher = None


def _version(dist: str) -> str:
    try:
        from importlib.metadata import version

        return version(dist)
    except Exception:
        return "?"
