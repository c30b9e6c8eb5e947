"""Robustness: bad input, crashes, concurrent runs, hostile queries — with figures.

The promise, like SQLite's: a failure never corrupts the index and never loses a document
that was indexed before; every bad input gets a clear, named message, never a traceback.

* bad input: a generated folder of broken files goes through the real ``oimsearch index``;
* crash safety: ``index`` runs on a 5,000-document corpus are SIGKILLed at named points
  (reading, analysis, merge, commit, manifest...; see ``robustness_helpers.POINTS``), at
  random moments, interrupted by SIGINT/SIGTERM; after each: the index opens, holds
  exactly the previous or the new generation, and the next run completes and leaves no
  stale lock or file;
* concurrency: a second ``index`` run gives up with a clear message; queries during commits
  see one generation;
* query fuzzing with Hypothesis: more than 10,000 hostile query strings, in-process through
  ``Searcher.search`` and the CLI's error handling, through ``CliRunner`` and through the
  real executable;
* broken index directories: not an index, older format, read-only, full disk.

The figures (inputs tried, kill points survived, documents lost, queries fuzzed,
tracebacks) are printed at the end of the module, and written as JSON to the file named by
``$OIMSEARCH_ROBUSTNESS_FIGURES`` when it is set.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import gzip
import io
import json
import os
import random
import re
import shutil
import signal
import stat
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path

import pytest
import typer
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from oimsearch.cli import app, handle_errors
from oimsearch.errors import DocumentNotFoundError
from oimsearch.indexer import index_paths
from oimsearch.ranking import RankingSettings
from oimsearch.searcher import Searcher
from tests import robustness_helpers as rh

FIGURES: Counter[str] = Counter()
IS_ROOT = hasattr(os, "geteuid") and os.geteuid() == 0
# As root, permission bits only bind a process without these two capabilities.
DROP_DAC = ["setpriv", "--bounding-set=-dac_override,-dac_read_search"]


def _permissions_testable() -> bool:
    if not IS_ROOT:
        return True
    if not shutil.which("setpriv"):
        return False
    return subprocess.run([*DROP_DAC, "true"], capture_output=True).returncode == 0


PERMS = pytest.mark.skipif(
    not _permissions_testable(), reason="root without setpriv: permission bits do not bind"
)

# Internal errors the fuzzing may meet that are known bugs (none left: any fails the test).
KNOWN_QUERY_BUGS: list = []
# Opening the index while a commit removes the generation just listed: the searcher now
# re-reads the manifest and retries, so this must not happen (counted, and fails the test).
KNOWN_OPEN_RACE = re.compile(r"(?!)")


@pytest.fixture(scope="module", autouse=True)
def figures(request):
    yield FIGURES
    keys = ["inputs_tried", "kill_points_survived", "documents_lost", "queries_fuzzed"]
    keys += ["tracebacks", "internal_errors_known", "query_open_races"]
    line = ", ".join(f"{k.replace('_', ' ')} {FIGURES[k]:,}" for k in keys)
    plugins = request.config.pluginmanager
    reporter = plugins.getplugin("terminalreporter")
    capman = plugins.getplugin("capturemanager")
    if reporter is not None:
        with capman.global_and_fixture_disabled() if capman else contextlib.nullcontext():
            reporter.write_line(f"\nrobustness figures: {line}")
    out = os.environ.get("OIMSEARCH_ROBUSTNESS_FIGURES")
    if out:
        Path(out).write_text(json.dumps({k: FIGURES[k] for k in keys}, indent=1) + "\n")


def no_traceback(*texts: str) -> None:
    n = sum(t.count("Traceback") for t in texts)
    FIGURES["tracebacks"] += n
    assert n == 0, "\n".join(texts)[-3000:]


def one_error_line(p, *fragments: str) -> str:
    """``p`` ended with exit 2 and one ``oimsearch: error: ...`` line naming ``fragments``."""
    no_traceback(p.stdout, p.stderr)
    assert p.returncode == 2, (p.returncode, p.stderr)
    lines = p.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("oimsearch: error: "), p.stderr
    for frag in fragments:
        assert frag in lines[0], (frag, lines[0])
    FIGURES["inputs_tried"] += 1
    return lines[0]


# ======================================================================================
# bad input through the real CLI

GOOD = {  # id -> a word only that document holds
    "good/article.txt": "kiwano",
    "good/note.md": "pitahaya",
    "good/page.html": "ramboutan",
    "g1": "mangoustan",
    "enc/latin1.txt": "carambole",
    "enc/cp1252.txt": "tamarillo",
    "enc/bom.txt": "feijoa",
    "enc/utf16le.txt": "physalis",
    "enc/utf16be.txt": "longane",
    "enc/crlf.txt": "jaboticaba",
    "names/caf\ufffd.txt": "salak",
    "gzok": "sapote",
    "z1": "durian",
    "m1": "cupuacu",
    "t0": "cherimole",
}

# (path shown by oimsearch, severity, reason pattern): every one must be reported
BAD = [
    ("bin/image.txt", "failed", r"binary file"),
    ("bin/random.md", "failed", r"binary file"),
    ("enc/utf16-nobom.txt", "failed", r"binary file"),
    ("empty/empty.txt", "skipped", r"empty file"),
    ("empty/blank.md", "skipped", r"empty file"),
    ("empty/empty.jsonl", "skipped", r"empty file"),
    ("big/huge.txt", "skipped", r"too large .*50\.0 MB"),
    ("names/caf\ufffd.txt", "warning", r"file name is not valid UTF-8"),
    ("enc/latin1.txt", "warning", r"decoded as cp1252"),
    ("enc/cp1252.txt", "warning", r"decoded as cp1252"),
    ("loops/self.txt", "skipped", r"symbolic link loop"),
    ("loops/sub/up", "skipped", r"symbolic link loop"),
    ("loops/dangling.txt", "failed", r"broken symbolic link"),
    ("special/pipe.txt", "skipped", r"not a regular file"),
    ("gz/truncated.jsonl.gz", "failed", r"truncated gzip file after line \d+"),
    ("gz/corrupt.jsonl.gz", "failed", r"corrupt gzip data|not valid"),
    ("gz/garbage.jsonl.gz", "failed", r"corrupt gzip data|truncated gzip"),
    ("gz/plain.jsonl.gz", "warning", r"not gzip-compressed"),
    ("jsonl/mixed.jsonl:2", "failed", r"missing 'id'"),
    ("jsonl/mixed.jsonl:3", "failed", r"missing 'body'"),
    ("jsonl/mixed.jsonl:4", "failed", r"'body' is not a string"),
    ("jsonl/mixed.jsonl:5", "failed", r"'title' is not a string"),
    ("jsonl/mixed.jsonl:6", "failed", r"'id' is not a string or integer"),
    ("jsonl/mixed.jsonl:7", "failed", r"not a JSON object \(got list\)"),
    ("jsonl/mixed.jsonl:8", "failed", r"not valid JSON"),
    ("jsonl/mixed.jsonl:9", "failed", r"not valid UTF-8"),
    ("jsonl/mixed.jsonl:10", "failed", r"empty 'id'"),
    ("jsonl/mixed.jsonl:11", "failed", r"not valid JSON"),
    ("jsonl/mixed.jsonl:12", "failed", r"duplicate id 'm1' \(first seen in jsonl/mixed.jsonl:1\)"),
    ("jsonl/mixed.jsonl:13", "failed", r"'date' is not a string"),
    ("jsonl/mixed.jsonl:14", "failed", r"'id' is not a string or integer"),
    ("jsonl/zz-dups.jsonl", "failed", r"duplicate id 'm1' \(already indexed from jsonl/mixed.jsonl\)"),
    ("jsonl/zz-dups.jsonl", "failed", r"duplicate id 'g1' \(already indexed from good/docs.jsonl\)"),
    ("jsonl/zz-nothing.jsonl", "failed", r"no valid record in the first 10 lines"),
    ("html/nobody.html", "skipped", r"no main text found"),
    ("html/emptybody.html", "skipped", r"no main text found|empty file"),
    ("perm/secret.txt", "failed", r"permission denied"),
    ("perm/closed", "failed", r"permission denied"),
]  # fmt: skip


def _jl(**obj) -> str:
    return json.dumps(obj, ensure_ascii=False)


def make_bad_corpus(root: Path) -> None:
    """Every kind of bad input the issue lists, next to good documents."""
    w = "Les migrants et les réfugiés reçoivent une aide à Genève."
    files: dict[str, bytes] = {
        "good/article.txt": f"Un article correct\n\nLe kiwano pousse au Niger. {w}\n".encode(),
        "good/note.md": f"---\ntitle: Une note\n---\n# Une note\n\nLe pitahaya. {w}\n".encode(),
        "good/page.html": (
            "<html><head><title>Page correcte</title></head><body><article><h1>Page correcte"
            f"</h1><p>Le ramboutan arrive à Dakar. {w}</p><p>{w} {w}</p></article></body></html>"
        ).encode(),
        "good/docs.jsonl": (_jl(id="g1", title="Mangoustan", body=f"Le mangoustan. {w}") + "\n").encode(),
        "bin/image.txt": b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 20,
        "bin/random.md": random.Random(1).randbytes(5000),
        "enc/latin1.txt": f"Sécurité à Genève\n\nLa carambole, été {w}\n".encode("latin-1"),
        "enc/cp1252.txt": f"L’été à Noël\n\nLe tamarillo coûte 5 € pour l’œuvre. {w}\n".encode("cp1252"),
        "enc/bom.txt": b"\xef\xbb\xbf" + f"Avec BOM\n\nLe feijoa. {w}\n".encode(),
        "enc/utf16le.txt": f"\ufeffUTF-16 LE\n\nLe physalis. {w}\n".encode("utf-16-le"),
        "enc/utf16be.txt": f"\ufeffUTF-16 BE\n\nLe longane. {w}\n".encode("utf-16-be"),
        "enc/utf16-nobom.txt": f"Sans BOM\n\nLe texte. {w}\n".encode("utf-16-le"),
        "enc/crlf.txt": f"Fins de ligne Windows\r\n\r\nLa jaboticaba. {w}\r\n".encode(),
        "empty/empty.txt": b"",
        "empty/blank.md": b"  \n\t\n   \n",
        "empty/empty.jsonl": b"\n\n",
        "gz/plain.jsonl.gz": (_jl(id="z1", body=f"Le durian. {w}") + "\n").encode(),
        "jsonl/mixed.jsonl": "\n".join([
            _jl(id="m1", title="Premier", body=f"Le cupuacu. {w}"),
            _jl(title="sans id", body="x"),
            _jl(id="m3"),
            _jl(id="m4", body=42),
            _jl(id="m5", body="x", title=["liste"]),
            _jl(id=True, body="x"),
            "[1, 2, 3]",
            '{"id": "m8", "body": "tronqué',
            "\x00",  # replaced below by invalid UTF-8
            _jl(id="", body="x"),
            "[" * 100_000 + "]" * 100_000,
            _jl(id="m1", body="doublon"),
            '{"id": "m13", "body": "x", "date": 20240101}',
            '{"id": {"a": 1}, "body": "x"}',
        ]).encode().replace(b"\n\x00\n", b'\n{"id": "m9", "body": "caf\xe9"}\n') + b"\n",
        "jsonl/zz-dups.jsonl": "\n".join([
            _jl(id="m1", body="doublon d'un autre fichier"),
            _jl(id="g1", body="doublon aussi"),
            _jl(id="t0", body=f"La cherimole. {w}"),
        ]).encode() + b"\n",
        "jsonl/zz-nothing.jsonl": b"ceci n'est pas du JSON\n" * 12,
        "html/nobody.html": b"<html><head><title>Titre seul</title></head></html>",
        "html/emptybody.html": b"<html><head></head><body>  </body></html>",
        "perm/secret.txt": f"Secret\n\n{w}\n".encode(),
        "perm/closed/inside.txt": f"Dedans\n\n{w}\n".encode(),
    }  # fmt: skip
    for rel, data in files.items():
        p = root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(data)

    def gz_lines(prefix: str) -> bytes:
        text = "".join(_jl(id=f"{prefix}{i}", body=f"Texte {i}. {w}") + "\n" for i in range(400))
        return gzip.compress(text.encode())

    (root / "gz/ok.jsonl.gz").write_bytes(
        gzip.compress(_jl(id="gzok", body=f"La sapote. {w}").encode())
    )
    truncated = gz_lines("gt")
    (root / "gz/truncated.jsonl.gz").write_bytes(truncated[: len(truncated) // 2])
    corrupt = bytearray(gz_lines("gc"))
    for i in range(len(corrupt) // 3, len(corrupt) // 3 + 40):
        corrupt[i] ^= 0x5A
    (root / "gz/corrupt.jsonl.gz").write_bytes(bytes(corrupt))
    noise = random.Random(2).randbytes(300)
    (root / "gz/garbage.jsonl.gz").write_bytes(b"\x1f\x8b\x08\x00" + noise)
    # 50 MB of text in one .txt file
    line = (w + " ") * 20 + "\n"
    (root / "big").mkdir()
    with open(root / "big/huge.txt", "w", encoding="utf-8") as f:
        f.write("Un énorme fichier\n\n")
        f.write(line * (50_000_000 // len(line.encode()) + 1))
    # a file name that is not UTF-8
    (root / "names").mkdir()
    with open(os.path.join(os.fsencode(root / "names"), b"caf\xe9.txt"), "wb") as f:
        f.write(f"Nom latin-1\n\nLe salak. {w}\n".encode())
    # symbolic links: to itself, to a parent folder, to nothing
    (root / "loops/sub").mkdir(parents=True)
    os.symlink("self.txt", root / "loops/self.txt")
    os.symlink("..", root / "loops/sub/up")
    os.symlink("nowhere.txt", root / "loops/dangling.txt")
    (root / "special").mkdir()
    os.mkfifo(root / "special/pipe.txt")  # reading it would block forever
    (root / "perm/secret.txt").chmod(0)
    (root / "perm/closed").chmod(0)


@PERMS
def test_bad_input_corpus_through_the_cli(tmp_path):
    root = tmp_path / "bad"
    make_bad_corpus(root)
    ix = tmp_path / "ix"
    cmd = [rh.exe(), "index", str(root), "--index", str(ix)]
    try:
        p = subprocess.run(
            DROP_DAC + cmd if IS_ROOT else cmd,
            capture_output=True,
            text=True,
            env=rh.cli_env(),
            timeout=300,
        )
    finally:
        (root / "perm/secret.txt").chmod(0o644)
        (root / "perm/closed").chmod(0o755)
    FIGURES["inputs_tried"] += len(BAD)
    no_traceback(p.stdout, p.stderr)
    assert p.returncode == 2, p.stderr
    lines = p.stderr.splitlines()
    problems = [ln for ln in lines if re.match(r"oimsearch: (failed|skipped|warning): ", ln)]
    others = [ln for ln in lines if ln not in problems]
    assert len(others) == 2 and others[1].startswith("next: oimsearch query"), p.stderr
    for path, severity, reason in BAD:
        rx = re.compile(rf"^oimsearch: {severity}: {re.escape(path)}: (?:{reason})")
        assert any(rx.match(ln) for ln in problems), (path, severity, reason, p.stderr)
    for ln in problems:  # every report names a file and gives a reason
        assert re.match(r"^oimsearch: \w+: [^:]+(:\d+)?: \S", ln), ln
    summary = others[0]
    m = re.match(r"^(\d+) added, 0 updated, 0 removed, 0 unchanged, (\d+) skipped, (\d+) failed", summary)  # fmt: skip
    assert m, summary
    sev = Counter(ln.split(":")[1].strip() for ln in problems)
    assert int(m.group(2)) == sev["skipped"] and int(m.group(3)) == sev["failed"], (sev, summary)
    with Searcher(ix) as s:
        strict = RankingSettings(fuzzy=False)
        for doc_id, word in GOOD.items():
            hits = s.search(word, settings=strict).hits
            assert [h.id for h in hits] == [doc_id], (word, doc_id, hits)
        assert s.document("enc/crlf.txt").title == "Fins de ligne Windows"
        assert "€" in s.document("enc/cp1252.txt").body
        assert s.document("gt7").body.startswith("Texte 7.")  # before the truncation
        for bad in ("m3", "m4", "m5", "m9", "m13", "perm/secret.txt", "big/huge.txt"):
            with pytest.raises(DocumentNotFoundError):
                s.document(bad)
        assert s.document("m1").body.startswith("Le cupuacu")  # the first of the duplicates


# ======================================================================================
# hostile queries

ATOMS = [
    '"', '""', "'", "(", ")", "((", "))", "[", "]", "{", "}", "*", "**", "?", "~", "~2", "~~",
    "^", "^2", ":", "::", "AND", "OR", "NOT", "ANDNOT", "ANDMAYBE", "TO", "and", "not", "-",
    "--", "+", "!", "&&", "||", "\\", "/", "%", "=", "title:", "body:", "id:", "path:",
    "place:", "date:", "text:", "nope:", "TITLE:", "title_exact:", "*:", ":*", "traité",
    "traite", "réfugiés", "l'OIM", "L’OIM", "aujourd'hui", "migrants", "RCA", "asile",
    "séjour", "naturalisaton~", "réfugi*", "tr*te", "🙂", "👨\u200d👩\u200d👧", "🇫🇷",
    "שלום", "مرحبا بكم", "\u202e", "\u202d", "\u200b", "\u200d", "\ufeff", "\u00a0",
    "\u0301", "e\u0301", "ﬁ", "İ", "ß", "Σς", "ǅ", "𝔘𝔫𝔦", "Ⅻ", "①", "１２３", "ｔｒａｉｔé", "\x00",
    "\x01", "\x07", "\x1b[31m", "\x7f", "\r", "\n", "\t", "\ud800", "\udcff", "0", "-1", "1e9",
    "2024-01-01", "NaN", "None", "null", "${x}", "%s", "{0}", "<b>", "</mark>", "&amp;",
]  # fmt: skip

FUZZ_SETTINGS = {
    "deadline": None,
    "derandomize": True,
    "database": None,
    "phases": [Phase.generate],
    "suppress_health_check": list(HealthCheck),
}


def hostile_queries():
    """Operator soup (quotes, parentheses, fields, wildcards, emoji, RTL, control
    characters, lone surrogates), any text, and queries up to 10,000 characters."""
    soup = st.lists(
        st.one_of(st.sampled_from(ATOMS), st.text(max_size=6)), min_size=1, max_size=14
    ).flatmap(lambda parts: st.sampled_from(["", " ", "  "]).map(lambda sep: sep.join(parts)))
    huge = st.tuples(st.sampled_from([*ATOMS, "asile", "a"]), st.integers(1, 10_000)).map(
        lambda t: ((t[0] + " ") * (t[1] // (len(t[0]) + 1) + 1))[: t[1]]
    )
    return st.one_of(soup, soup, soup, st.text(max_size=40), huge)


def _cli_like(searcher: Searcher, text: str) -> tuple[int, str]:
    """Run a query with the CLI's error handling: (exit code, stderr)."""
    err = io.StringIO()

    @handle_errors
    def call():
        res = searcher.search(text, limit=1)
        raise typer.Exit(0 if res.hits else 1)

    with contextlib.redirect_stderr(err):
        try:
            call()
            code = 0
        except typer.Exit as e:
            code = e.exit_code
    return code, err.getvalue()


class _Hang(Exception):
    pass


@contextlib.contextmanager
def _time_limit(seconds: float):
    """A query that takes longer than ``seconds`` fails (a hang is a bug too)."""

    def on_alarm(*_):
        raise _Hang()

    old = signal.signal(signal.SIGALRM, on_alarm)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)


def _check_outcome(text: str, code: int, err: str, internal: list) -> None:
    FIGURES["queries_fuzzed"] += 1
    no_traceback(err)
    assert code in (0, 1, 2), (text, code, err)
    if code == 2:
        lines = err.splitlines()
        assert len(lines) == 1 and lines[0].startswith("oimsearch: error: "), (text, err)
        if "internal error" in err:
            if any(k.search(err) for k in KNOWN_QUERY_BUGS):
                FIGURES["internal_errors_known"] += 1
            else:
                internal.append((text, err))


@pytest.fixture(scope="module")
def fuzz_searcher(fixture_index, crash_base):
    # requesting crash_base starts the 5,000-document build in the background: it runs
    # on the second core while this fuzzing runs on the first
    s = Searcher(fixture_index)
    yield s
    s.close()


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore:Surrogate character:RuntimeWarning")  # unidecode
def test_fuzz_queries_in_process(fuzz_searcher):
    internal: list = []

    @settings(max_examples=9_300, **FUZZ_SETTINGS)
    @given(text=hostile_queries())
    def fuzz(text: str) -> None:
        with _time_limit(20):
            code, err = _cli_like(fuzz_searcher, text)
        _check_outcome(text, code, err, internal)

    fuzz()
    assert not internal, internal[:5]


@pytest.mark.slow
def test_fuzz_queries_cli_runner(fixture_index):
    runner = CliRunner()
    internal: list = []
    env = {"NO_COLOR": "1", "COLUMNS": "100", "OIMSEARCH_INDEX": str(fixture_index)}
    modes = st.sampled_from([[], ["--json"], ["--jsonl"], ["--pretty"], ["--explain"]])

    @settings(max_examples=500, **FUZZ_SETTINGS)
    @given(text=hostile_queries(), mode=modes)
    def fuzz(text: str, mode: list) -> None:
        r = runner.invoke(app, ["query", *mode, "--", text], env=env)
        if r.exception is not None and not isinstance(r.exception, SystemExit):
            raise r.exception
        err = "".join(
            ln for ln in r.stderr.splitlines(keepends=True) if not ln.startswith("parsed query:")
        )
        if r.exit_code == 1:
            err = ""  # "No result for « … »" and a suggestion
        _check_outcome(text, r.exit_code, err, internal)
        if r.exit_code in (0, 1) and mode == ["--json"]:
            json.loads(r.stdout)
        if r.exit_code in (0, 1) and mode == ["--jsonl"]:
            for line in filter(None, r.stdout.split("\n")):  # not splitlines(): U+2028...
                json.loads(line)

    fuzz()
    assert not internal, internal[:5]


def _argv_safe(text: str) -> str:
    """``text`` as it can be passed as a process argument (no NUL; lone surrogates that
    bytes cannot carry become U+FFFD)."""
    text = text.replace("\x00", "")
    try:
        text.encode("utf-8", "surrogateescape")
        return text
    except UnicodeEncodeError:
        return text.encode("utf-8", "replace").decode("utf-8")


@pytest.mark.slow
def test_fuzz_queries_real_executable(fixture_index):
    queries: list[str] = []

    @settings(max_examples=200, **FUZZ_SETTINGS)
    @given(text=hostile_queries())
    def collect(text: str) -> None:
        queries.append(_argv_safe(text))

    collect()
    # queries that look like options: Click's usage error, still no traceback
    queries += ["-asile", "--nope", "-", "--"]

    def run(q: str):
        args = ["query", "--json", "--index", str(fixture_index)]
        args += [q] if q.startswith("-") else ["--", q]
        p = subprocess.run([rh.exe(), *args], capture_output=True, env=rh.cli_env(), timeout=60)
        # output must be valid UTF-8 whatever the query (strict decoding)
        out = subprocess.CompletedProcess(
            p.args, p.returncode, p.stdout.decode(), p.stderr.decode()
        )
        return q, out

    internal: list = []
    with concurrent.futures.ThreadPoolExecutor(3) as pool:
        for q, p in pool.map(run, queries):
            FIGURES["queries_fuzzed"] += 1
            no_traceback(p.stdout, p.stderr)
            assert p.returncode in (0, 1, 2), (q, p.returncode, p.stderr)
            if p.returncode in (0, 1):
                json.loads(p.stdout)
            elif "internal error" in p.stderr:
                if any(k.search(p.stderr) for k in KNOWN_QUERY_BUGS):
                    FIGURES["internal_errors_known"] += 1
                else:
                    internal.append((q, p.stderr))
            elif q.startswith("-"):
                assert "Error:" in p.stderr, p.stderr  # Click: usage, then the error
            else:
                assert p.stderr.startswith("oimsearch: error: "), p.stderr
                assert len(p.stderr.splitlines()) == 1, p.stderr
    assert not internal, internal[:5]


# Regression tests for two searcher.py bugs found by this suite ---------------------------


@pytest.mark.parametrize("text", ["*", "asile *", "* OR traite"])
def test_lone_star_query(fixture_index, text):
    with Searcher(fixture_index) as s:
        code, err = _cli_like(s, text)
    assert "internal error" not in err, err


def test_open_while_a_rebuild_switches(tmp_path, corpus_dir, monkeypatch):
    import oimsearch.searcher as searcher_mod

    ix = tmp_path / "ix"
    index_paths([corpus_dir], index_dir=ix)
    real = searcher_mod.read_manifest

    def read_then_rebuild(*a, **k):
        m = real(*a, **k)
        monkeypatch.setattr(searcher_mod, "read_manifest", real)
        index_paths([corpus_dir], index_dir=ix, rebuild=True)
        return m

    monkeypatch.setattr(searcher_mod, "read_manifest", read_then_rebuild)
    with Searcher(ix) as s:
        assert s.search("traite").hits


def test_rebuild_between_open_and_reader(tmp_path, corpus_dir, monkeypatch):
    """The race CI once hit: open_dir succeeded on the old name, then a rebuild switched the
    manifest and removed that name before the reader read its TOC."""
    from whoosh.index import FileIndex

    ix = tmp_path / "ix"
    index_paths([corpus_dir], index_dir=ix)
    real = FileIndex.searcher
    armed = [True]

    def rebuild_then_searcher(self, **kw):
        if armed[0]:
            armed[0] = False
            index_paths([corpus_dir], index_dir=ix, rebuild=True)
        return real(self, **kw)

    monkeypatch.setattr(FileIndex, "searcher", rebuild_then_searcher)
    with Searcher(ix) as s:
        assert not armed[0]
        assert s.search("traite").hits
        assert s.manifest.indexname != "MAIN"


def test_open_while_an_update_commits(tmp_path, corpus_dir, monkeypatch):
    from whoosh.index import TOC

    corpus = tmp_path / "corpus"
    shutil.copytree(corpus_dir, corpus)
    ix = tmp_path / "ix"
    index_paths([corpus], index_dir=ix)
    real = TOC._latest_generation
    armed = [True]

    def latest_then_commit(cls, storage, indexname):
        gen = real(storage, indexname)
        if armed[0]:
            armed[0] = False
            (corpus / "ajout.txt").write_text("Un ajout\n\nDes migrants à Tunis.\n")
            index_paths([corpus], index_dir=ix)
        return gen

    monkeypatch.setattr(TOC, "_latest_generation", classmethod(latest_then_commit))
    with Searcher(ix) as s:
        assert s.search("traite").hits


# ======================================================================================
# concurrency


@pytest.fixture
def small_index(tmp_path):
    corpus = rh.Corpus(tmp_path / "corpus", lots=3, per_lot=100, folders=1, per_folder=50)
    ix = tmp_path / "ix"
    p = rh.run_cli("index", corpus.root, "--index", ix)
    assert p.returncode == 0, p.stderr
    return corpus, ix


def test_second_index_run_waits_then_exits_2(small_index, tmp_path):
    corpus, ix = small_index
    corpus.mutate(1, random.Random(1))
    ready, go = tmp_path / "ready", tmp_path / "go"
    env = rh.cli_env(OIMSEARCH_TEST_PAUSE="locked", OIMSEARCH_TEST_READY=str(ready),
                     OIMSEARCH_TEST_GO=str(go))  # fmt: skip
    first = subprocess.Popen(
        rh.driver_cmd("index", corpus.root, "--index", ix),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 60
        while not ready.exists():
            assert first.poll() is None and time.monotonic() < deadline, first.communicate()
            time.sleep(0.02)
        t0 = time.monotonic()
        second = rh.run_cli("index", corpus.root, "--index", ix)
        waited = time.monotonic() - t0
        one_error_line(second, "is being updated by another process", "wait for it to finish")
        assert 2.0 <= waited < 15, waited
        q = rh.run_cli("query", "migrants", "--index", ix)  # queries keep working
        assert q.returncode == 0, q.stderr
        go.touch()
        out, err = first.communicate(timeout=120)
        no_traceback(out, err)
        assert first.returncode == 0, err
    finally:
        rh.kill_group(first.pid)
    assert rh.index_state(ix) == corpus.expected and rh.locks_free(ix)


@pytest.mark.slow
def test_queries_during_commits_see_one_generation(small_index):
    """Lot 0 is rewritten with version 100+s at step s: a query sees all of it at one
    version, the old or the new one, never a mix."""
    corpus, ix = small_index
    lot0 = len(corpus.lot_ids[0])
    corpus.rewrite_lot(0, 100)
    assert rh.run_cli("index", corpus.root, "--index", ix).returncode == 0
    current = [100]
    done = threading.Event()
    errors: list[str] = []
    counts: Counter[str] = Counter()
    strict = RankingSettings(fuzzy=False)

    def race_or_error(text: str) -> None:
        if KNOWN_OPEN_RACE.search(text):
            FIGURES["query_open_races"] += 1
        else:
            errors.append(text)

    def in_process() -> None:
        while not done.is_set():
            v = current[0]
            try:
                with Searcher(ix, settings=strict) as s:
                    totals = [s.search(f"ver{w}", limit=0).total for w in (v - 1, v, v + 1)]
            except Exception as e:
                race_or_error(f"{type(e).__name__}: {e}")
                continue
            if sorted(totals) != [0, 0, lot0]:
                errors.append(f"in-process: mixed generations {totals}")
            counts["in-process"] += 1

    def through_cli() -> None:
        while not done.is_set():
            v = current[0]
            for w in (v - 1, v, v + 1):
                p = rh.run_cli("query", f"ver{w}", "--json", "--no-fuzzy", "--limit", "0",
                               "--index", ix)  # fmt: skip
                if "Traceback" in p.stderr or p.returncode not in (0, 1):
                    race_or_error(p.stderr)
                elif json.loads(p.stdout)["total"]["value"] not in (0, lot0):
                    errors.append(f"cli: mixed generation {p.stdout}")
                else:
                    counts["cli"] += 1

    def guarded(target):
        def run():
            try:
                target()
            except BaseException as e:  # an assertion in a thread must not vanish
                errors.append(f"{type(e).__name__}: {e}")

        return threading.Thread(target=run)

    threads = [guarded(in_process), guarded(through_cli)]
    for t in threads:
        t.start()
    try:
        for s in range(1, 5):
            new = corpus.rewrite_lot(0, 100 + s)
            extra = ["--rebuild"] if s == 2 else ["--procs", "2"] if s == 3 else []
            p = rh.run_cli("index", corpus.root, "--index", ix, *extra)
            assert p.returncode == 0, p.stderr
            current[0] = 100 + s
            assert rh.index_state(ix) == new
    finally:
        done.set()
        for t in threads:
            t.join(60)
    assert not errors, errors[:5]
    assert counts["in-process"] >= 5 and counts["cli"] >= 3, counts


# ======================================================================================
# the index directory itself


@pytest.fixture
def built(tmp_path, corpus_dir):
    ix = tmp_path / "ix"
    assert index_paths([corpus_dir], index_dir=ix).failed == 0
    return ix


def _edit_manifest(ix: Path, **changes) -> None:
    m = json.loads((ix / "oimsearch.json").read_text())
    m.update(changes)
    (ix / "oimsearch.json").write_text(json.dumps(m))


def test_not_an_index(tmp_path, corpus_dir):
    d = tmp_path / "photos"
    d.mkdir()
    (d / "IMG_0001.jpg").write_bytes(b"\xff\xd8\xff" + b"\0" * 100)
    for args in (["query", "asile"], ["stats"], ["show", "x"], ["similar", "x"]):
        one_error_line(rh.run_cli(*args, "--index", d), "holds no oimsearch index")
    one_error_line(rh.run_cli("index", corpus_dir, "--index", d), "not empty")
    one_error_line(rh.run_cli("query", "asile", "--index", d / "IMG_0001.jpg"), "not a directory")
    one_error_line(rh.run_cli("index", corpus_dir, "--index", d / "IMG_0001.jpg"), "is a file")
    assert sorted(p.name for p in d.iterdir()) == ["IMG_0001.jpg"]  # nothing written


def test_older_format_and_damaged_index(built, corpus_dir):
    ix = built
    _edit_manifest(ix, format=0)
    for args in (["query", "asile"], ["index", corpus_dir]):
        one_error_line(rh.run_cli(*args, "--index", ix), "format 0", "--rebuild")
    p = rh.run_cli("index", "--rebuild", corpus_dir, "--index", ix)  # the fix it suggests
    assert p.returncode == 0 and "14 added" in p.stderr, p.stderr
    assert json.loads((ix / "oimsearch.json").read_text())["format"] == 1
    (ix / "oimsearch.json").write_text("{not json")
    one_error_line(rh.run_cli("query", "asile", "--index", ix), "manifest", "--rebuild")
    p = rh.run_cli("index", "--rebuild", corpus_dir, "--index", ix)
    assert p.returncode == 0, p.stderr
    toc = next(ix.glob("_*.toc"))
    toc.write_bytes(toc.read_bytes()[:40])
    one_error_line(rh.run_cli("query", "asile", "--index", ix), "cannot open index", "--rebuild")
    p = rh.run_cli("index", "--rebuild", corpus_dir, "--index", ix)
    assert p.returncode == 0, p.stderr
    assert rh.run_cli("query", "asile", "--index", ix).returncode == 0
    assert rh.stale_files(ix) == []


@PERMS
def test_read_only_index_directory(built, corpus_dir):
    ix = built
    modes = {p: stat.S_IMODE(p.stat().st_mode) for p in [ix, *ix.iterdir()]}
    for p, mode in modes.items():
        p.chmod(mode & ~0o222)
    pre = DROP_DAC if IS_ROOT else []
    env = rh.cli_env()
    try:
        q = subprocess.run([*pre, rh.exe(), "query", "traite", "--json", "--index", str(ix)],
                           capture_output=True, text=True, env=env)  # fmt: skip
        no_traceback(q.stderr)
        assert q.returncode == 0 and json.loads(q.stdout)["hits"], q.stderr
        p = subprocess.run([*pre, rh.exe(), "index", str(corpus_dir), "--index", str(ix)],
                           capture_output=True, text=True, env=env)  # fmt: skip
        one_error_line(p, "cannot write", "ermission")
    finally:
        for p, mode in modes.items():
            p.chmod(mode)


def test_manifest_is_readable_by_other_users(built):
    umask = os.umask(0o022)
    os.umask(umask)
    assert stat.S_IMODE((built / "oimsearch.json").stat().st_mode) == 0o666 & ~umask & 0o644


def _can_mount() -> bool:
    return IS_ROOT and sys.platform.startswith("linux") and shutil.which("mount") is not None


@contextlib.contextmanager
def tmpfs(path: Path, size: str):
    path.mkdir(parents=True, exist_ok=True)
    p = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)],
                       capture_output=True, text=True)  # fmt: skip
    if p.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs: {p.stderr.strip()}")
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], capture_output=True)


def _remount(path: Path, size: str) -> None:
    subprocess.run(["mount", "-o", f"remount,size={size}", str(path)], check=True)


@pytest.mark.slow
@pytest.mark.skipif(not _can_mount(), reason="needs root to mount a small tmpfs")
def test_full_disk(tmp_path):
    corpus = rh.Corpus(tmp_path / "corpus", lots=2, per_lot=60, folders=1, per_folder=20)
    with tmpfs(tmp_path / "disk", "300k") as disk:
        ix = disk / "ix"
        # a first build that does not fit (a writer process meets the full disk)
        p = rh.run_cli("index", corpus.root, "--index", ix, "--procs", 2)
        one_error_line(p, "index", "disk")
        _remount(disk, "64m")
        p = rh.run_cli("index", corpus.root, "--index", ix)
        assert p.returncode == 0, p.stderr  # what the failed run left is no obstacle
        state = rh.index_state(ix)
        # an update that does not fit: the previous index stays whole
        used = sum(f.stat().st_size for f in ix.iterdir() if f.is_file())
        _remount(disk, f"{used // 1024 + 200}k")
        for k in range(6):
            corpus.write_lot(0, {f"big{k}-{j}": 1 for j in range(250)}, name=f"big{k}.jsonl")
        p = rh.run_cli("index", corpus.root, "--index", ix, "--procs", 1)
        one_error_line(p, "disk full", "the previous index is intact")
        assert rh.index_state(ix) == state
        _remount(disk, "64m")
        p = rh.run_cli("index", corpus.root, "--index", ix)
        assert p.returncode == 0, p.stderr
        assert rh.index_state(ix) == corpus.expected
        assert rh.stale_files(ix) == [] and rh.locks_free(ix)


# ======================================================================================
# crash safety (last: the 5,000-document build runs in the background meanwhile)


class Step:
    """Checks around an `index` run that was killed."""

    def __init__(self, ix: Path, corpus: rh.Corpus):
        self.ix = ix
        self.corpus = corpus

    def observe(self, old: dict, new: dict, want: str) -> dict:
        """The index opens and holds exactly the old or the new generation."""
        seen = rh.index_state(self.ix)
        lost = len((set(old) & set(new)) - set(seen))
        FIGURES["documents_lost"] += lost
        assert lost == 0, f"{lost} documents lost"
        if want == "old":
            assert seen == old, _diff(seen, old)
        elif want == "new":
            assert seen == new, _diff(seen, new)
        else:
            assert seen in (old, new), _diff(seen, new)
        return seen

    def recover(self, new: dict) -> None:
        """The next run completes, holds the new generation, leaves no lock or stale file."""
        p = rh.run_cli("index", self.corpus.root, "--index", self.ix)
        no_traceback(p.stdout, p.stderr)
        assert p.returncode == 0, p.stderr
        assert rh.index_state(self.ix) == new
        assert rh.stale_files(self.ix) == []
        assert rh.locks_free(self.ix)


def _diff(seen: dict, want: dict) -> str:
    missing = sorted(set(want) - set(seen))[:5]
    extra = sorted(set(seen) - set(want))[:5]
    changed = sorted(k for k in set(seen) & set(want) if seen[k] != want[k])[:5]
    return f"{len(seen)} docs vs {len(want)}: missing {missing}, extra {extra}, changed {changed}"


def run_killed(point: str | None, *args, signal_at: tuple | None = None, timeout: float = 180):
    """Run ``oimsearch ARGS`` through the crash driver; returns (returncode, stderr).

    ``point``: SIGKILL there; or ``signal_at=(pause point, signum)``: pause there and send
    ``signum`` to the process (``-signum``: to its process group, as a terminal's Ctrl-C
    does). Checks that no process of the run is left behind (writer processes)."""
    with contextlib.ExitStack() as stack:
        tmp = Path(stack.enter_context(_tempdir()))
        if signal_at:
            env = rh.cli_env(OIMSEARCH_TEST_PAUSE=signal_at[0],
                             OIMSEARCH_TEST_READY=str(tmp / "ready"),
                             OIMSEARCH_TEST_GO=str(tmp / "never"))  # fmt: skip
        else:
            env = rh.cli_env(OIMSEARCH_TEST_CRASH=point)
        proc = subprocess.Popen(
            rh.driver_cmd(*args),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
            start_new_session=True,
            # SIGINT as a foreground command has it: a test run started in the background
            # (`pytest &`) passes SIGINT ignored to its children, and Python then installs no
            # KeyboardInterrupt handler
            preexec_fn=_default_sigint if signal_at else None,
        )
        stack.callback(rh.kill_group, proc.pid)
        if signal_at:
            deadline = time.monotonic() + timeout
            while not (tmp / "ready").exists():
                assert proc.poll() is None, proc.communicate()
                assert time.monotonic() < deadline, "pause point not reached"
                time.sleep(0.02)
            signum = signal_at[1]
            if signum < 0:
                os.killpg(proc.pid, -signum)
            else:
                os.kill(proc.pid, signum)
        out, err = proc.communicate(timeout=timeout)
        no_traceback(out, err)
        assert rh.group_gone(proc.pid), "processes of the killed run are left behind"
        return proc.returncode, err


def _default_sigint() -> None:
    signal.signal(signal.SIGINT, signal.SIG_DFL)


@contextlib.contextmanager
def _tempdir():
    import tempfile

    d = tempfile.mkdtemp(prefix="oimsearch-crash-")
    try:
        yield d
    finally:
        shutil.rmtree(d, ignore_errors=True)


@pytest.fixture(scope="module")
def crash_base(tmp_path_factory):
    """The 5,000-document corpus (~1 KB a document) and its index, built in a background
    thread after a first run killed half-way; the future of (corpus, index dir)."""
    base = tmp_path_factory.mktemp("crash")
    pool = concurrent.futures.ThreadPoolExecutor(1)

    def build():
        corpus = rh.Corpus(base / "corpus", lots=36, per_lot=125, folders=5, per_folder=100)
        assert len(corpus.expected) == 5000
        ix = base / "ix"
        # a first run killed during analysis, with two writer processes: no index yet,
        # a clear message; the next run starts over in the same directory
        rc, err = run_killed("analysis:1500", "index", corpus.root, "--index", ix,
                             "--procs", "2")  # fmt: skip
        assert rc == -signal.SIGKILL, err
        p = rh.run_cli("query", "migrants", "--index", ix)
        one_error_line(p, "holds no oimsearch index")
        FIGURES["kill_points_survived"] += 1
        p = rh.run_cli("index", corpus.root, "--index", ix)
        no_traceback(p.stderr)
        assert p.returncode == 0 and "5000 added" in p.stderr, p.stderr
        assert rh.index_state(ix) == corpus.expected
        assert rh.stale_files(ix) == [] and rh.locks_free(ix)
        return corpus, ix

    future = pool.submit(build)
    yield future
    pool.shutdown(wait=True)


# (kill point, --procs, the generation a kill there must leave)
KILL_CHAIN = [
    ("merge", 1, "old"),
    ("discovered", 1, "old"),
    ("locked", 2, "old"),
    ("reading", 1, "old"),
    ("reading-jsonl:60", 1, "old"),
    ("analysis:50", 1, "old"),
    ("analysis:130", 2, "old"),
    ("writer-child", 2, "old"),
    ("segments-written", 1, "old"),
    ("segments-written", 2, "old"),
    ("toc-temp", 1, "old"),
    ("toc-written", 2, "new"),
    ("manifest", 2, "new"),
    ("manifest-temp", 1, "new"),
]
# interruptions: (pause point, signal (negative: to the process group), exit status)
SIGNALS = [
    ("analysis:120", -signal.SIGINT, 130),  # Ctrl-C in a terminal
    ("analysis:120", signal.SIGINT, 130),  # kill -INT to the main process only
    ("analysis:120", signal.SIGTERM, -signal.SIGTERM),
    ("segments-written", -signal.SIGINT, 130),
]


@pytest.mark.slow
def test_crash_points_on_5000_documents(crash_base):
    corpus, ix = crash_base.result()
    step = Step(ix, corpus)
    rng = random.Random(20240501)
    state = dict(corpus.expected)
    n = 0
    for point, procs, want in KILL_CHAIN:
        n += 1
        if point == "merge":
            # five one-document segments: the next commit merges them (MERGE_SMALL)
            for k in range(5):
                state = corpus.touch_tiny(1000 + k)
                assert index_paths([corpus.root], index_dir=ix).failed == 0
        new = corpus.mutate(n, rng)
        rc, err = run_killed(point, "index", corpus.root, "--index", ix, "--procs", procs)
        if point == "writer-child":  # the run survives, and refuses to commit
            assert rc == 2 and "writer process was killed" in err, (rc, err)
            assert len(err.splitlines()) == 1, err
        else:
            assert rc == -signal.SIGKILL, f"kill point {point} not reached: {rc} {err}"
        step.observe(state, new, want)
        step.recover(new)
        if point == "manifest":  # the acronyms of the interrupted run reach the manifest
            acr = rh.acronym_for(n)[0]
            assert acr in json.loads((ix / "oimsearch.json").read_text())["acronyms"]
        FIGURES["kill_points_survived"] += 1
        state = new
    for pause, signum, code in SIGNALS:
        n += 1
        new = corpus.mutate(n, rng)
        rc, err = run_killed(None, "index", corpus.root, "--index", ix, "--procs", 2,
                             signal_at=(pause, signum))  # fmt: skip
        assert rc == code, (pause, signum, rc, err)
        assert err.strip() == "", err
        step.observe(state, new, "old")
        step.recover(new)
        FIGURES["kill_points_survived"] += 1
        state = new
    # SIGKILL at random moments, with one or two writer processes
    for k in range(4):
        n += 1
        new = corpus.mutate(n, rng)
        proc = subprocess.Popen(
            [rh.exe(), "index", str(corpus.root), "--index", str(ix), "--procs", str(1 + k % 2)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
            env=rh.cli_env(),
            start_new_session=True,
        )
        try:
            time.sleep(rng.uniform(0.2, 0.9))
            proc.kill()
            err = proc.communicate(timeout=120)[1]
            no_traceback(err)
            assert rh.group_gone(proc.pid), "writer processes left behind"
        finally:
            rh.kill_group(proc.pid)
        step.observe(state, new, "either")
        step.recover(new)
        if proc.returncode == -signal.SIGKILL:
            FIGURES["kill_points_survived"] += 1
        state = new


@pytest.mark.slow
def test_crash_points_of_rebuild(tmp_path):
    corpus = rh.Corpus(tmp_path / "corpus", lots=2, per_lot=100, folders=1, per_folder=60)
    ix = tmp_path / "ix"
    p = rh.run_cli("index", corpus.root, "--index", ix)
    assert p.returncode == 0, p.stderr
    step = Step(ix, corpus)
    rng = random.Random(7)
    state = dict(corpus.expected)
    # segments-written:2 (the first TOC.write is that of the new, empty index name)
    chain = [("segments-written:2", "old"), ("manifest", "old"), ("rebuild-cleanup", "new")]
    for n, (point, want) in enumerate(chain, 1):
        new = corpus.mutate(n, rng)
        rc, err = run_killed(point, "index", "--rebuild", corpus.root, "--index", ix)
        assert rc == -signal.SIGKILL, f"kill point {point} not reached: {rc} {err}"
        step.observe(state, new, want)
        step.recover(new)  # a plain update finishes the job and removes the other files
        FIGURES["kill_points_survived"] += 1
        state = new
    names = {p.name for p in ix.iterdir()}
    assert not any(n.startswith(("MAIN_", "_MAIN_")) for n in names), names
