"""Machine and plain renderers: ``--json``, ``--jsonl`` and the tab-separated piped output.

This module never imports Rich (the JSON path must stay fast); the Rich renderer for
terminals is :mod:`oimsearch.render_human`. The JSON contract is documented in
``docs/json-output.md`` and pinned by tests: new keys may appear within a ``format``;
renaming or removing a key bumps it.
"""

from __future__ import annotations

import json
from typing import TextIO

from oimsearch import __version__

FORMAT = 1
OFFSET_UNIT = "codepoint"


def _dumps(obj) -> str:
    return json.dumps(obj, ensure_ascii=False)


def result_to_dict(res) -> dict:
    return {
        "format": FORMAT,
        "oimsearch": __version__,
        "query": res.query,
        "parsed_query": res.parsed_query,
        "index": res.index,
        "offset": res.offset,
        "limit": res.limit,
        "total": {"value": res.total, "relation": res.total_relation},
        "hits": [h.to_dict() for h in res.hits],
        "suggestion": res.suggestion,
        "fuzzy": res.fuzzy,
        "expansions": res.expansions,
        "offset_unit": OFFSET_UNIT,
        "elapsed_ms": round(res.elapsed_ms, 2),
    }


def write_json(res, out: TextIO) -> None:
    out.write(json.dumps(result_to_dict(res), ensure_ascii=False, indent=2))
    out.write("\n")


def write_jsonl(res, out: TextIO, qid: str = "1", run_ms: float | None = None) -> None:
    begin = {
        "format": FORMAT,
        "oimsearch": __version__,
        "qid": qid,
        "query": res.query,
        "parsed_query": res.parsed_query,
        "index": res.index,
        "offset": res.offset,
        "limit": res.limit,
        "offset_unit": OFFSET_UNIT,
    }
    out.write(_dumps({"type": "begin", "data": begin}) + "\n")
    for h in res.hits:
        out.write(_dumps({"type": "hit", "data": {"qid": qid, **h.to_dict()}}) + "\n")
    end = {
        "qid": qid,
        "total": {"value": res.total, "relation": res.total_relation},
        "returned": len(res.hits),
        "suggestion": res.suggestion,
        "fuzzy": res.fuzzy,
        "expansions": res.expansions,
        "elapsed_ms": round(res.elapsed_ms, 2),
    }
    out.write(_dumps({"type": "end", "data": end}) + "\n")
    summary = {
        "queries": 1,
        "queries_with_hits": 1 if res.hits else 0,
        "hits_returned": len(res.hits),
        "elapsed_ms": round(run_ms if run_ms is not None else res.elapsed_ms, 2),
    }
    out.write(_dumps({"type": "summary", "data": summary}) + "\n")


def _clean(s: str | None) -> str:
    return " ".join((s or "").split())


def write_plain(res, out: TextIO) -> None:
    """One tab-separated line per hit: rank, score, id, title (for pipes: cut, awk, sort)."""
    for h in res.hits:
        out.write(f"{h.rank}\t{h.score:.3f}\t{h.id}\t{_clean(h.title)}\n")


def write_json_obj(obj, out: TextIO) -> None:
    out.write(json.dumps(obj, ensure_ascii=False, indent=2))
    out.write("\n")
