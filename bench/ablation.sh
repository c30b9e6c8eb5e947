#!/usr/bin/env bash
# Ranking ablation (issue 9): each feature alone on top of a plain per-field BM25, and all
# together (the default row), on the three dev halves, with the peers in the same run; and
# the default with each word counting 1 in the coordination factor instead of its IDF.
# Needs the bench venv (bash bench/setup.sh). Writes bench/results/*.ablation.{json,md}.
set -euo pipefail
cd "$(dirname "$0")/.."
BASE='"shared_idf": false, "exact": false, "proximity": false, "acronyms": false, "fuzzy": false, "coord": 0, "title_share": false, "question_words": false'
V=(--variant "plain-bm25f={$BASE}"
   --variant "+shared-idf={$BASE, \"shared_idf\": true}"
   --variant "+true-bm25f={$BASE, \"bm25f\": true, \"title_separate\": false}"
   --variant "+exact={$BASE, \"exact\": true}"
   --variant "+proximity={$BASE, \"proximity\": true}"
   --variant "+acronyms={$BASE, \"acronyms\": true}"
   --variant "+fuzzy={$BASE, \"fuzzy\": true}"
   --variant "+coord={$BASE, \"coord\": 0.3}"
   --variant "+title-share={$BASE, \"title_share\": true}"
   --variant "+question-words={$BASE, \"question_words\": true}"
   --variant "default-coord-by-count={\"coord_idf\": 0}")
P=oimsearch,tantivy,fts5,bm25s,whoosh-fr,tantivy-1f
.venv-bench/bin/python bench/run.py --corpus ../shared/corpora/fr-cnil-faq --peers $P --name fr-cnil-faq.ablation "${V[@]}"
.venv-bench/bin/python bench/run.py --corpus ../shared/corpora/fr-piaf-qa --peers $P --query-sample 1000 --name fr-piaf-qa.ablation "${V[@]}"
.venv-bench/bin/python bench/run.py --corpus ../shared/corpora/fr-cdtn-prequalified --peers $P --query-sample 500 --name fr-cdtn-prequalified.ablation "${V[@]}"
