"""The compact segment writer writes exactly what Whoosh's own writer writes."""

from __future__ import annotations

import random

import pytest
from whoosh import index as windex
from whoosh.writing import SegmentWriter

from oimsearch.indexer import index_paths
from oimsearch.schema import build_schema
from oimsearch.writer import (
    BLOCK_LIMITS,
    CompactSegmentWriter,
    MemoryPostingPool,
    _tune_postings,
    open_writer,
)

WORDS = (
    "migrants traite réfugiés l'OIM d'asile titre séjour préfecture Kinshasa Bangui "
    "République centrafricaine RCA protection enfants travail forcé rapatriement "
    "frontière Méditerranée sauvetage traité traitement naufrage aide humanitaire"
).split()


# what a postings block stores about the documents in it (used by block-max scoring)
BLOCK_STATS = ("block_min_length", "block_max_length", "block_max_weight")


def _docs(n: int, seed: int = 7) -> list[dict]:
    rnd = random.Random(seed)
    docs = []
    for i in range(n):
        title = " ".join(rnd.choices(WORDS, k=rnd.randint(2, 6)))
        body = " ".join(rnd.choices(WORDS, k=rnd.randint(0, 120)))
        docs.append(
            {
                "id": f"d{i}",
                "path": f"p/{i}.txt",
                "src": f"/r/p/{i}.txt",
                "stamp": f"{i}:0:h".encode(),
                "title": title,
                "body": body,
                "title_exact": title,
                "body_exact": body,
                "hash": f"h{i}",
            }
        )
    return docs


def _snapshot(ix) -> dict:
    """Everything a reader sees: terms with their postings, lengths, stored fields, columns."""
    with ix.reader() as r:
        postings = {}
        for field, text in r.all_terms():
            m = r.postings(field, text)
            items = []
            while m.is_active():
                block = [getattr(m, f, lambda: None)() for f in BLOCK_STATS]
                items.append((m.id(), m.weight(), m.value(), *block))
                m.next()
            postings[(field, text)] = items
        fields = ["title", "body", "title_exact", "body_exact"]
        lengths = {f: [r.doc_field_length(d, f) for d in range(r.doc_count_all())] for f in fields}
        totals = {f: r.field_length(f) for f in fields}
        stored = [r.stored_fields(d) for d in range(r.doc_count_all())]
        columns = {c: list(r.column_reader(c)) for c in ("src", "stamp") if r.has_column(c)}
    return {"postings": postings, "lengths": lengths, "totals": totals, "stored": stored,
            "columns": columns}  # fmt: skip


def _create(path):
    path.mkdir(parents=True, exist_ok=True)
    return windex.create_in(str(path), build_schema())


def _writer(ix, writer_cls):
    """A writer of ``writer_cls``; Whoosh's own with oimsearch's per-field block settings,
    which the compact writer applies (the blocks then compare equal)."""
    w = writer_cls(ix)
    if writer_cls is SegmentWriter:
        _tune_postings(w.fieldwriter)
    return w


def _build(path, writer_cls, docs) -> dict:
    ix = _create(path)
    w = _writer(ix, writer_cls)
    for d in docs:
        w.add_document(**d)
    w.commit()
    snap = _snapshot(ix)
    ix.close()
    return snap


def test_same_segment_as_whoosh(tmp_path):
    docs = _docs(300)
    stock = _build(tmp_path / "stock", SegmentWriter, docs)
    compact = _build(tmp_path / "compact", CompactSegmentWriter, docs)
    assert len(stock["postings"]) > 100
    assert compact == stock


def test_same_after_deletions_and_merge(tmp_path):
    """Updates go through add_reader (merging small segments) and deletions."""
    docs = _docs(200)
    snaps = []
    for name, cls in (("stock", SegmentWriter), ("compact", CompactSegmentWriter)):
        ix = _create(tmp_path / name)
        for lo, hi in ((0, 80), (80, 140), (140, 200)):
            w = _writer(ix, cls)
            for d in docs[lo:hi]:
                w.add_document(**d)
            w.commit()
        w = _writer(ix, cls)
        w.delete_by_term("src", "/r/p/5.txt")
        w.add_document(**{**docs[5], "body": "naufrage en Méditerranée", "body_exact": "x"})
        w.commit(optimize=True)
        snaps.append(_snapshot(ix))
        assert len(ix._segments()) == 1
        ix.close()
    assert snaps[0] == snaps[1]


def test_pool_orders_postings_by_term_then_document():
    pool = MemoryPostingPool()
    pool.add(("body", b"b", 3, 1.0, b"x"))
    pool.add(("body", b"a", 5, 2.0, b""))
    pool.add(("body", b"b", 1, 1.0, b"yy"))  # out of order: e.g. add_reader after adds
    pool.add(("body", b"a", 6, 1.0, b"z"))
    pool.add(("title", b"a", 0, 1.5, b"t"))
    assert list(pool.iter_postings()) == [
        ("body", b"a", 5, 2.0, b""),
        ("body", b"a", 6, 1.0, b"z"),
        ("body", b"b", 1, 1.0, b"yy"),
        ("body", b"b", 3, 1.0, b"x"),
        ("title", b"a", 0, 1.5, b"t"),
    ]
    assert pool.fieldnames == {"body", "title"} and len(pool) == 5
    pool.cleanup()
    assert list(pool.iter_postings()) == [] and len(pool) == 0


@pytest.mark.parametrize("procs", [1, 2])
def test_open_writer_procs(tmp_path, procs):
    """Two processes write one segment each; together they hold every document and the
    same terms and postings (up to document numbering) as one process."""
    from whoosh import multiproc

    docs = _docs(400, seed=3)
    before = multiproc.SegmentWriter
    ix = _create(tmp_path / "ix")
    w = open_writer(ix, procs=procs)
    for d in docs:
        w.add_document(**d)
    w.commit()
    assert multiproc.SegmentWriter is before  # the children's writer name is restored
    assert ix.doc_count() == 400
    assert len(ix._segments()) == procs  # the children really wrote (one segment each)
    snap = _snapshot(ix)
    ix.close()
    ref = _build(tmp_path / "ref", SegmentWriter, docs)

    def by_id(s):
        ids = [st["id"] for st in s["stored"]]
        return {k: sorted((ids[d], w, v) for d, w, v, *_ in p) for k, p in s["postings"].items()}

    assert by_id(snap) == by_id(ref)
    assert snap["totals"] == ref["totals"]


def test_indexer_uses_compact_writer_and_stays_searchable(tmp_path, corpus_dir, monkeypatch):
    import oimsearch.writer as wmod
    from oimsearch.searcher import Searcher

    made = []
    real = wmod.open_writer

    def spy(ix, **kw):
        w = real(ix, **kw)
        made.append(type(w).__name__)
        return w

    monkeypatch.setattr(wmod, "open_writer", spy)
    index_paths([corpus_dir], index_dir=tmp_path / "ix")
    assert made == ["CompactSegmentWriter"]
    with Searcher(tmp_path / "ix") as s:
        assert s.search("traite").hits


def _block_stats(ix) -> tuple[dict, dict]:
    """Field -> the set of the compression levels of its posting blocks, and field -> the
    largest number of postings in one of its blocks."""
    comp: dict = {}
    size: dict = {}
    with ix.reader() as r:
        for field, text in r.all_terms():
            m = r.postings(field, text)
            while m.is_active():
                comp.setdefault(field, set()).add(m._compression)
                size[field] = max(size.get(field, 0), m._blocklength)
                m.next()
    return comp, size


def test_scoring_fields_written_without_zlib(tmp_path):
    """Blocks of the fields every query decodes are stored raw, each term's postings in one
    block up to 2,048; the positions keep zlib, in blocks of 64 postings."""
    ix = _create(tmp_path / "ix")
    w = CompactSegmentWriter(ix)
    docs = _docs(300)
    for d in docs:
        w.add_document(**d, body_pos=d["body"])
    w.commit()
    comp, size = _block_stats(ix)
    with ix.reader() as r:
        most = {f: max(r.doc_frequency(f, t) for t in r.field_terms(f)) for f in size}
    ix.close()
    assert {"title", "body", "title_exact", "body_exact", "body_pos"} <= set(comp)
    for field in ("title", "body", "title_exact"):
        assert comp[field] == {0}, field
        assert BLOCK_LIMITS[field] == 2048
        assert size[field] == most[field], field
    assert most["body"] > 128
    assert comp["body_pos"] - {0}
    assert comp["body_exact"] - {0}
    assert size["body_pos"] == 64
    assert size["body_exact"] == 128
