"""Helpers of ``tests/test_robustness.py``: generated corpora, a crash driver, index checks.

Run as a script, this module is the test-only *crash driver*::

    python tests/robustness_helpers.py index DIR --index IX

runs ``oimsearch index DIR --index IX`` after patching oimsearch or Whoosh so that the
process stops at a named point, chosen by environment variables (the library itself has
no test hook):

``OIMSEARCH_TEST_CRASH=POINT[:N]``
    SIGKILL itself the Nth time POINT is reached (default: the first);
``OIMSEARCH_TEST_PAUSE=POINT[:N]``
    the Nth time POINT is reached, create the file ``$OIMSEARCH_TEST_READY`` and wait until the file
    ``$OIMSEARCH_TEST_GO`` exists.

The points are listed in :data:`POINTS`.
"""

from __future__ import annotations

import errno
import fcntl
import json
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

HERE = Path(__file__).resolve()

# --------------------------------------------------------------------------------------
# the crash driver

# point -> (module, attribute path, "before" or "after" the call, predicate on the args)
POINTS: dict[str, tuple[str, str, str, Callable[..., bool] | None]] = {
    # files found, nothing locked or written yet
    "discovered": ("oimsearch.sources", "discover", "after", None),
    # the index lock is held
    "locked": ("oimsearch.indexer", "_Lock.__enter__", "after", None),
    # reading: before the Nth .txt/.md/.html file is read
    "reading": ("oimsearch.sources", "read_bytes", "before", None),
    # reading: after the Nth JSONL record is read (see _install)
    "reading-jsonl": ("oimsearch.sources", "iter_jsonl", "generator", None),
    # analysis: the Nth document goes to the writer (in-process, or to the writer processes)
    "analysis": ("oimsearch.indexer", "_add", "before", None),
    # commit: merging small segments into the new one
    "merge": ("whoosh.writing", "SegmentWriter.add_reader", "before", None),
    # commit: every segment written, the new TOC not yet
    "segments-written": ("whoosh.index", "TOC.write", "before", None),
    # commit: the new TOC written to its temp file, not yet renamed
    "toc-temp": (
        "whoosh.filedb.filestore",
        "FileStorage.rename_file",
        "before",
        lambda self, old, new, *a, **k: str(new).endswith(".toc"),
    ),
    # commit: the new TOC in place, the files of the old generation not yet removed
    "toc-written": ("whoosh.index", "TOC.write", "after", None),
    # committed, the manifest not yet written
    "manifest": ("oimsearch.indexer", "write_manifest", "before", None),
    # the manifest written to its temp file, not yet renamed
    "manifest-temp": (
        "os",
        "replace",
        "before",
        lambda src, dst, *a, **k: str(dst).endswith("oimsearch.json"),
    ),
    # --rebuild: manifest switched to the new index name, old files not yet removed
    "rebuild-cleanup": ("oimsearch.indexer", "_remove_indexname_files", "before", None),
    # a writer *sub-process* (--procs 2) is killed at its first batch (e.g. OOM killer)
    "writer-child": ("whoosh.multiproc", "SubWriterTask._process_file", "child", None),
}


def _die() -> None:
    os.kill(os.getpid(), signal.SIGKILL)
    time.sleep(60)  # never reached


def _pause() -> None:
    Path(os.environ["OIMSEARCH_TEST_READY"]).write_text(str(os.getpid()))
    go = Path(os.environ["OIMSEARCH_TEST_GO"])
    deadline = time.monotonic() + 120
    while not go.exists() and time.monotonic() < deadline:
        time.sleep(0.02)


def _install(point: str, nth: int, action: Callable[[], None]) -> None:
    import importlib

    modname, attrpath, when, pred = POINTS[point]
    owner = importlib.import_module(modname)
    *parents, attr = attrpath.split(".")
    for p in parents:
        owner = getattr(owner, p)
    orig = getattr(owner, attr)
    seen = [0]

    def tick() -> None:
        seen[0] += 1
        if seen[0] == nth:
            action()

    if when == "generator":

        def wrapped(*a, **k):
            for item in orig(*a, **k):
                yield item
                tick()

    elif when == "child":

        def wrapped(self, *a, **k):
            if self.name.endswith("-1"):
                action()
            return orig(self, *a, **k)

    else:

        def wrapped(*a, **k):
            hit = pred is None or pred(*a, **k)
            if hit and when == "before":
                tick()
            result = orig(*a, **k)
            if hit and when == "after":
                tick()
            return result

    setattr(owner, attr, wrapped)


def _install_from_env() -> None:
    crash = os.environ.get("OIMSEARCH_TEST_CRASH")
    if crash:
        point, _, n = crash.partition(":")
        _install(point, int(n or 1), _die)
    pause = os.environ.get("OIMSEARCH_TEST_PAUSE")
    if pause:
        point, _, n = pause.partition(":")
        _install(point, int(n or 1), _pause)


# --------------------------------------------------------------------------------------
# running the real executable


def exe() -> str:
    found = shutil.which("oimsearch", path=str(Path(sys.executable).parent))
    assert found, "the oimsearch console script is not installed next to this python"
    return found


def cli_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("OIMSEARCH_")}
    env.update(NO_COLOR="1", COLUMNS="100", PYTHONFAULTHANDLER="1", **extra)
    return env


def run_cli(*args, timeout: float = 120, **extra_env: str) -> subprocess.CompletedProcess:
    """``oimsearch ARGS`` through the installed console script."""
    return subprocess.run(
        [exe(), *map(str, args)],
        capture_output=True,
        text=True,
        env=cli_env(**extra_env),
        timeout=timeout,
    )


def driver_cmd(*args) -> list[str]:
    """The command line of ``oimsearch ARGS`` run through the crash driver."""
    return [sys.executable, str(HERE), *map(str, args)]


def group_gone(pgid: int, timeout: float = 10.0) -> bool:
    """True when no process of the process group ``pgid`` is left (writer processes)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            os.killpg(pgid, 0)
        except ProcessLookupError:
            return True
        except PermissionError:
            pass
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.05)


def kill_group(pgid: int) -> None:
    try:
        os.killpg(pgid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


# --------------------------------------------------------------------------------------
# French-like generated text

WORDS = """
migrants réfugiés demandeurs asile titre séjour frontière retour volontaire réintégration
traite personnes protection enfants femmes travailleurs santé sécurité hébergement accueil
préfecture visa naturalisation regroupement familial déplacés internes données partenaires
gouvernement ministère organisation internationale programme projet formation emploi
solidarité communauté diaspora investissement développement régional sanitaire caravane
équipe mission rapport enquête recensement campagne sensibilisation droits fondamentaux
accès services sociaux aide alimentaire abris urgence crise climatique érosion côtière
pêcheurs villages côte littoral inondations sécheresse moyens subsistance jeunes
entrepreneurs microprojets recrutement équitable agences employeurs contrats salaires
dignité dialogue coopération bilatérale régionale conférence atelier séminaire lancement
""".split()
GLUE = "le la les un une des du de et en dans pour avec sur par au aux qui que ont a est".split()
PLACES = ["Kinshasa", "Bangui", "Niamey", "Tunis", "Genève", "Dakar", "Abidjan", "Agadez"]
NATO = (
    "Alpha Bravo Charlie Delta Echo Foxtrot Golf Hotel India Juliett Kilo Lima Mike "
    "November Oscar Papa Quebec Romeo Sierra Tango Uniform Victor Whiskey Xray Yankee Zulu"
).split()


def french_text(rng: random.Random, n_words: int) -> str:
    out: list[str] = []
    sentence: list[str] = []
    for _ in range(n_words):
        sentence.append(rng.choice(GLUE) if rng.random() < 0.35 else rng.choice(WORDS))
        if len(sentence) >= rng.randint(9, 16):
            out.append(sentence[0].capitalize() + " " + " ".join(sentence[1:]) + ".")
            sentence = []
    if sentence:
        out.append(sentence[0].capitalize() + " " + " ".join(sentence[1:]) + ".")
    return " ".join(out)


def acronym_for(version: int) -> tuple[str, str]:
    """A made-up acronym defined by the documents of one version, and its long form."""
    nato = NATO[version % len(NATO)]
    return f"Z{nato[0]}Q", f"Zone {nato} Quelconque"


def doc_text(doc_id: str, version: int, n_words: int = 140) -> tuple[str, str]:
    """(title, body) of a document, determined by its id and version; the body starts with
    the tag ``verN`` and defines the version's acronym."""
    rng = random.Random(f"{doc_id}:{version}")
    title = french_text(rng, 7).rstrip(".")
    acr, long_form = acronym_for(version)
    body = f"ver{version} {french_text(rng, n_words)} La {long_form} ({acr}) coordonne."
    return title, body


# --------------------------------------------------------------------------------------
# the crash corpus: JSONL lots and .txt pages, with the state a complete run must produce

_MENU = "Accueil\nActualités\nNos missions\nContact\n"


class Corpus:
    """A folder of generated articles and the expected index state, id -> version.

    ``lots`` JSON Lines files of ``per_lot`` documents and ``folders`` folders of
    ``per_folder`` .txt pages (with a repeated site menu), ~1 KB a document.
    """

    def __init__(self, root: Path, lots: int, per_lot: int, folders: int, per_folder: int):
        self.root = root
        self.lots = lots
        self.per_lot = per_lot
        self.expected: dict[str, int] = {}
        self.lot_ids: list[list[str]] = []
        self.txt_ids: list[str] = []
        self.clock = 1_700_000_000  # fake, strictly increasing mtimes
        root.mkdir(parents=True, exist_ok=True)
        for i in range(lots):
            ids = [f"lot{i:02d}-{j:03d}" for j in range(per_lot)]
            self.lot_ids.append(ids)
            self.write_lot(i, {d: 0 for d in ids})
        for f in range(folders):
            for j in range(per_folder):
                rel = f"pages/site{f}/page-{j:03d}.txt"
                self.txt_ids.append(rel)
                self._write_txt(rel, 0)

    def _touch(self, path: Path) -> None:
        self.clock += 1
        os.utime(path, ns=(self.clock * 10**9, self.clock * 10**9))

    def write_lot(self, i: int, versions: dict[str, int], name: str | None = None) -> None:
        path = self.root / "lots" / (name or f"lot{i:02d}.jsonl")
        path.parent.mkdir(parents=True, exist_ok=True)
        lines = []
        for d, v in versions.items():
            title, body = doc_text(d, v)
            lines.append(json.dumps({"id": d, "title": title, "body": body, "date": "2024-03-0" + str(1 + v % 9)}, ensure_ascii=False))  # fmt: skip
            self.expected[d] = v
        path.write_text("\n".join(lines) + "\n", encoding="utf-8")
        self._touch(path)

    def _write_txt(self, rel: str, version: int) -> None:
        path = self.root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        title, body = doc_text(rel, version, 120)
        place = PLACES[sum(map(ord, rel)) % len(PLACES)]
        path.write_text(
            f"{_MENU}\n{title}\n\n{place} - Le 3 mars 2024 – {body}\n", encoding="utf-8"
        )
        self.expected[rel] = version
        self._touch(path)

    def rewrite_lot(self, i: int, version: int) -> dict[str, int]:
        """Every document of lot ``i`` gets ``version``."""
        self.write_lot(i, {d: version for d in self.lot_ids[i]})
        return dict(self.expected)

    def mutate(self, step: int, rng: random.Random) -> dict[str, int]:
        """One run's worth of changes: a lot rewritten, a new lot, pages changed or
        deleted. Returns the new expected state."""
        i = step % self.lots
        self.write_lot(i, {d: step for d in self.lot_ids[i]})
        new_ids = [f"new{step:03d}-{j:02d}" for j in range(15)]
        self.write_lot(0, {d: step for d in new_ids}, name=f"new-{step:03d}.jsonl")
        for rel in rng.sample(self.txt_ids, 2):
            self._write_txt(rel, step)
        if step % 2:
            rel = rng.choice(self.txt_ids)
            self.txt_ids.remove(rel)
            (self.root / rel).unlink()
            del self.expected[rel]
        return dict(self.expected)

    def touch_tiny(self, step: int) -> dict[str, int]:
        """Rewrite a one-document file: a one-document segment (for the merge policy)."""
        self.write_lot(0, {"tiny": step}, name="tiny.jsonl")
        return dict(self.expected)


# --------------------------------------------------------------------------------------
# looking into an index


def open_whoosh(ix_dir: Path):
    from whoosh import index as windex

    from oimsearch.schema import read_manifest

    m = read_manifest(ix_dir)
    return m, windex.open_dir(str(ix_dir), indexname=m.indexname)


_VER = re.compile(r"^ver(\d+)\b")


def index_state(ix_dir: Path) -> dict[str, int]:
    """id -> version of every live document, read the way a query opens the index."""
    from oimsearch.searcher import Searcher

    Searcher(ix_dir).close()  # the library opens it (manifest, analyzer, Whoosh)
    _, ix = open_whoosh(ix_dir)
    state: dict[str, int] = {}
    with ix.searcher() as s:
        for f in s.all_stored_fields():
            body = f.get("body") or ""
            m = _VER.match(body) or re.search(r"\bver(\d+)\b", body)
            state[f["id"]] = int(m.group(1)) if m else -1
    ix.close()
    return state


def stale_files(ix_dir: Path) -> list[str]:
    """Files of the index directory that the current generation does not use."""
    m, ix = open_whoosh(ix_dir)
    name = m.indexname
    gen = ix.latest_generation()
    seg_ids = {s.segment_id() for s in ix._segments()}
    ix.close()
    allowed = {"oimsearch.json", "oimsearch.lock", f"{name}_WRITELOCK", f"_{name}_{gen}.toc"}
    return sorted(
        p.name
        for p in ix_dir.iterdir()
        if p.name not in allowed and not (p.is_file() and p.name.split(".")[0] in seg_ids)
    )


def locks_free(ix_dir: Path) -> bool:
    """Neither oimsearch's lock nor Whoosh's writer lock is held by any process."""
    for p in [ix_dir / "oimsearch.lock", *ix_dir.glob("*_WRITELOCK")]:
        if not p.exists():
            continue
        fd = os.open(p, os.O_RDONLY)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            fcntl.flock(fd, fcntl.LOCK_UN)
        except OSError as e:
            if e.errno in (errno.EAGAIN, errno.EACCES, errno.EWOULDBLOCK):
                return False
            raise
        finally:
            os.close(fd)
    return True


if __name__ == "__main__":
    _install_from_env()
    from oimsearch.cli import main

    sys.argv = ["oimsearch", *sys.argv[1:]]
    main()
