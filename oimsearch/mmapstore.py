"""Read-only index storage whose compound-segment sub-files are zero-copy views of an mmap.

Whoosh opens each file inside a compound segment (``.seg``) as a ``BufferFile``, which wraps
its slice of the segment's mmap in ``io.BytesIO``: that *copies* the slice. Opening a reader
thus copied the whole terms and postings files of every segment, and the first stored-fields
access copied the whole stored column (about 190 MB and 80 ms on a 90,000-document index),
only to read a few kilobytes of them. Here every sub-file reads its bytes straight from the
mapping, so only the pages a query touches are read. Same files, same bytes, same format:
only how they are read changes.

Used by :class:`oimsearch.searcher.Searcher` (read-only); the indexer keeps Whoosh's storage.
"""

from __future__ import annotations

import mmap

from whoosh.filedb.filestore import FileStorage
from whoosh.filedb.structfile import BufferFile, StructFile


class _ViewReader:
    """A seekable, read-only binary file over a memoryview, without copying it."""

    __slots__ = ("_buf", "_len", "_pos")

    def __init__(self, buf: memoryview):
        self._buf = buf
        self._len = len(buf)
        self._pos = 0

    def read(self, n: int | None = -1) -> bytes:
        pos = self._pos
        end = self._len if n is None or n < 0 else min(self._len, pos + n)
        if end <= pos:
            return b""
        self._pos = end
        return bytes(self._buf[pos:end])

    def readinto(self, b) -> int:
        data = self.read(len(b))
        n = len(data)
        b[:n] = data
        return n

    def readline(self, size: int | None = -1) -> bytes:
        pos = self._pos
        end = self._len if size is None or size < 0 else min(self._len, pos + size)
        if end <= pos:
            return b""
        window = self._buf[pos:end]
        try:
            # memoryview has no find(): look for the newline in small copied chunks
            i, step = 0, 256
            while i < len(window):
                j = bytes(window[i : i + step]).find(b"\n")
                if j >= 0:
                    end = pos + i + j + 1
                    break
                i += step
        finally:
            window.release()
        self._pos = end
        return bytes(self._buf[pos:end])

    def seek(self, offset: int, whence: int = 0) -> int:
        if whence == 1:
            offset += self._pos
        elif whence == 2:
            offset += self._len
        if offset < 0:
            raise ValueError(f"negative seek position {offset}")
        self._pos = offset
        return offset

    def tell(self) -> int:
        return self._pos

    def seekable(self) -> bool:
        return True

    def readable(self) -> bool:
        return True

    def close(self) -> None:
        self._buf = None


class _ViewFile(BufferFile):
    """A Whoosh ``BufferFile`` over a memoryview, reading it in place (no ``BytesIO`` copy)."""

    def __init__(self, buf: memoryview, name: str | None = None):
        self._buf = buf
        self._name = name
        self.file = reader = _ViewReader(buf)
        self.onclose = None
        self.is_real = False
        self.is_closed = False
        # skip StructFile's forwarding frame on the sequential reads
        self.read = reader.read
        self.seek = reader.seek
        self.tell = reader.tell

    def subset(self, position: int, length: int, name: str | None = None) -> _ViewFile:
        return _ViewFile(self._buf[position : position + length], name=name or self._name)


class _MappedFile(StructFile):
    """A file of the index directory; ``subset`` (a compound sub-file) is a view of its mmap."""

    def __init__(self, fileobj, name: str | None = None, **kwargs):
        super().__init__(fileobj, name=name, **kwargs)
        self._map: mmap.mmap | None = None
        self._view: memoryview | None = None

    def subset(self, offset: int, length: int, name: str | None = None) -> StructFile:
        if self._view is None:
            try:
                self._map = mmap.mmap(self.file.fileno(), 0, access=mmap.ACCESS_READ)
            except (OSError, ValueError):
                return super().subset(offset, length, name=name)  # Whoosh's plain sub-file
            self._view = memoryview(self._map)
        return _ViewFile(self._view[offset : offset + length], name=name)

    def close(self) -> None:
        view, mapping = self._view, self._map
        self._view = self._map = None
        if view is not None:
            view.release()
        if mapping is not None:
            try:
                mapping.close()
            except BufferError:
                # a sub-file view is still referenced somewhere: collect it, else leave the
                # mapping to the garbage collector (as Whoosh's own mmap path does)
                import gc

                gc.collect()
                try:
                    mapping.close()
                except BufferError:
                    pass
        super().close()


class MappedStorage(FileStorage):
    """A read-only :class:`FileStorage` whose compound segments are read from an mmap in place."""

    def __init__(self, path):
        # supports_mmap=False: CompoundStorage then asks our file for ``subset`` views
        super().__init__(path, supports_mmap=False, readonly=True)

    def open_file(self, name, **kwargs):
        return _MappedFile(open(self._fpath(name), "rb"), name=name, **kwargs)


# ---- term lookups, remembered --------------------------------------------------------------

from whoosh.codec.whoosh3 import W3TermsReader  # noqa: E402
from whoosh.reading import TermNotFound  # noqa: E402

# entries kept per segment before the memo starts over (a term info is ~200 bytes)
TERM_MEMO_SIZE = 20_000


class _MemoTermsReader(W3TermsReader):
    """Whoosh's terms reader, remembering each term's info once looked up.

    One query looks its terms up many times: each leaf's matcher and scorer, each Or's size
    estimate, the group IDF, the typo check, the proximity order (on the codes queries, about
    45 document frequencies and 37 term infos a query, each a hash-table probe and a struct
    decoding in Python). The index is read-only while a searcher is open, so the answers never
    change. Same values: the document frequency and total frequency are the term info's
    fields that Whoosh's ``doc_frequency`` and ``frequency`` read from the same bytes."""

    _oim_memo: dict

    def term_info(self, fieldname, tbytes):
        memo = self._oim_memo
        key = (fieldname, tbytes)
        ti = memo.get(key, memo)
        if ti is memo:
            try:
                ti = W3TermsReader.term_info(self, fieldname, tbytes)
            except TermNotFound:
                ti = None
            if len(memo) >= TERM_MEMO_SIZE:
                memo.clear()
            memo[key] = ti
        if ti is None:
            raise TermNotFound(f"No term {fieldname}:{tbytes!r}")
        return ti

    def _known(self, fieldname, tbytes):
        try:
            return self.term_info(fieldname, tbytes)
        except TermNotFound:
            raise KeyError((fieldname, tbytes)) from None  # what Whoosh's hash lookup raises

    def doc_frequency(self, fieldname, tbytes):
        return self._known(fieldname, tbytes).doc_frequency()

    def frequency(self, fieldname, tbytes):
        return self._known(fieldname, tbytes).weight()

    def __contains__(self, term):
        try:
            self.term_info(*term)
        except TermNotFound:
            return False
        return True


def memoize_terms(reader) -> None:
    """Make each segment of ``reader`` remember its term lookups (Whoosh's own terms reader
    only; any other is left as it is)."""
    for r, _offset in reader.leaf_readers():
        terms = getattr(r, "_terms", None)
        if type(terms) is W3TermsReader:
            terms._oim_memo = {}
            terms.__class__ = _MemoTermsReader
