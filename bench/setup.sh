#!/usr/bin/env bash
# Makes the benchmark's own virtualenv, .venv-bench at the repo root (gitignored):
# oimsearch itself (editable) + the peers' engines from bench/requirements.txt.
# Separate from the project venv because the peer harness's Whoosh baseline wants
# Whoosh-Reloaded, which installs the same `whoosh` package as our whoosh3 and would replace it
# (../shared/docs/whoosh-notes.md, trap T1): here the Whoosh peers run on whoosh3.
#   bash bench/setup.sh            (PYTHON=python3.11 and VENV=DIR may be set)
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
py=${PYTHON:-python3.11}
venv=${VENV:-$repo/.venv-bench}
[ -x "$venv/bin/python" ] || "$py" -m venv "$venv"
"$venv/bin/python" -m pip install -q -r "$repo/bench/requirements.txt"
"$venv/bin/python" -m pip install -q -e "$repo"
# exactly one distribution of the `whoosh` package, and it is whoosh3
"$venv/bin/python" - <<'PY'
from importlib.metadata import distributions

forks = {"whoosh", "whoosh-reloaded", "whoosh3", "whoosh-ng", "whoosh-novo"}
found = sorted({(d.metadata["Name"] or "").lower() for d in distributions()} & forks)
if found != ["whoosh3"]:
    raise SystemExit("bench venv must hold whoosh3 only, found: %s" % found)
import bm25s, numpy, Stemmer, tantivy  # noqa: F401,E401
print("ok: %s" % __import__("sys").prefix)
PY
