#!/usr/bin/env bash
# Reproduces every table of bench/README.md, one run per corpus (all engines in each run),
# then splices bench/results/*.md into the README. About 25-45 minutes on 2 cores.
#   bash bench/run_all.sh [CORPORA_DIR]     (default ../shared/corpora; PY=... to override)
# Query samples (seed 42) follow the peer harness's run_all.sh, so that one run stays near
# 10-15 minutes on 2 cores: fr-cdtn-prequalified (more than 5,000 documents and 1,000 queries)
# is sampled to 1,000 queries, fr-piaf-qa (more than 2,000 queries) to 2,000.
# Ablations: add --variant NAME=JSON to a line (same index, one more row per variant).
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
cd "$repo"
PY=${PY:-$repo/.venv-bench/bin/python}
corpora=${1:-$repo/../shared/corpora}
relevance=oimsearch,tantivy,fts5,bm25s,whoosh-naive,whoosh-fr,tantivy-1f
speed=oimsearch,tantivy,fts5,bm25s,whoosh-naive,whoosh-fr
"$PY" bench/run.py --corpus "$corpora/fr-cdtn-prequalified" --peers "$relevance" --query-sample 1000
"$PY" bench/run.py --corpus "$corpora/fr-piaf-qa" --peers "$relevance" --query-sample 2000
"$PY" bench/run.py --corpus "$corpora/fr-cnil-faq" --peers "$relevance"
# the codes run also times plain BM25 (no ranking feature) on the same index: issue 9's
# latency budget is relative to it
plain='plain={"exact": false, "proximity": false, "acronyms": false, "fuzzy": false, "coord": 0}'
"$PY" bench/run.py --corpus "$corpora/fr-codes-juridiques" --peers "$speed" --variant "$plain"
"$PY" bench/update_readme.py
