"""Segment writing: Whoosh's writers with the posting pool held in compact memory.

Whoosh's ``SegmentWriter`` sends every posting through ``PostingPool``: a sorting pool that
pickles runs of ``(field, term, docnum, weight, value)`` tuples to temporary files and
heap-merges them at commit, then looks each posting's field length up again in the
segment's length column. On the codes corpus that is about half of the indexing time
(profile in ``bench/README.md``). Here the postings of a segment are kept in memory, chained
per term in flat arrays (about 20 bytes a posting plus its encoded value), and written in
term order at commit with field lengths from memory. The segment files are written by
Whoosh's own codec and field writer, in its format, so indexes stay readable by stock
Whoosh 2.7.4 and whoosh3; only two block settings differ by field (UNCOMPRESSED_FIELDS and
BLOCK_LIMITS below), through the codec's own per-block compression flag and block length.

With several processes, :class:`CompactMpWriter` gives its children the compact writer too.
"""

from __future__ import annotations

from array import array

from whoosh import multiproc as _multiproc
from whoosh.multiproc import MpWriter
from whoosh.util.numeric import byte_to_length, length_to_byte
from whoosh.writing import SegmentWriter

__all__ = [
    "CompactMpWriter",
    "CompactSegmentWriter",
    "MemoryPostingPool",
    "open_writer",
]


class MemoryPostingPool:
    """An in-memory stand-in for ``whoosh.writing.PostingPool``.

    Postings are appended to flat arrays; each term keeps the index of its first and last
    posting and each posting the index of the next one of its term, so iteration in
    (field, term, docnum) order only sorts the distinct terms, never the postings.
    """

    def __init__(self) -> None:
        self._term_ids: dict[tuple[str, bytes], int] = {}
        self._terms: list[tuple[str, bytes]] = []
        self._head = array("q")
        self._tail = array("q")
        self._last_doc = array("q")
        self._unordered: set[int] = set()
        self._next = array("q")
        self._doc = array("q")
        self._weight = array("d")
        self._vend = array("Q")
        self._values = bytearray()
        self.fieldnames: set[str] = set()

    def __len__(self) -> int:
        return len(self._doc)

    def add(self, item) -> None:
        fieldname, tbytes, docnum, weight, vbytes = item
        n = len(self._doc)
        key = (fieldname, tbytes)
        t = self._term_ids.get(key)
        if t is None:
            t = len(self._terms)
            self._term_ids[key] = t
            self._terms.append(key)
            self._head.append(n)
            self._tail.append(n)
            self._last_doc.append(docnum)
            self.fieldnames.add(fieldname)
        else:
            self._next[self._tail[t]] = n
            self._tail[t] = n
            if docnum < self._last_doc[t]:
                self._unordered.add(t)
            self._last_doc[t] = docnum
        self._next.append(-1)
        self._doc.append(docnum)
        self._weight.append(weight)
        if vbytes:
            self._values += vbytes
        self._vend.append(len(self._values))

    def add_terms(self, fieldname: str, docnum: int, items, scorable: bool) -> int:
        """Add one document's ``(tbytes, freq, weight, vbytes)`` items of one field (what
        ``FieldType.index`` yields); return the field length (sum of freqs) when scorable."""
        term_ids, terms = self._term_ids, self._terms
        head, tail, last_doc, nxt = self._head, self._tail, self._last_doc, self._next
        doc, weights, vend, values = self._doc, self._weight, self._vend, self._values
        length = 0
        n = len(doc)
        for tbytes, freq, weight, vbytes in items:
            length += freq
            key = (fieldname, tbytes)
            t = term_ids.get(key)
            if t is None:
                term_ids[key] = len(terms)
                terms.append(key)
                head.append(n)
                tail.append(n)
                last_doc.append(docnum)
            else:
                nxt[tail[t]] = n
                tail[t] = n
                if docnum < last_doc[t]:
                    self._unordered.add(t)
                last_doc[t] = docnum
            nxt.append(-1)
            doc.append(docnum)
            weights.append(weight)
            if vbytes:
                values += vbytes
            vend.append(len(values))
            n += 1
        if n:
            self.fieldnames.add(fieldname)
        return length if scorable else 0

    def write_to(self, fieldwriter, schema, lengths) -> None:
        """What ``FieldWriter.add_postings(schema, lengths, self.iter_postings())`` does,
        without a tuple and an order check per posting: the pool is already in order."""
        terms = self._terms
        add = fieldwriter.add
        lastfn = None
        dfl = None
        for t in sorted(range(len(terms)), key=terms.__getitem__):
            fieldname, tbytes = terms[t]
            if fieldname != lastfn:
                if lastfn is not None:
                    fieldwriter.finish_field()
                fieldwriter.start_field(fieldname, schema[fieldname])
                lastfn = fieldname
                dfl = lengths.doc_field_length_reader(fieldname) if lengths else None
            chain = [p for p in self._chain(t) if p[0] != -1]  # -1: spelling only
            if not chain:
                continue
            fieldwriter.start_term(tbytes)
            for d, w, v in chain:
                add(d, w, v, dfl(d) if dfl else 0)
            fieldwriter.finish_term()
        if lastfn is not None:
            fieldwriter.finish_field()

    def _chain(self, t: int):
        nxt, doc, weight, vend, values = (
            self._next,
            self._doc,
            self._weight,
            self._vend,
            self._values,
        )
        out = []
        i = self._head[t]
        while i >= 0:
            start = vend[i - 1] if i else 0
            out.append((doc[i], weight[i], bytes(values[start : vend[i]])))
            i = nxt[i]
        if t in self._unordered:
            out.sort(key=lambda p: p[0])
        return out

    def iter_postings(self):
        terms = self._terms
        for t in sorted(range(len(terms)), key=terms.__getitem__):
            fieldname, tbytes = terms[t]
            for d, w, v in self._chain(t):
                yield fieldname, tbytes, d, w, v

    def save(self) -> None:  # the sorting pool's "spill a run": nothing to spill
        pass

    def cleanup(self) -> None:
        self.__init__()


class _Lengths:
    """Field lengths of the segment being written, as its length column will return them
    (quantised to one byte, like the codec stores them)."""

    def __init__(self) -> None:
        self._by_field: dict[str, array] = {}

    def set(self, fieldname: str, docnum: int, length: int) -> None:
        col = self._by_field.get(fieldname)
        if col is None:
            col = self._by_field[fieldname] = array("B")
        if len(col) <= docnum:
            col.extend(bytes(docnum + 1 - len(col)))
        col[docnum] = length_to_byte(length)

    def doc_field_length_reader(self, fieldname: str, default=0):
        col = self._by_field.get(fieldname)
        if col is None:
            return lambda docnum: default
        table = [None] + [byte_to_length(b) for b in range(1, 256)]

        def length_of(docnum: int):
            return table[col[docnum]] if docnum < len(col) else None

        return length_of


# Posting blocks of the fields every query reads in full (title, body, title_exact) are
# written without zlib: the codec's per-block compression flag, which every Whoosh reader
# honours. body_exact (read for the best documents only, see ranking.exact_depth) and the
# positions (body_pos) keep it: they are the bulk of the postings. Codes corpus (90,078
# documents), the 500 codes queries in one process, p95 all compressed / these three raw /
# every field raw: 14.54 / 13.25 / 12.97 ms (13.69 with body_exact raw too), plain
# BM25 10.07 / 8.98 ms; index 220 / 284 / 471 MB (348 with body_exact raw) (2026-11-24).
UNCOMPRESSED_FIELDS = frozenset(("title", "body", "title_exact"))
# Postings per block, where not Whoosh's 128.
# - The positions are read for a few documents per query (proximity re-scoring): each one
#   decodes the block holding it. Codes queries, p95 at 128 / 64 / 32 positions a block:
#   14.13 / 13.36 / 13.78 ms; quoted 2-3 word phrases p95 21.52 / 20.08 ms at 128 / 64;
#   index 284 / 287 / 294 MB (2026-11-24).
# - The fields every word query reads whole (UNCOMPRESSED_FIELDS) pay a header, a read and an
#   unpickling per block: in blocks of 2,048 postings, the 500 codes queries' p95 went from
#   13.70 to 12.58 ms (12.85 -> 11.94 in a second pair; 13.16 at 512), paired in one process.
#   AND, NOT and phrase queries, which skip inside these lists through Whoosh's matchers,
#   kept their p95 (24.16 / 32.42 / 18.34 ms at 128, 23.93 / 32.25 / 18.68 at 2,048); same
#   index size (2026-11-24).
BLOCK_LIMITS = {"body_pos": 64, **{f: 2048 for f in UNCOMPRESSED_FIELDS}}


def _tune_postings(fieldwriter) -> None:
    """Per-field block settings (see UNCOMPRESSED_FIELDS, BLOCK_LIMITS) on a W3FieldWriter."""
    real_start = fieldwriter.start_field

    def start_field(fieldname, fieldobj):
        real_start(fieldname, fieldobj)
        postwriter = getattr(fieldwriter, "_postwriter", None)
        if fieldname in UNCOMPRESSED_FIELDS and hasattr(postwriter, "_compression"):
            postwriter._compression = 0
        if fieldname in BLOCK_LIMITS and hasattr(postwriter, "_blocklimit"):
            postwriter._blocklimit = BLOCK_LIMITS[fieldname]

    fieldwriter.start_field = start_field


class _CompactMixin:
    """Swaps the sorting pool for :class:`MemoryPostingPool` and keeps field lengths."""

    def _use_compact_pool(self) -> None:
        _tune_postings(self.fieldwriter)
        self.pool.cleanup()  # the PostingPool made by __init__ holds nothing yet
        self.pool = MemoryPostingPool()
        self._lengths = _Lengths()
        self._stock_add = any(f.vector or f.separate_spelling() for f in self.schema)
        pdw = self.perdocwriter
        record = self._lengths.set
        real_add_field = pdw.add_field

        def add_field(fieldname, fieldobj, value, length):
            if length:
                record(fieldname, self.docnum, length)
            real_add_field(fieldname, fieldobj, value, length)

        pdw.add_field = add_field

    def _flush_segment(self) -> None:
        self.perdocwriter.close()
        lengths = self._lengths if self.codec.length_stats else None
        self.pool.write_to(self.fieldwriter, self.schema, lengths)
        self.fieldwriter.close()


class CompactSegmentWriter(_CompactMixin, SegmentWriter):
    def __init__(self, ix, **kwargs) -> None:
        super().__init__(ix, **kwargs)
        self._use_compact_pool()

    def add_document(self, **fields) -> None:
        """Whoosh's ``add_document`` for the plain case (no boosts, no custom stored values,
        no term vectors or separate spelling fields), with each field's terms going
        straight into the pool's arrays; anything else takes Whoosh's own path."""
        schema = self.schema
        if self._stock_add or any(name.startswith("_") for name in fields):
            return super().add_document(**fields)
        self._check_state()
        names = sorted(fields)
        self._check_fields(schema, names)
        docnum = self.docnum
        pdw = self.perdocwriter
        add_terms = self.pool.add_terms
        pdw.start_doc(docnum)
        try:
            for name in names:
                value = fields[name]
                if value is None:
                    continue
                field = schema[name]
                length = 0
                if field.indexed:
                    length = add_terms(name, docnum, field.index(value), field.scorable)
                pdw.add_field(name, field, value if field.stored else None, length)
                column = field.column_type
                if column:
                    pdw.add_column_value(name, column, field.to_column_value(value))
        except ValueError:
            pdw.cancel_doc()
            raise
        pdw.finish_doc()
        self._added = True
        self.docnum += 1


class CompactMpWriter(_CompactMixin, MpWriter):
    """The multiprocess writer; its own segment (merges of small segments, documents
    added in the parent) uses the compact pool too, and so do its children: they build
    their writer by the name ``whoosh.multiproc.SegmentWriter``, which points at
    :class:`CompactSegmentWriter` from the end of ``__init__`` (``MpWriter.__init__`` itself
    calls ``SegmentWriter.__init__`` by that name) until commit or cancel. With the ``fork``
    start method the children inherit it; a start method that re-imports the module gets
    stock writers, which write the same files, only slower."""

    def __init__(self, ix, **kwargs) -> None:
        super().__init__(ix, **kwargs)
        self._use_compact_pool()
        self._saved_name = _multiproc.SegmentWriter
        _multiproc.SegmentWriter = CompactSegmentWriter

    def _restore_name(self) -> None:
        saved = self.__dict__.pop("_saved_name", None)
        if saved is not None:
            _multiproc.SegmentWriter = saved

    def commit(self, *args, **kwargs) -> None:
        try:
            super().commit(*args, **kwargs)
        finally:
            self._restore_name()

    def cancel(self) -> None:
        try:
            super().cancel()
        finally:
            self._restore_name()


def open_writer(ix, procs: int = 1, timeout: float = 0.0, **kwargs):
    """A compact writer on ``ix``: one process, or ``procs`` children writing one segment
    each (``multisegment``). Raises Whoosh's ``LockError`` when the index is locked.

    Segments are written as separate files, not one compound file: a reader opens a
    compound file's parts as ``BytesIO`` copies of the mapped file, so every process that
    opens the index would read and hold all of its postings and stored fields (about 200 MB
    for the 90,078 codes articles) before its first query. Separate files are read where
    needed, through the page cache.
    """
    kwargs.setdefault("compound", False)
    if procs > 1:
        return CompactMpWriter(ix, procs=procs, multisegment=True, timeout=timeout, **kwargs)
    return CompactSegmentWriter(ix, timeout=timeout, **kwargs)
