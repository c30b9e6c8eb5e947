"""The read-only storage of the searcher: compound sub-files read in place from the mmap."""

from __future__ import annotations

import gc
import io
import os
import pickle

import pytest

from oimsearch.mmapstore import MappedStorage, _ViewFile, _ViewReader
from oimsearch.searcher import Searcher


def _pairs(data: bytes):
    return _ViewReader(memoryview(data)), io.BytesIO(data)


def test_view_reader_reads_like_bytesio():
    data = bytes(range(256)) * 3 + b"line one\nline two\n" + b"\x00" * 600 + b"\nend"
    ours, ref = _pairs(data)
    steps = [
        ("read", 10),
        ("read", 0),
        ("tell",),
        ("seek", 5),
        ("read", 3),
        ("seek", 2, 1),
        ("read", 1),
        ("seek", -4, 2),
        ("read", 100),
        ("read", 5),
        ("seek", 768),
        ("readline",),
        ("readline", 3),
        ("readline",),
        ("readline",),
        ("readline",),
        ("readline",),
        ("seek", 10_000),
        ("read", 4),
        ("tell",),
        ("seek", 0),
        ("read", -1),
        ("seek", 1),
        ("read", None),
    ]
    for name, *args in steps:
        assert getattr(ours, name)(*args) == getattr(ref, name)(*args), (name, args)
    ours, ref = _pairs(data)
    ours.seek(7)
    ref.seek(7)
    a, b = bytearray(20), bytearray(20)
    assert ours.readinto(a) == ref.readinto(b) and a == b
    with pytest.raises(ValueError):
        ours.seek(-1)


def test_view_file_structured_reads_and_subset():
    obj = {"x": [1, 2, 3], "y": "é"}
    data = b"abcd" + (1234).to_bytes(4, "big") + pickle.dumps(obj, -1) + b"tail"
    f = _ViewFile(memoryview(data), name="t")
    assert f.read(4) == b"abcd"
    assert f.read_int() == 1234
    assert f.read_pickle() == obj
    assert f.read(4) == b"tail"
    assert f.get(0, 4) == b"abcd" and f.get_int(4) == 1234
    sub = f.subset(2, 4)
    assert sub.read() == b"cd\x00\x00"
    sub.close()
    f.close()


@pytest.fixture
def compound_index(tmp_path, corpus_dir, monkeypatch):
    """An index with compound segments, as earlier versions (and stock Whoosh) write them."""
    import oimsearch.writer as wmod
    from oimsearch.indexer import index_paths

    real = wmod.open_writer
    monkeypatch.setattr(wmod, "open_writer", lambda ix, **kw: real(ix, compound=True, **kw))
    ix = tmp_path / "ix"
    index_paths([corpus_dir], index_dir=ix)
    assert any(p.suffix == ".seg" for p in ix.iterdir())
    return ix


def test_searcher_reads_compound_segments_in_place(compound_index):
    s = Searcher(compound_index)
    try:
        assert isinstance(s.ix.storage, MappedStorage)
        res = s.search("migrants")
        assert res.hits
        reader = s.searcher.reader()
        readers = [r for r, _ in reader.leaf_readers()] if not reader.is_atomic() else [reader]
        files = []
        for r in readers:
            if r.segment().is_compound():
                files.append(r._terms._dbfile)  # the terms file: a view of the mmap, not a copy
        assert files and all(isinstance(f, _ViewFile) for f in files)
    finally:
        s.close()


def test_closing_the_searcher_releases_the_mappings(compound_index):
    fixture_index = compound_index

    def seg_maps() -> int:
        gc.collect()  # Whoosh 2.7.4 leaves some views to the collector
        with open(f"/proc/{os.getpid()}/maps") as f:
            return sum(1 for line in f if str(fixture_index) in line)

    if not os.path.exists(f"/proc/{os.getpid()}/maps"):
        pytest.skip("needs /proc")
    before = seg_maps()
    after = []
    for _ in range(4):
        s = Searcher(fixture_index)
        res = s.search("migrants")
        s.document(res.hits[0].id)
        assert seg_maps() > before
        s.close()
        after.append(seg_maps())
    # nothing accumulates from one searcher to the next (whoosh3 releases every mapping at
    # close; Whoosh 2.7.4 keeps at most one segment mapping alive until a later close)
    assert after[-1] == after[0] <= before + 1, (before, after)


def test_term_lookups_are_remembered_with_whoosh_values(fixture_index):
    """The searcher's terms readers remember each lookup: the same answers as Whoosh's own
    reader for every term and for absent ones, and a second lookup no longer reads the
    terms file."""
    from whoosh import index as windex
    from whoosh.codec.whoosh3 import W3TermsReader
    from whoosh.reading import TermNotFound

    from oimsearch.mmapstore import _MemoTermsReader

    s = Searcher(fixture_index)
    plain_ix = windex.open_dir(str(fixture_index), indexname=s.manifest.indexname)
    plain = plain_ix.reader()
    try:
        reader = s.searcher.reader()
        pairs = list(zip(reader.leaf_readers(), plain.leaf_readers(), strict=True))
        assert pairs
        checked = 0
        for (r, _o), (p, _po) in pairs:
            assert type(r._terms) is _MemoTermsReader
            assert type(p._terms) is W3TermsReader
            terms = list(p._terms.terms())
            assert terms
            for _round in range(2):  # the second round comes from the memo
                for f, t in terms:
                    ti, pti = r._terms.term_info(f, t), p._terms.term_info(f, t)
                    assert (ti.weight(), ti.doc_frequency(), ti.max_weight(), ti.min_length()) == (
                        pti.weight(),
                        pti.doc_frequency(),
                        pti.max_weight(),
                        pti.min_length(),
                    )
                    assert r.doc_frequency(f, t) == p.doc_frequency(f, t) > 0
                    assert r.frequency(f, t) == p.frequency(f, t)
                    assert (f, t) in r
                    checked += 1
                for f in ("body", "title"):
                    assert r.doc_frequency(f, b"zzqxnotaword") == 0
                    assert r.frequency(f, b"zzqxnotaword") == 0
                    assert (f, b"zzqxnotaword") not in r
                for f in ("body", "title", "nosuchfield"):
                    assert (f, b"zzqxnotaword") not in r._terms
                    with pytest.raises(KeyError):  # as Whoosh's hash lookup
                        r._terms.doc_frequency(f, b"zzqxnotaword")
                    with pytest.raises(TermNotFound):
                        r._terms.term_info(f, b"zzqxnotaword")
            # everything is remembered: the terms file is no longer read
            tindex, r._terms._tindex = r._terms._tindex, None
            try:
                f, t = terms[0]
                assert r.doc_frequency(f, t) == p.doc_frequency(f, t)
                assert (f, b"zzqxnotaword") not in r._terms
            finally:
                r._terms._tindex = tindex
        assert checked > 100
        # searches give the same hits as before the memo filled up
        first = [(h.id, h.score) for h in s.search("migrants OIM").hits]
        again = [(h.id, h.score) for h in s.search("migrants OIM").hits]
        assert first == again and first
    finally:
        plain.close()
        plain_ix.close()
        s.close()
