"""The input side of ``oimsearch index``: find files, decode them, turn them into documents.

Nothing here raises on bad input. Every file or JSONL line that cannot be used becomes a
:class:`Problem` naming it, with a short reason and a severity:

* ``failed``: it should have been indexed but could not be (binary, unreadable, bad JSON...);
* ``skipped``: ignored on purpose (empty, unsupported type, symlink loop...);
* ``warning``: indexed anyway, with a caveat (legacy encoding, odd file name...).

The only exception is :class:`~oimsearch.errors.SourceError` from :func:`discover` for a
path argument that does not exist (a user error in the command line).

Formats: plain text, Markdown (with simple front matter), HTML (main text through
trafilatura) and JSON Lines (optionally gzip-compressed, read as a stream). Scraped pages
repeat the site's navigation in every file; :func:`chrome_lines` learns those lines from the
files of one folder so that :func:`parse` can drop them.
"""

from __future__ import annotations

import codecs
import datetime as _dt
import errno
import gzip
import hashlib
import io
import json
import os
import re
import stat
import unicodedata
import zlib
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from oimsearch.errors import SourceError

__all__ = [
    "EXTENSIONS",
    "FAILED",
    "SKIPPED",
    "WARNING",
    "Discovery",
    "Problem",
    "SourceDoc",
    "SourceFile",
    "chrome_lines",
    "content_hash",
    "decode_text",
    "discover",
    "iter_jsonl",
    "parse",
    "problem_from_oserror",
    "read_bytes",
]

EXTENSIONS = {
    ".txt": "txt",
    ".md": "md",
    ".markdown": "md",
    ".html": "html",
    ".htm": "html",
    ".jsonl": "jsonl",
    ".jsonl.gz": "jsonl",
}

FAILED = "failed"
SKIPPED = "skipped"
WARNING = "warning"

INDEX_MARKER = "oimsearch.json"
TITLE_MAX = 120
# A first line longer than this is a paragraph, not a title: it stays in the body.
_TITLE_LINE_MAX = 300
_BINARY_PROBE = 8192
# JSONL files whose first lines are all unusable are reported once and not read further.
_JSONL_GIVE_UP = 10

_UNSUPPORTED = "unsupported file type, expected .txt .md .html .jsonl .jsonl.gz"
_BINARY_MAGIC = (
    b"%PDF-",
    b"PK\x03\x04",
    b"\x1f\x8b",
    b"\x89PNG",
    b"GIF8",
    b"\xff\xd8\xff",
    b"\x7fELF",
    b"BZh",
    b"\xfd7zXZ",
    b"7z\xbc\xaf",
    b"SQLite format 3",
)
_JSON_ERRORS = (ValueError, RecursionError)  # json.JSONDecodeError is a ValueError


@dataclass(frozen=True)
class SourceFile:
    """One input file found by :func:`discover`."""

    root: Path
    path: Path
    rel: str
    kind: str
    size: int
    mtime_ns: int


@dataclass(frozen=True)
class Problem:
    """A file or JSONL line that was not (fully) indexed, as shown to the user."""

    path: str
    reason: str
    severity: str


@dataclass
class SourceDoc:
    """One document ready for the indexer."""

    id: str
    title: str
    body: str
    date: str | None = None
    place: str | None = None
    url: str | None = None
    meta: dict[str, Any] = field(default_factory=dict)


@dataclass
class Discovery:
    """Result of :func:`discover`: the files to read and what was left out."""

    files: list[SourceFile]
    problems: list[Problem]


# --------------------------------------------------------------------------- discovery


def _kind_of(name: str) -> str | None:
    """The format of a file from its name, or None when the extension is not supported."""
    low = name.lower()
    if low.endswith(".jsonl.gz"):
        return "jsonl"
    return EXTENSIONS.get(os.path.splitext(low)[1])


def _display(part: str) -> tuple[str, bool]:
    """A path part as valid UTF-8 text (replacement characters), and whether it had to change."""
    raw = os.fsencode(part)
    text = raw.decode("utf-8", "replace")
    return text, text != part


def _stat_problem(shown: str, e: OSError, is_link: bool) -> Problem:
    if e.errno == errno.ELOOP:
        return Problem(shown, "symbolic link loop", SKIPPED)
    if is_link and e.errno == errno.ENOENT:
        return Problem(shown, "broken symbolic link", FAILED)
    return Problem(shown, _oserror_reason(e), FAILED)


def _make_file(root: Path, path: Path, rel: str, kind: str, st: os.stat_result) -> SourceFile:
    return SourceFile(
        root=root, path=path, rel=rel, kind=kind, size=st.st_size, mtime_ns=st.st_mtime_ns
    )


def discover(paths: Sequence[str | Path]) -> Discovery:
    """Find the files to index under ``paths`` (folders walked recursively, in sorted order).

    Hidden files and folders, and index folders (holding ``oimsearch.json``), are left out;
    files of unknown type inside folders are ignored silently, given directly they are
    reported. Raises :class:`SourceError` only for a path that does not exist.
    """
    for p in paths:
        if not os.path.lexists(p):
            raise SourceError(
                f"path not found: {os.fsdecode(p)}",
                hint="give existing folders or .txt/.md/.html/.jsonl/.jsonl.gz files",
            )
    files: list[SourceFile] = []
    problems: list[Problem] = []
    seen_files: dict[tuple[int, int], str] = {}
    seen_dirs: dict[tuple[int, int], str] = {}

    def add(sf: SourceFile, st: os.stat_result, shown: str) -> None:
        key = (st.st_dev, st.st_ino)
        if key in seen_files:
            problems.append(Problem(shown, f"same file as {seen_files[key]}", SKIPPED))
            return
        seen_files[key] = shown
        files.append(sf)

    for p in paths:
        arg = os.fsdecode(p)
        shown_arg = _display(arg)[0]
        abspath = Path(os.path.abspath(p))
        try:
            st = os.stat(abspath)
        except OSError as e:
            problems.append(_stat_problem(shown_arg, e, os.path.islink(abspath)))
            continue
        if stat.S_ISDIR(st.st_mode):
            _walk(abspath, st, shown_arg, problems, add, seen_dirs)
            continue
        kind = _kind_of(abspath.name)
        if kind is None:
            problems.append(Problem(shown_arg, _UNSUPPORTED, SKIPPED))
        elif not stat.S_ISREG(st.st_mode):
            problems.append(Problem(shown_arg, "not a regular file", SKIPPED))
        else:
            rel, changed = _display(abspath.name)
            if changed:
                problems.append(Problem(rel, "file name is not valid UTF-8", WARNING))
            add(_make_file(abspath.parent, abspath, rel, kind, st), st, shown_arg)
    return Discovery(files, problems)


IGNORE_FILE = ".oimsearchignore"


def _read_ignore(folder: Path) -> list[str]:
    """Glob patterns of a ``.oimsearchignore`` file (one a line, ``#`` comments)."""
    try:
        text = (folder / IGNORE_FILE).read_text(encoding="utf-8", errors="replace")
    except OSError:
        return []
    pats = []
    for line in text.splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            pats.append(line.rstrip("/"))
    return pats


def _ignored(rel: str, name: str, ignores: tuple[tuple[str, str], ...]) -> bool:
    """Does a pattern of an ignore file in an enclosing folder match this path?"""
    import fnmatch

    for base, pat in ignores:
        if not rel.startswith(base):
            continue
        sub = rel[len(base) :]
        if "/" in pat:
            if fnmatch.fnmatchcase(sub, pat.lstrip("/")):
                return True
        elif fnmatch.fnmatchcase(name, pat):
            return True
    return False


def _walk(
    root: Path,
    root_st: os.stat_result,
    shown_root: str,
    problems: list[Problem],
    add: Callable[[SourceFile, os.stat_result, str], None],
    seen_dirs: dict[tuple[int, int], str],
) -> None:
    """Depth-first walk of one root folder in name order (iterative: no recursion limit)."""
    if os.path.isfile(root / INDEX_MARKER):
        problems.append(Problem(shown_root, "oimsearch index folder, not indexed", SKIPPED))
        return
    root_key = (root_st.st_dev, root_st.st_ino)
    if root_key in seen_dirs:
        problems.append(Problem(shown_root, f"same folder as {seen_dirs[root_key]}", SKIPPED))
        return
    seen_dirs[root_key] = shown_root
    # One frame per open folder: (remaining names, folder, rel prefix, folder and ancestors).
    stack: list[tuple[Iterator[str], Path, str, frozenset[tuple[int, int]], tuple]] = []

    def enter(
        folder: Path,
        prefix: str,
        ancestors: frozenset[tuple[int, int]],
        ignores: tuple[tuple[str, str], ...],
    ) -> None:
        try:
            with os.scandir(folder) as it:
                names = sorted(e.name for e in it if not e.name.startswith("."))
        except OSError as e:
            problems.append(Problem(prefix.rstrip("/") or shown_root, _oserror_reason(e), FAILED))
            return
        ignores = ignores + tuple((prefix, pat) for pat in _read_ignore(folder))
        stack.append((iter(names), folder, prefix, ancestors, ignores))

    enter(root, "", frozenset({root_key}), ())
    while stack:
        names, folder, prefix, ancestors, ignores = stack[-1]
        name = next(names, None)
        if name is None:
            stack.pop()
            continue
        path = folder / name
        shown_name, bad_name = _display(name)
        rel = prefix + shown_name
        if ignores and _ignored(rel, shown_name, ignores):
            continue
        kind = _kind_of(name)
        try:
            st = os.stat(path)
        except OSError as e:
            # A dangling link of unknown type is noise; one that loops is worth a word.
            if kind is not None or e.errno == errno.ELOOP:
                problems.append(_stat_problem(rel, e, os.path.islink(path)))
            continue
        if stat.S_ISDIR(st.st_mode):
            key = (st.st_dev, st.st_ino)
            if key in ancestors:
                problems.append(Problem(rel, "symbolic link loop", SKIPPED))
            elif key in seen_dirs:
                problems.append(Problem(rel, f"same folder as {seen_dirs[key]}", SKIPPED))
            elif not os.path.isfile(path / INDEX_MARKER):
                seen_dirs[key] = rel
                if bad_name:
                    problems.append(Problem(rel, "folder name is not valid UTF-8", WARNING))
                enter(path, rel + "/", ancestors | {key}, ignores)
        elif kind is None:
            continue
        elif not stat.S_ISREG(st.st_mode):
            problems.append(Problem(rel, "not a regular file", SKIPPED))
        else:
            if bad_name:
                problems.append(Problem(rel, "file name is not valid UTF-8", WARNING))
            add(_make_file(root, path, rel, kind, st), st, rel)


# --------------------------------------------------------------------------- reading


def read_bytes(f: SourceFile) -> bytes:
    """The raw content of a file (compressed as it is for ``.jsonl.gz``); may raise OSError."""
    return f.path.read_bytes()


def _oserror_reason(e: OSError) -> str:
    reasons = {
        errno.EACCES: "permission denied",
        errno.EPERM: "permission denied",
        errno.ENOENT: "file disappeared",
        errno.EISDIR: "is a folder",
        errno.ELOOP: "symbolic link loop",
        errno.EIO: "input/output error",
        errno.ENAMETOOLONG: "file name too long",
    }
    if e.errno in reasons:
        return reasons[e.errno]
    return (e.strerror or str(e) or type(e).__name__).strip().lower()


def problem_from_oserror(f: SourceFile, e: OSError) -> Problem:
    """A ``failed`` Problem for an OSError met while reading ``f``."""
    return Problem(f.rel, _oserror_reason(e), FAILED)


def content_hash(data: bytes) -> str:
    """Hex BLAKE2b digest (16 bytes) of a file's raw content."""
    return hashlib.blake2b(data, digest_size=16).hexdigest()


# --------------------------------------------------------------------------- chrome


def chrome_lines(texts: Iterable[str], min_docs: int = 3, share: float = 0.6) -> frozenset[str]:
    """Lines repeated across the pages of one site (menus, footers), learnt from the data.

    A stripped, non-empty line is chrome when it occurs in at least ``share`` of the
    documents, and in at least ``min_docs`` of them, counted once per document. Fewer
    than ``min_docs`` documents give an empty set.
    """
    counts: Counter[str] = Counter()
    n = 0
    for text in texts:
        n += 1
        counts.update({s for line in text.split("\n") if (s := line.strip())})
    if n < min_docs:
        return frozenset()
    need = max(min_docs, share * n)
    return frozenset(line for line, c in counts.items() if c >= need)


# --------------------------------------------------------------------------- decoding


def _has_binary_magic(data: bytes) -> bool:
    return data.startswith(_BINARY_MAGIC)


_HIGH_BYTES = bytes(range(128, 256))
_ASCII_LETTERS = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
_CONTROL_BYTES = bytes(c for c in range(32) if c not in b"\t\n\r\f")


def _count(data: bytes, members: bytes) -> int:
    """How many bytes of ``data`` are in ``members`` (C speed, fine on 50 MB)."""
    return len(data) - len(data.translate(None, members))


def _looks_french_cp1252(data: bytes) -> str | None:
    """``data`` decoded as cp1252 when that reads like Western European text, else None.

    Generic detectors often pick cp1250 or cp775 for short French texts, which turns
    "à" into "ŕ". Legacy French files are cp1252/latin-1: try that first, and accept it when
    bytes above ASCII stay a minority next to ASCII letters (Cyrillic or Greek read as cp1252
    would be almost all accents) and there are no control characters.
    """
    if _count(data, _CONTROL_BYTES):
        return None
    high = _count(data, _HIGH_BYTES)
    letters = _count(data, _ASCII_LETTERS) + high
    if letters == 0 or high > 0.3 * letters:
        return None
    try:
        return data.decode("cp1252")
    except UnicodeDecodeError:
        return None


def _mostly_utf8(data: bytes) -> str | None:
    """UTF-8 with a few bad bytes (e.g. a stray latin-1 byte): decoded with replacements."""
    text = data.decode("utf-8", "replace")
    bad = text.count("\ufffd")
    good = len(text) - len(text.encode("ascii", "ignore")) - bad
    return text if good > bad else None


def _declared_html_charset(data: bytes) -> str | None:
    m = re.search(rb"""<meta[^>]+charset\s*=\s*["']?\s*([A-Za-z0-9_.:-]+)""", data[:4096], re.I)
    if not m:
        return None
    try:
        return codecs.lookup(m.group(1).decode("ascii")).name
    except (LookupError, UnicodeDecodeError):
        return None


def _finish_text(text: str) -> str:
    if text.startswith("\ufeff"):
        text = text[1:]
    if "\r" in text:
        text = text.replace("\r\n", "\n").replace("\r", "\n")
    if not unicodedata.is_normalized("NFC", text):
        text = unicodedata.normalize("NFC", text)
    return text


def decode_text(f: SourceFile, data: bytes) -> tuple[str | None, list[Problem]]:
    """Decode a text file: UTF-8 (BOM stripped), UTF-16/32 with BOM, else a detected legacy
    encoding with a warning. Binary or undecodable data gives None and a ``failed`` Problem.
    Line ends become LF and the text is NFC-normalised.
    """
    problems: list[Problem] = []
    text: str | None = None
    for bom, codec in (
        (codecs.BOM_UTF32_LE, "utf-32"),
        (codecs.BOM_UTF32_BE, "utf-32"),
        (codecs.BOM_UTF8, "utf-8-sig"),
        (codecs.BOM_UTF16_LE, "utf-16"),
        (codecs.BOM_UTF16_BE, "utf-16"),
    ):
        if data.startswith(bom):
            try:
                text = data.decode(codec)
            except UnicodeDecodeError:
                text = data.decode(codec, "replace")
                problems.append(Problem(f.rel, f"invalid {codec} bytes replaced", WARNING))
            break
    if text is None:
        if b"\x00" in data or _has_binary_magic(data[:_BINARY_PROBE]):
            return None, [Problem(f.rel, "binary file", FAILED)]
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError:
            text, problems = _decode_legacy(f, data)
            if text is None:
                return None, problems
    if "\x00" in text:
        return None, [Problem(f.rel, "binary file", FAILED)]
    return _finish_text(text), problems


def _decode_legacy(f: SourceFile, data: bytes) -> tuple[str | None, list[Problem]]:
    """Text that is not valid UTF-8: declared HTML charset, near-UTF-8, cp1252, detection."""
    if f.kind == "html" and (declared := _declared_html_charset(data)) and declared != "utf-8":
        # As browsers do: a page labelled latin-1 is read as cp1252 (’, €, œ in 0x80-0x9F).
        for codec in ("cp1252", declared) if declared == "iso8859-1" else (declared,):
            try:
                return data.decode(codec), []
            except (UnicodeDecodeError, LookupError):
                continue
    text = _mostly_utf8(data)
    if text is not None:
        return text, [Problem(f.rel, "invalid UTF-8 bytes replaced", WARNING)]
    text = _looks_french_cp1252(data)
    if text is not None:
        return text, [Problem(f.rel, "decoded as cp1252", WARNING)]
    import charset_normalizer

    best = charset_normalizer.from_bytes(data).best()
    if best is None or best.encoding is None:
        return None, [Problem(f.rel, "undecodable", FAILED)]
    try:
        text = data.decode(best.encoding, "replace")
    except LookupError:
        return None, [Problem(f.rel, "undecodable", FAILED)]
    return text, [Problem(f.rel, f"decoded as {best.encoding}", WARNING)]


# --------------------------------------------------------------------------- dates, places

_MONTHS = {
    "janvier": 1,
    "février": 2,
    "fevrier": 2,
    "mars": 3,
    "avril": 4,
    "mai": 5,
    "juin": 6,
    "juillet": 7,
    "août": 8,
    "aout": 8,
    "septembre": 9,
    "octobre": 10,
    "novembre": 11,
    "décembre": 12,
    "decembre": 12,
}
_DATE_RE = re.compile(
    r"(?<!\d)(?:"
    r"(?P<iy>\d{4})-(?P<im>\d{1,2})-(?P<id>\d{1,2})"
    r"|(?P<nd>\d{1,2})[/.](?P<nm>\d{1,2})[/.](?P<ny>\d{4})"
    r"|(?P<wd>\d{1,2}|1er)\s+(?P<wm>" + "|".join(_MONTHS) + r")\s+(?P<wy>\d{4})"
    r")(?!\d)",
    re.I,
)


def _find_date(text: str) -> str | None:
    """The first valid date in ``text`` as ISO ``YYYY-MM-DD``, or None."""
    for m in _DATE_RE.finditer(text):
        if m.group("iy"):
            y, mo, d = int(m.group("iy")), int(m.group("im")), int(m.group("id"))
        elif m.group("ny"):
            y, mo, d = int(m.group("ny")), int(m.group("nm")), int(m.group("nd"))
        else:
            day = m.group("wd").lower()
            y, mo, d = (
                int(m.group("wy")),
                _MONTHS[m.group("wm").lower()],
                1 if day == "1er" else int(day),
            )
        if not 1800 <= y <= 2200:
            continue
        try:
            return _dt.date(y, mo, d).isoformat()
        except ValueError:
            continue
    return None


# Words that start sentences: a dateline "place" beginning with one of them must be made of
# capitalised words only ("La Paz", "Le Caire"), otherwise it is a clause ("Depuis lundi").
_STARTERS = frozenset(
    "le la les l un une des du de d il elle ils elles on nous vous je ce cette ces cet "
    "depuis selon pour dans en au aux après avant lors alors mais et ou donc or car si "
    "quand lorsque comme par sur avec sans chez entre vers hier aujourd "
    # press-release furniture that precedes a dash: "Communiqué de presse – ..."
    "communiqué communiqués dépêche note article actualité actualités publié publiée "
    "mis mise".split()
)
_CONNECTORS = frozenset("de du des d la le les l et sur en".split())
_PLACE_FORBIDDEN = set('.!?:;«»"“”()[]{}/|@#*=+<>')
_DASH_RE = re.compile(r"\s+[-–—]+\s+")
_COMMA_DATE_RE = re.compile(r"^(?P<place>[^,\n]{1,60}),\s*(?:le\s+)?(?=\d)", re.I)


def _split_elision(word: str) -> tuple[str, str]:
    m = re.match(r"^([dDlL])['’](.*)$", word)
    return (m.group(1).lower(), m.group(2)) if m else ("", word)


def _place(candidate: str) -> str | None:
    """``candidate`` when it reads like a place name (1-5 words, capitalised), else None."""
    s = candidate.strip().strip("*_").strip()
    if not s or len(s) > 60 or not s[0].isupper():
        return None
    if any(ch in _PLACE_FORBIDDEN or ch.isdigit() for ch in s):
        return None
    words = s.replace(",", " ").split()
    if not 1 <= len(words) <= 5:
        return None
    elided, rest = _split_elision(words[0])
    first = elided or words[0].lower()
    if first in _STARTERS:
        for i, word in enumerate(words):
            elided, rest = _split_elision(word)
            if elided and (not rest or rest[0].isupper()):
                continue
            if i > 0 and word.lower() in _CONNECTORS:
                continue
            if not word[0].isupper():
                return None
    return s


def _dateline(body: str) -> tuple[str | None, str | None]:
    """(place, date) from a dateline opening the body: "Kinshasa - ...", "Genève, 12 mars 2024 — ...".

    The date is looked for in the dateline, then in the first two lines of the body.
    """
    lines = [ln for ln in body.split("\n") if ln.strip()][:2]
    if not lines:
        return None, None
    first = lines[0].strip()
    place: str | None = None
    date: str | None = None
    head: str | None = None
    m = _DASH_RE.search(first, 0, 90)
    if m and m.start() > 0:
        head = first[: m.start()]
    else:
        mc = _COMMA_DATE_RE.match(first)
        if mc and _find_date(first[: mc.end() + 25]):
            head = first[: mc.end() + 25]
    if head is not None:
        date = _find_date(head)
        # "Genève, 12 mars 2024", "GENÈVE (OIM)": the place is before the comma/parenthesis.
        bare = re.sub(r"\([^)]*\)\s*$", "", head).strip()
        if date and "," in bare:
            bare = bare.split(",", 1)[0]
        place = _place(bare)
    if date is None:
        date = next((d for ln in lines if (d := _find_date(ln[:500]))), None)
    return place, date


# --------------------------------------------------------------------------- text helpers


def _has_word(line: str) -> bool:
    return any(ch.isalnum() for ch in line)


def _tidy(lines: Iterable[str]) -> str:
    """Join lines: trailing spaces dropped, runs of blank lines collapsed to one, ends trimmed."""
    out: list[str] = []
    for line in lines:
        line = line.rstrip()
        if not line and (not out or not out[-1]):
            continue
        out.append(line)
    while out and not out[-1]:
        out.pop()
    return "\n".join(out)


def _one_line(text: str) -> str:
    return " ".join(text.split())


def _shorten(text: str, limit: int = TITLE_MAX) -> str:
    """``text`` on one line, cut at a word boundary to at most ``limit`` characters."""
    text = _one_line(text)
    if len(text) <= limit:
        return text
    cut = text[: limit - 1]
    space = cut.rfind(" ")
    if space > limit // 2:
        cut = cut[:space]
    return cut.rstrip(" ,;:-–—") + "…"


def _drop_chrome(lines: list[str], chrome: frozenset[str]) -> list[str]:
    if not chrome:
        return lines
    return [ln for ln in lines if ln.strip() not in chrome]


def _title_and_body(lines: list[str]) -> tuple[str, list[str]] | None:
    """The first line with a letter or digit as title, the lines after it as body."""
    for i, line in enumerate(lines):
        if _has_word(line):
            if len(line.strip()) > _TITLE_LINE_MAX:
                return _shorten(line), lines[i:]
            return _one_line(line), lines[i + 1 :]
    return None


def _empty_problem(f: SourceFile, had_text: bool) -> Problem:
    if had_text:
        return Problem(f.rel, "no text besides the site's repeated navigation", SKIPPED)
    return Problem(f.rel, "empty file", SKIPPED)


# --------------------------------------------------------------------------- formats


def parse(
    f: SourceFile, data: bytes, chrome: frozenset[str] = frozenset()
) -> tuple[list[SourceDoc], list[Problem]]:
    """Documents and problems from the raw bytes of one file (see the module docstring).

    ``chrome`` lines (from :func:`chrome_lines`) are removed from txt, md and HTML texts.
    """
    if f.kind == "jsonl":
        docs: list[SourceDoc] = []
        problems: list[Problem] = []
        for item in _jsonl_from_stream(f, io.BytesIO(data)):
            (docs if isinstance(item, SourceDoc) else problems).append(item)
        return docs, problems
    text, problems = decode_text(f, data)
    if text is None:
        return [], problems
    if not text.strip():
        return [], [*problems, _empty_problem(f, False)]
    if f.kind == "md":
        doc, more = _parse_md(f, text, chrome)
    elif f.kind == "html":
        doc, more = _parse_html(f, text, chrome)
    else:
        doc, more = _parse_txt(f, text, chrome)
    return ([doc] if doc else []), [*problems, *more]


def _parse_txt(
    f: SourceFile, text: str, chrome: frozenset[str]
) -> tuple[SourceDoc | None, list[Problem]]:
    found = _title_and_body(_drop_chrome(text.split("\n"), chrome))
    if found is None:
        return None, [_empty_problem(f, _has_word(text))]
    title, rest = found
    body = _tidy(rest)
    place, date = _dateline(body)
    return SourceDoc(id=f.rel, title=title, body=body, date=date, place=place), []


def _unquote(value: str) -> str:
    value = value.strip()
    if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
        return value[1:-1]
    return value


def _front_matter(text: str) -> tuple[dict[str, Any], str]:
    """Simple ``key: value`` front matter between ``---`` lines, and the text after it.

    Handles quoted values, ``[a, b]`` inline lists and ``- item`` block lists; anything
    else (nested maps...) is ignored. Text without a closed front matter is returned whole.
    """
    lines = text.split("\n")
    if not lines or lines[0].strip() != "---":
        return {}, text
    end = next((i for i in range(1, len(lines)) if lines[i].strip() in ("---", "...")), None)
    if end is None:
        return {}, text
    meta: dict[str, Any] = {}
    last_key: str | None = None
    for line in lines[1:end]:
        item = re.match(r"^\s+-\s+(.*)$", line) or re.match(r"^-\s+(.*)$", line)
        if item and last_key is not None:
            if not isinstance(meta.get(last_key), list):
                meta[last_key] = []
            meta[last_key].append(_unquote(item.group(1)))
            continue
        m = re.match(r"^([A-Za-z_][\w-]*)\s*:\s*(.*)$", line)
        if not m:
            continue
        key, value = m.group(1).lower(), m.group(2).strip()
        last_key = key
        if value.startswith("[") and value.endswith("]"):
            meta[key] = [_unquote(v) for v in value[1:-1].split(",") if v.strip()]
        else:
            meta[key] = _unquote(value)
    return meta, "\n".join(lines[end + 1 :])


def _heading(line: str) -> str | None:
    m = re.match(r"^\s{0,3}#\s+(.*?)(?:\s+#+)?\s*$", line)
    return m.group(1) if m else None


def _parse_md(
    f: SourceFile, text: str, chrome: frozenset[str]
) -> tuple[SourceDoc | None, list[Problem]]:
    fm, content = _front_matter(text)
    problems: list[Problem] = []
    lines = _drop_chrome(content.split("\n"), chrome)

    def fm_str(key: str) -> str | None:
        value = fm.pop(key, None)
        if value is None or value == "":
            return None
        return _one_line(value if isinstance(value, str) else ", ".join(map(str, value)))

    title = fm_str("title")
    fm_date, fm_place, url = fm_str("date"), fm_str("place"), fm_str("url")
    head = next((i for i, ln in enumerate(lines) if _heading(ln) is not None), None)
    first_text = next((i for i, ln in enumerate(lines) if _has_word(ln)), None)
    heading = _one_line(_heading(lines[head]) or "") if head is not None else ""
    if head is not None and title is None:
        title = heading
        rest = lines[:head] + lines[head + 1 :]
    elif head is not None and head == first_text and heading == title:
        rest = lines[:head] + lines[head + 1 :]  # the heading repeats the front-matter title
    elif title is not None:
        rest = lines
    else:
        found = _title_and_body(lines)
        if found is None:
            return None, [_empty_problem(f, _has_word(content))]
        title, rest = found
    body = _tidy(rest)
    if not title and not body:
        return None, [_empty_problem(f, _has_word(content))]
    place, date = _dateline(body)
    if fm_date is not None:
        iso = _find_date(fm_date)
        if iso is None:
            problems.append(Problem(f.rel, f"unrecognised date {fm_date!r}", WARNING))
        date = iso or date
    doc = SourceDoc(
        id=f.rel,
        title=title or "",
        body=body,
        date=date,
        place=fm_place or place,
        url=url,
        meta=fm,
    )
    return doc, problems


def _parse_html(
    f: SourceFile, text: str, chrome: frozenset[str]
) -> tuple[SourceDoc | None, list[Problem]]:
    import trafilatura

    try:
        found = trafilatura.bare_extraction(
            text,
            include_comments=False,
            with_metadata=True,
            output_format="python",
            date_extraction_params={"extensive_search": False, "original_date": True},
        )
    except Exception as e:  # lxml/trafilatura raise many kinds of errors on odd markup
        return None, [Problem(f.rel, f"HTML could not be parsed ({type(e).__name__})", FAILED)]
    extracted = getattr(found, "text", None) if found is not None else None
    if not extracted or not extracted.strip():
        return None, [Problem(f.rel, "no main text found", SKIPPED)]
    lines = _drop_chrome(_finish_text(extracted).split("\n"), chrome)
    title = _one_line(getattr(found, "title", None) or "")
    if title:
        # trafilatura keeps the <h1> in the text: it is the title, not the body.
        first = next((i for i, ln in enumerate(lines) if ln.strip()), None)
        if first is not None and _one_line(lines[first]) == title:
            lines = lines[first + 1 :]
    else:
        split = _title_and_body(lines)
        if split is None:
            return None, [Problem(f.rel, "no main text found", SKIPPED)]
        title, lines = split
    body = _tidy(lines)
    if not body:
        return None, [Problem(f.rel, "no main text found", SKIPPED)]
    place, date = _dateline(body)
    html_date = getattr(found, "date", None)
    doc = SourceDoc(
        id=f.rel,
        title=_finish_text(title),
        body=body,
        date=(_find_date(html_date) if html_date else None) or date,
        place=place,
        url=getattr(found, "url", None) or None,
    )
    return doc, []


# --------------------------------------------------------------------------- JSON Lines

_JSONL_FIELDS = ("id", "title", "body", "date", "url", "place")


def iter_jsonl(f: SourceFile) -> Iterator[SourceDoc | Problem]:
    """Stream the documents (and problems) of a ``.jsonl`` / ``.jsonl.gz`` file, line by line."""
    try:
        fh = open(f.path, "rb")  # closed by the `with` below, once the stream is consumed
    except OSError as e:
        yield problem_from_oserror(f, e)
        return
    with fh:
        yield from _jsonl_from_stream(f, fh)


def _jsonl_from_stream(f: SourceFile, raw: IO[bytes]) -> Iterator[SourceDoc | Problem]:
    """Records from a binary stream, gunzipped when it starts with the gzip magic bytes."""
    try:
        magic = raw.read(2)
        raw.seek(0)
    except OSError as e:
        yield problem_from_oserror(f, e)
        return
    stream: IO[bytes] = raw
    if magic == b"\x1f\x8b":
        stream = gzip.GzipFile(fileobj=raw, mode="rb")
    elif f.path.name.lower().endswith(".gz"):
        yield Problem(f.rel, "not gzip-compressed, read as plain JSONL", WARNING)
    yield from _jsonl_records(f, stream)


def _jsonl_records(f: SourceFile, stream: IO[bytes]) -> Iterator[SourceDoc | Problem]:
    """Records of a binary line stream. Until a first good record is seen, line problems are
    held back, so that a file that is not a document file at all gives one Problem."""
    first_seen: dict[str, int] = {}
    lineno = records = bad = 0
    held: list[Problem] | None = []  # None once a document was yielded
    lines = iter(stream)
    while True:
        try:
            raw = next(lines)
        except StopIteration:
            break
        except (OSError, EOFError, zlib.error) as e:  # gzip.BadGzipFile is an OSError
            yield from held or ()
            yield Problem(f.rel, _stream_error_reason(e, lineno), FAILED)
            return
        lineno += 1
        if lineno == 1 and raw.startswith(codecs.BOM_UTF8):
            raw = raw[len(codecs.BOM_UTF8) :]
        if not raw.strip():
            continue
        records += 1
        doc, problems = _jsonl_record(f, raw, lineno, first_seen)
        if held is None:
            yield from problems
        else:
            held.extend(problems)
        if doc is not None:
            yield from held or ()
            held = None
            yield doc
        elif held is not None and any(p.severity == FAILED for p in problems):
            bad += 1
            if bad >= _JSONL_GIVE_UP:
                first = next(p for p in held if p.severity == FAILED)
                yield Problem(
                    f.rel,
                    f"no valid record in the first {bad} lines"
                    f" ({first.path}: {first.reason}), rest not read",
                    FAILED,
                )
                return
    yield from held or ()
    if records == 0:
        yield Problem(f.rel, "empty file", SKIPPED)


def _stream_error_reason(e: BaseException, lineno: int) -> str:
    if isinstance(e, EOFError):
        what = "truncated gzip file"
    elif isinstance(e, gzip.BadGzipFile | zlib.error):
        what = "corrupt gzip data"
    else:
        what = _oserror_reason(e) if isinstance(e, OSError) else str(e)
    return f"{what} after line {lineno}" if lineno else what


def _jsonl_record(
    f: SourceFile, raw: bytes, lineno: int, first_seen: dict[str, int]
) -> tuple[SourceDoc | None, list[Problem]]:
    """One JSONL line as a SourceDoc (or None), with the problems met on it."""
    where = f"{f.rel}:{lineno}"

    def fail(reason: str) -> tuple[None, list[Problem]]:
        return None, [Problem(where, reason, FAILED)]

    try:
        obj = json.loads(raw.decode("utf-8"))
    except UnicodeDecodeError:
        return fail("not valid UTF-8")
    except _JSON_ERRORS as e:
        return fail(f"not valid JSON ({getattr(e, 'msg', None) or type(e).__name__})")
    if not isinstance(obj, dict):
        return fail(f"not a JSON object (got {type(obj).__name__})")
    raw_id = obj.get("id")
    if raw_id is None:
        return fail("missing 'id'")
    if isinstance(raw_id, bool) or not isinstance(raw_id, str | int):
        return fail("'id' is not a string or integer")
    doc_id = str(raw_id)
    if not doc_id.strip():
        return fail("empty 'id'")
    if obj.get("body") is None:
        return fail("missing 'body'")
    for key in ("body", "title", "date", "url", "place"):
        if obj.get(key) is not None and not isinstance(obj[key], str):
            return fail(f"'{key}' is not a string")
    if doc_id in first_seen:
        return fail(f"duplicate id {doc_id!r} (first seen in {f.rel}:{first_seen[doc_id]})")
    first_seen[doc_id] = lineno
    body = _finish_text(obj["body"]).strip("\n")
    title = _one_line(_finish_text(obj.get("title") or ""))
    if not title:
        title = _shorten(next((ln for ln in body.split("\n") if ln.strip()), ""))
    if not title:
        return None, [Problem(where, "empty 'body'", SKIPPED)]
    problems: list[Problem] = []
    date = None
    if obj.get("date"):
        date = _find_date(obj["date"])
        if date is None:
            problems.append(Problem(where, f"unrecognised date {obj['date']!r}", WARNING))
    doc = SourceDoc(
        id=doc_id,
        title=title,
        body=body,
        date=date,
        place=_one_line(obj["place"]) if obj.get("place") else None,
        url=obj.get("url") or None,
        meta={k: v for k, v in obj.items() if k not in _JSONL_FIELDS},
    )
    return doc, problems
