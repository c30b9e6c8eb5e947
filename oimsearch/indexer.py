"""Build or update an index from folders of articles.

Incremental and crash-safe:

* a file whose size and mtime are those recorded in the index is not read again; one whose
  stamp changed is read and hashed, and re-indexed only when its content hash changed;
* the documents of files that disappeared under the indexed roots are removed;
* every change of one run is committed at once by Whoosh (a new TOC generation), so a run
  that fails or is killed leaves the previous generation intact; ``--rebuild`` writes a new
  Whoosh index name in the same directory and switches the manifest to it only after the
  commit, so the previous index stays readable until then;
* one run at a time: an ``oimsearch.lock`` file lock (released by the OS if the process dies);
  queries keep working during a run, on the last committed generation.

Bad input never stops a run: every unreadable, binary, empty or malformed input becomes a
:class:`~oimsearch.sources.Problem` in the report.
"""

from __future__ import annotations

import errno
import json
import os
import re
import shutil
import signal
import sys
import time
import zlib
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from oimsearch import acronyms as acro
from oimsearch.errors import (
    IndexFormatError,
    IndexLockedError,
    IndexNotFoundError,
    IndexWriteError,
    OimsearchError,
    UsageError,
)
from oimsearch.schema import (
    MANIFEST_NAME,
    Manifest,
    build_schema,
    check_analyzer,
    read_manifest,
    resolve_index_dir,
    write_manifest,
)

LOCK_NAME = "oimsearch.lock"
# Above this many bytes to read, two writer processes pay on a 2-core machine
# (docs/indexing-notes: procs=2, multisegment=True more than doubles throughput).
PARALLEL_MIN_BYTES = 4_000_000
# A .txt/.md/.html file is read whole and becomes one document: above this size it is a
# dump or a log, not an article (a 50 MB file took a minute and 1 GB of memory to index,
# and slowed every query it matched). JSON Lines files are streamed: no limit.
MAX_DOCUMENT_FILE_BYTES = 10_000_000
# Files that may sit in an index directory before an index is created in it.
_ALLOWED_FOREIGN = {"README.md", ".gitignore", ".gitkeep"}


@dataclass
class IndexReport:
    """What one :func:`index_paths` run did: counts, problems and timings."""

    index_dir: str
    added: int = 0
    updated: int = 0
    removed: int = 0
    unchanged: int = 0
    skipped: int = 0
    failed: int = 0
    warnings: int = 0
    documents: int = 0
    files: int = 0
    seconds: float = 0.0
    rebuilt: bool = False
    problems: list = field(default_factory=list)

    @property
    def docs_per_s(self) -> float:
        done = self.added + self.updated
        return done / self.seconds if self.seconds > 0 else 0.0

    def to_dict(self) -> dict:
        return {
            "index": self.index_dir,
            "added": self.added,
            "updated": self.updated,
            "removed": self.removed,
            "unchanged": self.unchanged,
            "skipped": self.skipped,
            "failed": self.failed,
            "warnings": self.warnings,
            "documents": self.documents,
            "files": self.files,
            "seconds": round(self.seconds, 3),
            "docs_per_s": round(self.docs_per_s, 1),
            "rebuilt": self.rebuilt,
            "problems": [
                {"path": p.path, "reason": p.reason, "severity": p.severity} for p in self.problems
            ],
        }


class _Lock:
    """Exclusive, non-blocking-with-timeout file lock on ``oimsearch.lock``."""

    def __init__(self, index_dir: Path, timeout: float = 2.0):
        self.path = index_dir / LOCK_NAME
        self.timeout = timeout
        self.fd: int | None = None

    def __enter__(self) -> _Lock:
        import fcntl

        try:
            self.fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as e:
            raise IndexWriteError(
                f"cannot write to index directory {self.path.parent}: {e.strerror or e}",
                hint="check its permissions, or pass --index DIR",
            ) from e
        deadline = time.monotonic() + self.timeout
        while True:
            try:
                fcntl.flock(self.fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                return self
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    os.close(self.fd)
                    self.fd = None
                    raise IndexLockedError(
                        f"index {self.path.parent} is being updated by another process",
                        hint="wait for it to finish, then run this command again",
                    ) from None
                time.sleep(0.1)

    def __exit__(self, *exc) -> None:
        import fcntl

        if self.fd is not None:
            fcntl.flock(self.fd, fcntl.LOCK_UN)
            os.close(self.fd)
            self.fd = None


# Files a killed first run may leave behind (before the manifest exists): Whoosh files of
# our index names (segments, TOCs and their temp files, the writer lock, temp folders) and
# manifest temp files. They are ours only if the run got as far as creating the lock file.
_OWN_LEFTOVER = re.compile(
    r"^(?:_?(?:MAIN|R[0-9]+)(?:_[0-9A-Za-z]+(?:\.[0-9A-Za-z_.]+)?|\.tmp)|\.oimsearch-.*\.json)$"
)


def _prepare_dir(index_dir: Path) -> None:
    if index_dir.exists() and not index_dir.is_dir():
        raise UsageError(f"--index {index_dir} is a file", hint="pass a directory")
    if index_dir.is_dir() and not (index_dir / MANIFEST_NAME).exists():
        names = [p.name for p in index_dir.iterdir() if p.name not in _ALLOWED_FOREIGN]
        own_leftovers = LOCK_NAME in names and all(
            n == LOCK_NAME or _OWN_LEFTOVER.match(n) for n in names
        )
        foreign = [n for n in names if n != LOCK_NAME]
        if foreign and not own_leftovers:
            raise IndexNotFoundError(
                f"{index_dir} is not empty and holds no oimsearch index",
                hint="pass --index with a new or empty directory",
            )
    try:
        index_dir.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise IndexWriteError(
            f"cannot create index directory {index_dir}: {e.strerror or e}",
            hint="check permissions, or pass --index DIR",
        ) from e


def _new_indexname(index_dir: Path, previous: str | None) -> str:
    n = 1
    if previous and previous.startswith("R") and previous[1:].isdigit():
        n = int(previous[1:]) + 1
    while any(
        p.name.startswith(f"R{n}_") or p.name.startswith(f"_R{n}_") for p in index_dir.iterdir()
    ):
        n += 1
    return f"R{n}"


def _remove_indexname_files(index_dir: Path, indexname: str) -> None:
    toc = re.compile(rf"^_{re.escape(indexname)}_[0-9]+\.toc(\.[0-9.]+)?$")
    seg = re.compile(rf"^{re.escape(indexname)}_([0-9a-z]+\.|WRITELOCK$)")
    for p in index_dir.iterdir():
        if toc.match(p.name) or seg.match(p.name):
            try:
                p.unlink()
            except OSError:
                pass


def _clean_stale(index_dir: Path, keep: str) -> None:
    """Remove what killed runs left behind (called under the lock, no writer is running).

    Files of Whoosh index names other than the current one (a killed rebuild), TOC temp
    files (killed while writing a TOC), writer temp folders and manifest temp files.
    Orphan segments of the current name are removed by :func:`_clean_orphans`.
    """
    names = set()
    for p in index_dir.iterdir():
        m = re.match(r"^_([A-Z][A-Z0-9]*)_[0-9]+\.toc$", p.name) or re.match(
            r"^([A-Z][A-Z0-9]*)_([0-9a-z]+\.|WRITELOCK$)", p.name
        )
        if m:
            names.add(m.group(1))
        elif re.match(r"^_[A-Z][A-Z0-9]*_[0-9]+\.toc\.[0-9.]+$", p.name) or re.match(
            r"^\.oimsearch-.*\.json$", p.name
        ):
            try:
                p.unlink()
            except OSError:
                pass
        elif re.match(r"^[A-Z][A-Z0-9]*\.tmp$", p.name) and p.is_dir():
            shutil.rmtree(p, ignore_errors=True)
    for name in names - {keep}:
        _remove_indexname_files(index_dir, name)


def _clean_orphans(ix) -> None:
    """Remove segment files of the current index name that its latest TOC does not list
    (a run killed after writing segments); Whoosh itself only does it at the next commit."""
    from whoosh import index as windex

    try:
        windex.clean_files(ix.storage, ix.indexname, ix.latest_generation(), ix._segments())
    except Exception:  # best effort: leftovers are harmless, the next commit retries
        pass


# --- Whoosh's multiprocess writer ---------------------------------------------------
# Its sub-processes are forked, inherit the lock file descriptors and block on a job
# queue. If the indexing process is killed, they would wait forever holding the locks
# (every later run: "being updated by another process"); if it is interrupted, they
# would keep it from exiting; on Ctrl-C they would print tracebacks. So while our writer
# runs, forked children ignore SIGINT and stderr, and get SIGKILL when the indexing
# process dies (Linux: PR_SET_PDEATHSIG); on failure the parent kills them.
_WRITER_PARENT: int | None = None
_PRCTL = None


def _arm_writer_children() -> None:
    global _WRITER_PARENT, _PRCTL
    if _PRCTL is None:
        _PRCTL = False
        if sys.platform.startswith("linux"):
            try:
                import ctypes

                _PRCTL = ctypes.CDLL(None, use_errno=True).prctl
            except (OSError, AttributeError):
                pass
    _WRITER_PARENT = os.getpid()


def _disarm_writer_children() -> None:
    global _WRITER_PARENT
    _WRITER_PARENT = None


def _writer_child_setup() -> None:
    parent = _WRITER_PARENT
    if parent is None or os.getpid() == parent:
        return
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    if _PRCTL:
        _PRCTL(1, signal.SIGKILL, 0, 0, 0)  # PR_SET_PDEATHSIG
    if os.getppid() != parent:  # the parent died before prctl took effect
        os._exit(1)
    try:  # a child's error is reported by the parent, as one line
        sys.stderr = open(os.devnull, "w")
    except OSError:
        pass


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_writer_child_setup)


def _stop_writer_children(writer) -> None:
    for task in getattr(writer, "tasks", ()):
        if hasattr(task, "kill") and task.is_alive():
            task.kill()
            task.join(5)


def _guard_commit(writer, n_added: int, ix_dir: Path) -> None:
    """Make the commit fail rather than write a generation that lacks documents.

    Whoosh's multiprocess writer commits whatever its sub-processes handed back: one killed
    (e.g. by the OOM killer) or failed (disk full) silently drops its documents, and the
    old versions of updated documents are deleted by the same commit. The new generation
    must hold the live documents of the old one, minus this run's deletions, plus every
    document added.
    """
    expected = sum(s.doc_count() for s in writer.segments) + n_added
    write_toc = writer._commit_toc

    def checked_commit_toc(segments) -> None:
        got = sum(s.doc_count() for s in segments)
        if got != expected:
            codes = [t.exitcode for t in getattr(writer, "tasks", ()) if getattr(t, "exitcode", 0)]
            what = "a writer process " + (
                f"was killed (signal {-codes[0]})"
                if codes and codes[0] < 0
                else f"failed (exit code {codes[0]})"
                if codes
                else "lost documents"
            )
            raise IndexWriteError(
                f"index {ix_dir} not updated: {what}, {got} of {expected} documents written",
                hint="the previous index is intact; check free disk space and memory, then run "
                "the command again, with --procs 1 to see the cause",
            )
        write_toc(segments)

    writer._commit_toc = checked_commit_toc


def _stamp(size: int, mtime_ns: int, digest: str) -> bytes:
    return f"{size}:{mtime_ns}:{digest}".encode()


def _fold_place(place: str | None) -> str | None:
    if not place:
        return None
    from oimsearch.analysis import fold_fragment

    key = " ".join(fold_fragment(w) for w in place.split())
    return key.strip() or None


def _oserror_to_index_error(e: OSError, index_dir: Path) -> OimsearchError:
    if e.errno == errno.ENOSPC:
        return IndexWriteError(
            f"disk full while writing index {index_dir}",
            hint="free some space and run the command again; the previous index is intact",
        )
    if e.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        return IndexWriteError(
            f"cannot write index {index_dir}: {e.strerror}",
            hint="check the directory's permissions, or pass --index DIR",
        )
    return IndexWriteError(
        f"cannot write index {index_dir}: {e.strerror or e}",
        hint="the previous index is intact; run the command again",
    )


def index_paths(
    paths: Sequence[str | os.PathLike],
    index_dir: str | os.PathLike | None = None,
    rebuild: bool = False,
    procs: int | None = None,
    progress: Callable[[int, int, str], None] | None | bool = None,
    on_problem: Callable[[object], None] | None = None,
    lock_timeout: float = 2.0,
) -> IndexReport:
    """Index ``paths`` (folders walked recursively, or files) into ``index_dir``.

    With no paths, the roots recorded in the index are updated. ``progress(done, total,
    name)`` is called as files are processed; ``on_problem(problem)`` for each bad input as
    it is found. Raises :class:`~oimsearch.errors.OimsearchError` subclasses for errors that
    stop the run (locked, unwritable or foreign index); never for bad input.
    """
    from oimsearch import sources

    t0 = time.perf_counter()
    ix_dir = resolve_index_dir(index_dir)
    report = IndexReport(index_dir=str(ix_dir))
    if progress is False:
        progress = None

    def problem(p) -> None:
        report.problems.append(p)
        if p.severity == "failed":
            report.failed += 1
        elif p.severity == "skipped":
            report.skipped += 1
        else:
            report.warnings += 1
        if on_problem:
            on_problem(p)

    manifest: Manifest | None = None
    if (ix_dir / MANIFEST_NAME).exists():
        manifest = _read_manifest_for(ix_dir, rebuild)
    if not paths:
        if manifest is None or not manifest.roots:
            raise UsageError(
                "no PATH given and no indexed roots to update",
                hint="run `oimsearch index PATH` with a folder or file of articles",
            )
        paths = list(manifest.roots)

    discovery = sources.discover(paths)
    for p in discovery.problems:
        problem(p)
    roots = sorted({_root_key(Path(p)) for p in paths})

    _prepare_dir(ix_dir)
    with _Lock(ix_dir, timeout=lock_timeout):
        # re-read under the lock: another run may have finished meanwhile
        if (ix_dir / MANIFEST_NAME).exists():
            manifest = _read_manifest_for(ix_dir, rebuild)
        try:
            _run(
                ix_dir,
                manifest,
                rebuild,
                discovery,
                roots,
                report,
                problem,
                procs,
                progress,
                sources,
            )
        except OSError as e:
            raise _oserror_to_index_error(e, ix_dir) from e
    report.seconds = time.perf_counter() - t0
    return report


def _read_manifest_for(ix_dir: Path, rebuild: bool) -> Manifest | None:
    """The manifest, checked; for --rebuild (the fix its error messages suggest) an index
    of another format or analyzer is fine, and an unreadable manifest is started over."""
    if not rebuild:
        manifest = read_manifest(ix_dir)
        check_analyzer(manifest, ix_dir)
        return manifest
    try:
        return read_manifest(ix_dir, check_format=False)
    except IndexFormatError:
        return None


def _path_key(p: Path) -> str:
    """A path as stored in the index and the manifest: valid UTF-8 text (a file name that
    is not UTF-8 would otherwise make Whoosh, or the JSON manifest, fail the whole run)."""
    return os.fsencode(p.as_posix()).decode("utf-8", "backslashreplace")


def _root_key(p: Path) -> str:
    return _path_key(Path(os.path.abspath(p)))


def _under_roots(key: str, roots: list[str]) -> bool:
    for r in roots:
        if key == r or key.startswith(r.rstrip("/") + "/"):
            return True
    return False


def _run(ix_dir, manifest, rebuild, discovery, roots, report, problem, procs, progress, sources):
    from whoosh import index as windex

    creating = manifest is None or rebuild
    old_name = manifest.indexname if manifest else None
    if creating:
        name = "MAIN" if manifest is None else _new_indexname(ix_dir, old_name)
        _clean_stale(ix_dir, keep=old_name or name)
        new_manifest = Manifest.new(indexname=name)
        ix = windex.create_in(str(ix_dir), build_schema(), indexname=name)
        _clean_orphans(ix)  # segments of a killed first run
        report.rebuilt = bool(rebuild)
    else:
        name = manifest.indexname
        _clean_stale(ix_dir, keep=name)
        try:
            ix = windex.open_dir(str(ix_dir), indexname=name)
        except Exception as e:  # damaged TOC, unpickling errors, missing files
            from oimsearch.errors import IndexFormatError

            raise IndexFormatError(
                f"cannot open index {ix_dir}: {type(e).__name__}: {e}",
                hint="run `oimsearch index --rebuild PATH`",
            ) from e
        _clean_orphans(ix)
        new_manifest = manifest

    # --- what the index holds now: source key -> stamp, doc ids ------------------------
    existing: dict[str, tuple[bytes, list[str]]] = {}
    id_owner: dict[str, str] = {}
    if not creating:
        with ix.reader() as reader:
            # segment by segment (see _index_facts)
            for sub, _offset in reader.leaf_readers():
                src_col = sub.column_reader("src") if sub.has_column("src") else None
                stamp_col = sub.column_reader("stamp") if sub.has_column("stamp") else None
                id_col = sub.column_reader("id") if sub.has_column("id") else None
                if src_col is None or id_col is None:
                    continue
                for docnum in sub.all_doc_ids():
                    key = src_col[docnum]
                    did = id_col[docnum]
                    stamp = stamp_col[docnum] if stamp_col is not None else b""
                    entry = existing.get(key)
                    if entry is None:
                        existing[key] = (stamp, [did])
                    else:
                        entry[1].append(did)
                    id_owner[did] = key

    # --- plan -----------------------------------------------------------------------
    files = discovery.files
    seen_keys: set[str] = set()
    to_read = []
    for f in files:
        key = _path_key(Path(f.path))
        if key in seen_keys:
            continue
        seen_keys.add(key)
        entry = existing.get(key)
        if entry is not None and entry[0].startswith(f"{f.size}:{f.mtime_ns}:".encode()):
            report.unchanged += len(entry[1])
            continue
        if f.kind != "jsonl" and f.size > MAX_DOCUMENT_FILE_BYTES:
            reason = (
                f"too large for one document ({f.size / 1e6:.1f} MB,"
                f" at most {MAX_DOCUMENT_FILE_BYTES / 1e6:.0f} MB)"
            )
            problem(sources.Problem(path=f.rel, reason=reason, severity="skipped"))
            continue
        to_read.append((key, f, entry))
    gone = [k for k in existing if k not in seen_keys and _under_roots(k, roots)]
    report.files = len(seen_keys)

    if not to_read and not gone and not creating:
        report.documents = ix.doc_count()
        if new_manifest.generation != ix.latest_generation():
            # a run was killed between its commit and its manifest: finish its work
            new_manifest.acronyms, _, new_manifest.title_ratio = _index_facts(ix)
            new_manifest.acronym_terms = _acronym_terms(new_manifest.acronyms)
            new_manifest.generation = ix.latest_generation()
            new_manifest.updated = time.time()
        else:
            if new_manifest.acronyms and not new_manifest.acronym_terms:
                # a manifest written before long forms were stored analysed
                new_manifest.acronym_terms = _acronym_terms(new_manifest.acronyms)
            if new_manifest.title_ratio is None:
                # a manifest written before the title ratio
                new_manifest.title_ratio = _index_facts(ix)[2]
        ix.close()
        new_manifest.roots = sorted(set(new_manifest.roots) | set(roots))
        new_manifest.documents = report.documents
        new_manifest.files = len(existing)
        write_manifest(ix_dir, new_manifest)
        return

    # --- chrome learnt per folder, from the .txt/.md files of folders with changes -----
    chrome_by_folder: dict[str, frozenset] = {}
    data_cache: dict[str, bytes] = {}
    folders_changed = {
        str(Path(f.path).parent) for _, f, _ in to_read if f.kind in ("txt", "md", "html")
    }
    if folders_changed:
        by_folder = defaultdict(list)
        for f in files:
            folder = str(Path(f.path).parent)
            if folder in folders_changed and f.kind in ("txt", "md"):
                by_folder[folder].append(f)
        for folder in folders_changed:
            if len(by_folder.get(folder, ())) < 3:
                # files given one by one: learn the chrome from their whole folder
                try:
                    siblings = sources.discover([folder]).files
                except OimsearchError:
                    siblings = []
                by_folder[folder] = [
                    f
                    for f in siblings
                    if str(Path(f.path).parent) == folder and f.kind in ("txt", "md")
                ]
        for folder, fs in by_folder.items():
            texts = []
            for f in fs:
                try:
                    data = sources.read_bytes(f)
                except OSError:
                    continue
                data_cache[_path_key(Path(f.path))] = data
                text, _ = sources.decode_text(f, data)
                if text:
                    texts.append(text)
            chrome_by_folder[folder] = sources.chrome_lines(texts)

    total_bytes = sum(f.size for _, f, _ in to_read)
    if procs is None:
        procs = 2 if (total_bytes >= PARALLEL_MIN_BYTES and (os.cpu_count() or 1) >= 2) else 1
    from oimsearch.writer import open_writer

    if procs > 1:
        _arm_writer_children()
    try:
        writer = open_writer(ix, procs=procs, timeout=5.0)
    except Exception as e:
        from whoosh.index import LockError

        _disarm_writer_children()
        if isinstance(e, LockError):
            raise IndexLockedError(
                f"index {ix_dir} is being updated by another process",
                hint="wait for it to finish, then run this command again",
            ) from e
        raise

    committed = False
    n_added = 0
    try:
        for key in gone:
            writer.delete_by_term("src", key)
            report.removed += len(existing[key][1])
            for did in existing[key][1]:
                if id_owner.get(did) == key:
                    del id_owner[did]

        ids_this_run: dict[str, str] = {}
        total = len(to_read)
        for i, (key, f, entry) in enumerate(to_read):
            if progress:
                progress(i, total, f.rel)
            try:
                data = data_cache.pop(key, None)
                if data is None:
                    data = sources.read_bytes(f)
            except OSError as e:
                problem(sources.problem_from_oserror(f, e))
                continue
            digest = sources.content_hash(data)
            stamp = _stamp(f.size, f.mtime_ns, digest)
            if entry is not None and entry[0].endswith(f":{digest}".encode()):
                # touched but identical: nothing to re-index
                report.unchanged += len(entry[1])
                continue
            if f.kind == "jsonl":
                docs_iter = sources.iter_jsonl(f)
            else:
                try:
                    docs, probs = sources.parse(
                        f, data, chrome_by_folder.get(str(Path(f.path).parent), frozenset())
                    )
                except Exception as e:  # a reader bug must not stop the run
                    problem(
                        sources.Problem(
                            path=f.rel,
                            reason=f"cannot read ({type(e).__name__}: {e})",
                            severity="failed",
                        )
                    )
                    continue
                docs_iter = [*probs, *docs]
            old_ids = set(entry[1]) if entry is not None else set()
            if entry is not None:
                writer.delete_by_term("src", key)
                for did in old_ids:
                    if id_owner.get(did) == key:
                        del id_owner[did]
            n_new = 0
            for item in docs_iter:
                if isinstance(item, sources.Problem):
                    problem(item)
                    continue
                doc = item
                owner = ids_this_run.get(doc.id) or id_owner.get(doc.id)
                if owner is not None:
                    problem(
                        sources.Problem(
                            path=f.rel,
                            reason=f"duplicate id {doc.id!r} (already indexed from {_short(owner, roots)})",
                            severity="failed",
                        )
                    )
                    continue
                ids_this_run[doc.id] = f.rel
                _add(writer, doc, f, key, stamp, digest)
                n_new += 1
                n_added += 1
                if doc.id in old_ids:
                    report.updated += 1
                else:
                    report.added += 1
            if entry is not None:
                report.removed += len(
                    old_ids - set(d for d, o in ids_this_run.items() if o == f.rel)
                )
        if progress:
            progress(total, total, "committing")
        _guard_commit(writer, n_added, ix_dir)
        writer.commit()
        committed = True
    finally:
        if not committed:
            _stop_writer_children(writer)
            try:
                writer.cancel()
            except Exception:
                pass
            _clean_orphans(ix)  # free the space the failed writer took (disk full)
        _disarm_writer_children()

    ix2 = windex.open_dir(str(ix_dir), indexname=name)
    report.documents = ix2.doc_count()
    new_manifest.acronyms, new_manifest.files, new_manifest.title_ratio = _index_facts(ix2)
    new_manifest.acronym_terms = _acronym_terms(new_manifest.acronyms)
    new_manifest.generation = ix2.latest_generation()
    ix2.close()
    ix.close()
    if rebuild:
        new_manifest.roots = roots
    else:
        new_manifest.roots = sorted(set(new_manifest.roots) | set(roots))
    new_manifest.documents = report.documents
    new_manifest.updated = time.time()
    from oimsearch import __version__

    new_manifest.oimsearch = __version__
    write_manifest(ix_dir, new_manifest)
    if rebuild and old_name and old_name != name:
        _remove_indexname_files(ix_dir, old_name)


def _short(key: str, roots: list[str]) -> str:
    for r in roots:
        if key.startswith(r.rstrip("/") + "/"):
            return key[len(r.rstrip("/")) + 1 :]
    return key


def _add(writer, doc, f, key: str, stamp: bytes, digest: str) -> None:
    title = doc.title or ""
    body = doc.body or ""
    found = acro.extract(title + "\n" + body)
    fields = {
        "id": doc.id,
        "path": f.rel,
        "src": key,
        "stamp": stamp,
        "title": title,
        "body": body,
        "title_exact": title,
        "body_exact": body,
        "hash": digest,
    }
    if "body_pos" in writer.schema:  # (not in an index built before it)
        fields["body_pos"] = body
    if doc.place:
        fields["place"] = doc.place
        pk = _fold_place(doc.place)
        if pk:
            fields["place_key"] = pk
    if doc.date:
        fields["date"] = doc.date
    if doc.url:
        fields["url"] = doc.url
    if doc.meta:
        fields["meta"] = json.dumps(doc.meta, ensure_ascii=False, default=str)
    if found:
        fields["acronyms"] = found
    if "title_key" in writer.schema:  # (not in an index built before it)
        key = title_key(title)
        if key:
            fields["title_key"] = key
    writer.add_document(**fields)


def title_key(title: str) -> int:
    """A 32-bit key of a title, the same for titles that differ only in case or spacing;
    0 for no title."""
    norm = " ".join(title.casefold().split())
    if not norm:
        return 0
    return zlib.crc32(norm.encode("utf-8")) or 1


def _acronym_terms(acronyms: dict[str, list[str]]) -> dict[str, list[str]]:
    """Long form -> its stemmed terms, for the manifest (see Manifest.acronym_terms)."""
    from oimsearch.analysis import terms

    return {form: terms(form) for forms in acronyms.values() for form in forms}


def _index_facts(ix) -> tuple[dict[str, list[str]], int, float]:
    """From the columns: the acronyms found in the documents (acronym -> long forms, most
    frequent first), the number of distinct source files and the title ratio (distinct
    titles / documents with a title, see Manifest.title_ratio)."""
    counts: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    sources_seen = set()
    titles_seen = set()
    titled = 0
    with ix.reader() as reader:
        # segment by segment: a segment none of whose documents defines an acronym has no
        # acronyms column, and Whoosh's multi-segment column reader then maps the later
        # segments' documents onto the wrong segment (IndexError)
        for sub, _offset in reader.leaf_readers():
            acr_col = sub.column_reader("acronyms") if sub.has_column("acronyms") else None
            src_col = sub.column_reader("src") if sub.has_column("src") else None
            # an index built before title_key: the stored titles
            tk_col = sub.column_reader("title_key") if "title_key" in sub.schema else None
            for docnum in sub.all_doc_ids():
                if src_col is not None:
                    sources_seen.add(src_col[docnum])
                if acr_col is not None:
                    for acr, long_form in acr_col[docnum] or ():
                        counts[acr][long_form] += 1
                if tk_col is not None:
                    key = tk_col[docnum]
                else:
                    key = title_key(sub.stored_fields(docnum).get("title") or "")
                if key:
                    titled += 1
                    titles_seen.add(key)
    ratio = len(titles_seen) / titled if titled else 1.0
    return acro.select(counts), len(sources_seen), ratio
