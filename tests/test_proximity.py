"""Proximity as a re-scoring of the top candidates, and totals when the search prunes.

The re-scoring (``proximity_depth > 0``) must give the scores of the phrase clause it replaces
(``proximity_depth=0``: ``AndMaybe(query, Or([Phrase(body), Phrase(title)]))``) to every
document it reaches, and the skipping it allows must never change the top hits.
"""

from __future__ import annotations

import pytest

from oimsearch import searcher as searcher_mod
from oimsearch.ranking import RankingSettings, _in_order_near, _tree_sum

QUERIES = [
    "traite des êtres humains",
    "titre de séjour",
    "aide au retour volontaire",
    "OIM migrants retour",
    "retour volontaire réintégration Niger Libye",
    "réfugiés climatiques côte érosion",
    "migrants OR réfugiés -climat",
    "travailleurs migrants Genève",
    "demandes d'asile numérisation",
    "RCA République centrafricaine",
]


def _pairs(res):
    return [(h.id, h.score) for h in res.hits]


def _same(a, b):
    assert [i for i, _ in a] == [i for i, _ in b]
    for (_, x), (_, y) in zip(a, b, strict=True):
        assert x == pytest.approx(y, rel=1e-9, abs=1e-12)


@pytest.mark.parametrize("text", QUERIES)
def test_rescoring_equals_phrase_clause(searcher, text):
    ref = searcher.search(
        text, limit=1000, snippets=False, settings=RankingSettings(proximity_depth=0)
    )
    new = searcher.search(
        text, limit=1000, snippets=False, settings=RankingSettings(proximity_depth=1000)
    )
    _same(_pairs(new), _pairs(ref))
    assert new.total == ref.total


def test_rescoring_changes_scores(searcher):
    # the bonus is really there: without proximity the scores are lower for a phrase match
    text = "aide au retour volontaire"
    on = searcher.search(text, limit=5, snippets=False)
    off = searcher.search(text, limit=5, snippets=False, settings=RankingSettings(proximity=False))
    assert on.hits and off.hits
    assert on.hits[0].score > off.hits[0].score


PRUNING_SETTINGS = {
    "default": RankingSettings(proximity=False),
    "bm25": RankingSettings(proximity=False, shared_idf=False),
    "bm25f": RankingSettings(proximity=False, bm25f=True),
    "and": RankingSettings(proximity=False, operator="and"),
}


@pytest.mark.parametrize("name", sorted(PRUNING_SETTINGS))
@pytest.mark.parametrize("limit", [1, 2, 3, 5])
@pytest.mark.parametrize("text", QUERIES)
def test_pruned_top_k_equals_unpruned(searcher, text, limit, name):
    # top-k search skips documents (MaxScore) once the heap is full: the hits must be those
    # of scoring every match
    st = PRUNING_SETTINGS[name]
    full = searcher.search(text, limit=1000, snippets=False, settings=st)
    top = searcher.search(text, limit=limit, snippets=False, settings=st)
    _same(_pairs(top), _pairs(full)[:limit])


def test_total_is_lower_bound_when_pruned(searcher, monkeypatch):
    text = "migrants retour volontaire"
    exact = searcher.search(text, limit=1000, snippets=False)
    assert exact.total_relation == "eq" and exact.total == len(exact.hits) > 3
    # no exact recount (as on a large index): a pruned search may only claim a lower bound
    monkeypatch.setattr(searcher_mod, "EXACT_TOTAL_MAX_DOCS", 0)
    small = searcher.search(
        text, limit=1, snippets=False, settings=RankingSettings(proximity_depth=1)
    )
    assert small.hits[0].id == exact.hits[0].id
    if small.total_relation == "eq":
        assert small.total == exact.total
    else:
        assert small.total_relation == "gte"
        assert 1 <= small.total <= exact.total


@pytest.mark.parametrize(
    "plists, slop, want",
    [
        ([[0], [1]], 1, True),
        ([[1], [0]], 4, False),  # out of order
        ([[0], [0]], 4, False),  # same position: a gap of at least 1
        ([[0], [5]], 4, False),  # too far
        ([[0], [4]], 4, True),
        ([[0, 10], [3, 12], [14]], 2, True),  # 10 -> 12 -> 14
        ([[0, 10], [3], [5]], 3, True),
        ([[0], [3], [8]], 3, False),
        ([[2, 7], [1, 9], [4, 11]], 2, True),  # 7 -> 9 -> 11
    ],
)
def test_in_order_near(plists, slop, want):
    assert _in_order_near(plists, slop) is want


def test_tree_sum_is_a_sum():
    vals = [0.1, 0.2, 0.3, 0.4, 0.5]
    assert _tree_sum(vals) == pytest.approx(sum(vals))
    assert _tree_sum([2.5]) == 2.5


def test_large_index_search_runs_the_query_once(searcher, monkeypatch):
    # Whoosh's Results.__len__ re-runs the whole query unscored when the length is not
    # exact; on an index above the exact-count threshold nothing may take that path
    from whoosh.searching import Searcher as WhooshSearcher

    calls = []
    orig = WhooshSearcher.docs_for_query

    def counting(self, *a, **k):
        calls.append(1)
        return orig(self, *a, **k)

    monkeypatch.setattr(WhooshSearcher, "docs_for_query", counting)
    monkeypatch.setattr(searcher_mod, "EXACT_TOTAL_MAX_DOCS", 0)
    for text in QUERIES:
        searcher.search(text, limit=1, snippets=False, settings=RankingSettings(proximity_depth=1))
    assert calls == []


def test_seek_matches_whooshs_skip_to(tmp_path):
    """_seek (block headers, then a bisect of the block's ids) lands where Whoosh's skip_to
    does, over several blocks of postings and with deleted documents."""
    import json
    import random

    from whoosh import query as wq

    from oimsearch.indexer import index_paths
    from oimsearch.ranking import _seek
    from oimsearch.searcher import open_searcher

    corpus = tmp_path / "c"
    corpus.mkdir()
    rnd = random.Random(7)
    for part in range(2):
        with open(corpus / f"part{part}.jsonl", "w", encoding="utf-8") as f:
            for i in range(400):
                words = rnd.sample(["migrants", "retour", "volontaire", "aide", "projet"], 3)
                doc = {"id": f"d{part}-{i}", "title": f"Note {i}", "body": " ".join(words)}
                f.write(json.dumps(doc) + "\n")
    ix = tmp_path / "ix"
    index_paths([corpus], index_dir=ix)
    # rewrite one file: its old documents are deleted from their segment
    with open(corpus / "part1.jsonl", "a", encoding="utf-8") as f:
        f.write(json.dumps({"id": "extra", "title": "Extra", "body": "retour aide"}) + "\n")
    index_paths([corpus], index_dir=ix)
    with open_searcher(ix) as s:
        checked = 0
        kinds = set()
        for sub, _offset in s.searcher.leaf_searchers():
            reader = sub.reader()
            n = reader.doc_count_all()
            live = [d for d in range(n) if not reader.is_deleted(d)]
            for word in ("migrant", "retour", "volontair"):
                if ("body_pos", word) not in reader:
                    continue
                targets = sorted(rnd.sample(live, min(60, len(live))))
                mine = wq.Term("body_pos", word).matcher(sub)
                kinds.add(type(mine).__name__)
                theirs = wq.Term("body_pos", word).matcher(sub)
                for d in targets:
                    if theirs.is_active() and theirs.id() < d:
                        theirs.skip_to(d)
                    want = theirs.is_active() and theirs.id() == d
                    assert _seek(mine, d) == want
                    if want:
                        assert list(mine.value_as("positions")) == list(
                            theirs.value_as("positions")
                        )
                        checked += 1
        assert checked > 50
        assert kinds == {"FilterMatcher", "W3LeafMatcher"}  # deletions, and a clean segment
