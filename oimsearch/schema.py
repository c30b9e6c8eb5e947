"""Index schema and manifest.

The Whoosh schema (analyzers included) is pickled into the index by Whoosh itself; the
manifest ``oimsearch.json`` beside it records what Whoosh does not: the index format version,
the analyzer name-version, the oimsearch version, the indexed roots, counts, and which Whoosh
index name in the directory is current (a ``--rebuild`` writes a new index name and switches
the manifest atomically, so a failed rebuild never loses the previous index).
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from oimsearch import __version__
from oimsearch.errors import IndexFormatError, IndexNotFoundError, IndexWriteError

FORMAT_VERSION = 1
MANIFEST_NAME = "oimsearch.json"

# Fields: stemmed/folded text for recall, exact twins (accents and forms as typed) for
# precision, stored title/body for snippets, and bookkeeping for incremental updates.
TEXT_FIELDS = ("title", "body")
EXACT_FIELDS = ("title_exact", "body_exact")

# The body's word positions (phrases, proximity) live in their own field, so that scoring the
# body reads term frequencies only: a posting block of ``body`` with positions took ~10x as
# long to decode (bench/README.md). Indexes built before it have positions in ``body``.
POSITIONS_FIELDS = {"body": "body_pos"}


def positions_field(schema, fieldname: str) -> str:
    """The field holding the word positions of ``fieldname`` in this index."""
    twin = POSITIONS_FIELDS.get(fieldname)
    return twin if twin is not None and twin in schema else fieldname


def build_schema():
    from whoosh.columns import NumericColumn, PickleColumn, VarBytesColumn
    from whoosh.fields import COLUMN, ID, STORED, TEXT, Schema

    from oimsearch.analysis import exact_analyzer, stemmed_analyzer
    from oimsearch.fields import BodyPositions, BodyText

    stem = stemmed_analyzer()
    exact = exact_analyzer()
    return Schema(
        id=ID(stored=True, unique=True, sortable=True),
        path=ID(stored=True),
        # absolute source-file key and its stamp "size:mtime_ns:hash", read as columns
        src=ID(sortable=True),
        stamp=COLUMN(VarBytesColumn()),
        title=TEXT(analyzer=stem, stored=True),
        body=BodyText(analyzer=stem, stored=True, phrase=False),
        body_pos=BodyPositions(analyzer=stem),
        title_exact=TEXT(analyzer=exact, phrase=False),
        body_exact=TEXT(analyzer=exact, phrase=False),
        place=STORED(),
        place_key=ID(),
        date=ID(stored=True, sortable=True),
        url=STORED(),
        meta=STORED(),
        hash=STORED(),
        # acronyms defined in the document ("Long Form (ACR)"), folded, space-separated
        acronyms=COLUMN(PickleColumn(VarBytesColumn())),
        # a 32-bit key of the document's title (0: no title), to count the distinct titles
        # (Manifest.title_ratio; absent from indexes built before it)
        title_key=COLUMN(NumericColumn("I")),
    )


@dataclass
class Manifest:
    """oimsearch's own record of an index (``oimsearch.json`` beside Whoosh's files)."""

    format: int = FORMAT_VERSION
    analyzer: str = ""
    oimsearch: str = __version__
    indexname: str = "MAIN"
    roots: list[str] = field(default_factory=list)
    documents: int = 0
    files: int = 0
    created: float = 0.0
    updated: float = 0.0
    acronyms: dict[str, list[str]] = field(default_factory=dict)
    # each long form of `acronyms`, analysed (its stemmed terms), so that a query does not
    # analyse them all again (absent from manifests written before it)
    acronym_terms: dict[str, list[str]] = field(default_factory=dict)
    # distinct titles / documents with a title: the mean over the documents of 1 / (number of
    # documents sharing its title), which scales the title's weight (RankingSettings.title_share);
    # None: not computed yet (a manifest written before it)
    title_ratio: float | None = None
    # Whoosh TOC generation the manifest describes (an older one: a run was killed
    # between its commit and its manifest write)
    generation: int = -1

    @classmethod
    def new(cls, indexname: str = "MAIN") -> Manifest:
        from oimsearch.analysis import ANALYZER_VERSION

        now = time.time()
        return cls(analyzer=ANALYZER_VERSION, indexname=indexname, created=now, updated=now)


def manifest_path(index_dir: str | os.PathLike) -> Path:
    return Path(index_dir) / MANIFEST_NAME


def read_manifest(index_dir: str | os.PathLike, check_format: bool = True) -> Manifest:
    """Read and validate the manifest; raise a one-line error if it is missing or foreign.

    ``check_format=False`` accepts another format version (for ``--rebuild``)."""
    d = Path(index_dir)
    if not d.exists():
        raise IndexNotFoundError(
            f"no index at {d}", hint="build one with `oimsearch index PATH`, or pass --index DIR"
        )
    if not d.is_dir():
        raise IndexNotFoundError(f"{d} is not a directory", hint="pass --index DIR")
    p = manifest_path(d)
    if not p.exists():
        raise IndexNotFoundError(
            f"{d} holds no oimsearch index",
            hint="build one with `oimsearch index PATH --index DIR`",
        )
    try:
        data = json.loads(p.read_text(encoding="utf-8"))
    except (OSError, ValueError, UnicodeError) as e:
        raise IndexFormatError(
            f"cannot read index manifest {p}: {e}", hint="run `oimsearch index --rebuild PATH`"
        ) from e
    if not isinstance(data, dict) or "format" not in data:
        raise IndexFormatError(
            f"{p} is not an oimsearch manifest", hint="run `oimsearch index --rebuild PATH`"
        )
    known = {f for f in Manifest.__dataclass_fields__}
    m = Manifest(**{k: v for k, v in data.items() if k in known})
    if check_format and m.format != FORMAT_VERSION:
        raise IndexFormatError(
            f"index {d} has format {m.format}, this oimsearch reads format {FORMAT_VERSION}",
            hint="run `oimsearch index --rebuild PATH`",
        )
    return m


def check_analyzer(m: Manifest, index_dir: str | os.PathLike) -> None:
    from oimsearch.analysis import ANALYZER_VERSION

    if m.analyzer != ANALYZER_VERSION:
        raise IndexFormatError(
            f"index {index_dir} was built with analyzer {m.analyzer or '?'}, "
            f"this oimsearch uses {ANALYZER_VERSION}",
            hint="run `oimsearch index --rebuild PATH` to rebuild it",
        )


def write_manifest(index_dir: str | os.PathLike, m: Manifest) -> None:
    """Write the manifest atomically (temp file + rename)."""
    d = Path(index_dir)
    data = json.dumps(asdict(m), ensure_ascii=False, indent=1, sort_keys=True)
    try:
        # not mkstemp: its mode 0600 would keep other users from querying the index
        tmp = d / f".oimsearch-{os.getpid()}-{os.urandom(4).hex()}.json"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, d / MANIFEST_NAME)
        except BaseException:
            try:
                os.unlink(tmp)
            except OSError:
                pass
            raise
    except OSError as e:
        raise IndexWriteError(
            f"cannot write {d / MANIFEST_NAME}: {e.strerror or e}",
            hint="check free disk space and permissions",
        ) from e


ENV_INDEX = "OIMSEARCH_INDEX"
DEFAULT_INDEX = "index"


def resolve_index_dir(index: str | os.PathLike | None = None) -> Path:
    """``--index`` > ``$OIMSEARCH_INDEX`` > ``./index`` (here, not in the indexer, so that a
    query finds its index without importing the indexer)."""
    if index:
        return Path(index)
    env = os.environ.get(ENV_INDEX)
    if env:
        return Path(env)
    return Path(DEFAULT_INDEX)
