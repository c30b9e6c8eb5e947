"""Term-at-a-time top-k (oimsearch.topk) against Whoosh's own collector, and the body's
positions twin field (oimsearch.fields)."""

from __future__ import annotations

import shutil
from dataclasses import replace

import pytest
from whoosh import query as Q

from oimsearch.ranking import CoordQuery, RankingSettings, split_exact
from oimsearch.searcher import Searcher
from oimsearch.topk import top_docs

WORD_QUERIES = [
    "migrants",
    "titre de séjour",
    "réfugiés climatiques",
    "OIM migrants retour",
    "traite des êtres humains",
    "RCA",
    "RCA République centrafricaine",
    "République centrafricaine",
    "aide au retour volontaire",
    "l'OIM frontex traite",
    "migrants OR réfugiés",
    "retour volontaire réintégration Niger Libye",
    "migrnts séjour",
    "réfugi*",
    "migrants~",
    "title:migrants",
    '"traite des personnes"',
    "zzzqqq",
]
# shapes Whoosh's collector runs (top_docs declines them)
OTHER_QUERIES = ["migrants AND retour", "migrants -retour", "migrants NOT Niger"]


def _reference(srch, q, limit, flt=None):
    """Whoosh's collector over every match: (score, docnum) best first, ties by docnum."""
    res = srch.search(q, limit=None, filter=flt)
    pairs = sorted(((h.score, h.docnum) for h in res), key=lambda sd: (-sd[0], sd[1]))
    return pairs[:limit], len(pairs)


def _compare(searcher, settings, texts, limits, flt=None):
    compared = 0
    srch = searcher._searcher_for(settings)
    for text in texts:
        q, _ctx = searcher.build_query(text, settings)
        if q is None:
            continue
        for limit in limits:
            got = top_docs(srch, q, limit, flt)
            if got is None:  # only for AND / NOT / phrase-at-the-top shapes
                assert not isinstance(q, (CoordQuery, Q.Or, Q.Term)), text
                continue
            assert got == _reference(srch, q, limit, flt), (text, limit)
            compared += bool(got[0])
    return compared


@pytest.mark.parametrize(
    "settings",
    [
        RankingSettings(),
        RankingSettings(proximity=False, acronyms=False),
        RankingSettings(operator="and"),  # mostly And queries: the collector's
        RankingSettings(bm25f=True),
        RankingSettings(shared_idf=False),
        RankingSettings(coord=0.0),
        RankingSettings(coord_idf=0.0),
        RankingSettings(exact=False),
    ],
    ids=["default", "plainish", "and", "bm25f", "bm25", "nocoord", "countcoord", "noexact"],
)
def test_top_docs_equal_whoosh_collector(searcher, settings):
    """Same documents, same float scores, same order, and the exact count."""
    assert _compare(searcher, settings, WORD_QUERIES, [1, 3, 10, 30, 1000]) > 10


def test_top_docs_declines_other_shapes(searcher):
    srch = searcher._searcher_for(searcher.settings)
    for text in OTHER_QUERIES:
        q, _ctx = searcher.build_query(text)
        assert top_docs(srch, q, 10) is None, text


def test_top_docs_with_a_filter(searcher):
    flt = Q.Or([Q.Term("place_key", "niamey"), Q.Term("place_key", "bangui")])
    n = _compare(searcher, searcher.settings, WORD_QUERIES[:12], [1, 5, 50], flt)
    assert n > 3


@pytest.mark.parametrize("exact_depth", [0, 100])
def test_search_same_hits_both_ways(searcher, monkeypatch, exact_depth):
    """End to end (proximity bonus, ids, snippets aside): term at a time or not, the same.
    With the body's exact twin re-scored on the best documents (exact_depth, more than the
    fixture's matches), the same documents and scores up to the order of the additions."""
    st = replace(searcher.settings, exact_depth=exact_depth)
    rescored = 0
    for text in WORD_QUERIES + OTHER_QUERIES:
        for limit, offset in ((10, 0), (3, 2)):
            monkeypatch.setattr(Searcher, "term_at_a_time", False)
            a = searcher.search(text, limit=limit, offset=offset, snippets=False, settings=st)
            monkeypatch.setattr(Searcher, "term_at_a_time", True)
            b = searcher.search(text, limit=limit, offset=offset, snippets=False, settings=st)
            if exact_depth == 0:
                assert [(h.id, h.score) for h in a.hits] == [(h.id, h.score) for h in b.hits]
            else:
                assert [h.id for h in a.hits] == [h.id for h in b.hits], text
                assert [h.score for h in b.hits] == pytest.approx(
                    [h.score for h in a.hits], rel=1e-12
                )
                q, _ctx = searcher.build_query(text, st)
                rescored += bool(split_exact(q)[1])
            if a.total_relation == "eq":
                assert b.total == a.total, text
            else:
                assert b.total >= a.total, text
    assert exact_depth == 0 or rescored > 10


def test_top_docs_over_segments_with_deletions(corpus_dir, tmp_path):
    """An update writes a second segment and deletes the changed file's old document."""
    from oimsearch.indexer import index_paths

    corpus = tmp_path / "c"
    shutil.copytree(corpus_dir, corpus)
    ix = tmp_path / "ix"
    index_paths([corpus], index_dir=ix)
    f = corpus / "communiques" / "03-niamey-retour-volontaire.txt"
    f.write_text(f.read_text(encoding="utf-8") + "\nLes migrants de retour à Niamey.\n", "utf-8")
    (corpus / "communiques" / "99-new.txt").write_text(
        "Retour volontaire\n\nDes migrants rentrent au Niger avec l'aide au retour.\n", "utf-8"
    )
    index_paths([corpus], index_dir=ix)
    with Searcher(ix) as s:
        reader = s.searcher.reader()
        assert len(list(s.searcher.leaf_searchers())) >= 2
        assert any(r.has_deletions() for r, _off in reader.leaf_readers())
        assert _compare(s, s.settings, WORD_QUERIES, [1, 10, 1000]) > 10


def test_body_postings_hold_no_positions_and_body_pos_does(searcher):
    schema = searcher.searcher.schema
    assert not schema["body"].format.supports("positions")
    assert schema["body_pos"].format.supports("positions")
    assert schema["title"].format.supports("positions")
    reader = searcher.searcher.reader()
    body = {t for t in reader.lexicon("body")}
    assert body and body == {t for t in reader.lexicon("body_pos")}
    for t in list(body)[:50]:
        assert reader.doc_frequency("body", t) == reader.doc_frequency("body_pos", t)
    assert searcher.searcher.avg_field_length("body") == searcher.searcher.avg_field_length(
        "body_pos"
    )


def test_body_fields_index_like_whoosh():
    """BodyText gives what a Frequency field gives, BodyPositions what a Positions field
    gives, from one analysis of the text."""
    from whoosh.fields import TEXT

    from oimsearch.analysis import stemmed_analyzer
    from oimsearch.fields import BodyPositions, BodyText

    ana = stemmed_analyzer()
    calls = []

    def counting(text, **kw):
        calls.append(text)
        return ana(text, **kw)

    text = "L'OIM aide les migrants : les migrants rentrent, l'OIM les accompagne."
    body, body_pos = BodyText(analyzer=counting, phrase=False), BodyPositions(analyzer=counting)
    got_freq = sorted(body.index(text))
    got_pos = sorted(body_pos.index(text))
    assert len(calls) == 1
    assert got_freq == sorted(TEXT(analyzer=ana, phrase=False).index(text))
    assert got_pos == sorted(TEXT(analyzer=ana).index(text))
    # another string: analysed on its own
    assert sorted(body_pos.index(text + " Fin.")) == sorted(
        TEXT(analyzer=ana).index(text + " Fin.")
    )


def test_index_with_positions_in_body_still_searches(corpus_dir, tmp_path, monkeypatch):
    """An index built before body_pos (positions in ``body``) answers phrases, proximity and
    acronym long forms like a new one."""
    import oimsearch.indexer as indexer_mod
    from oimsearch import schema as schema_mod

    def old_schema():
        from whoosh.fields import TEXT

        s = schema_mod.build_schema()
        s.remove("body")
        s.remove("body_pos")
        s.add("body", TEXT(analyzer=s["title"].analyzer, stored=True))
        return s

    new_ix, old_ix = tmp_path / "new", tmp_path / "old"
    indexer_mod.index_paths([corpus_dir], index_dir=new_ix)
    monkeypatch.setattr(indexer_mod, "build_schema", old_schema)
    indexer_mod.index_paths([corpus_dir], index_dir=old_ix)
    texts = ['"traite des personnes"', "traite des êtres humains", "RCA", "retour volontaire"]
    with Searcher(new_ix) as new, Searcher(old_ix) as old:
        assert "body_pos" not in old.searcher.schema
        assert old.searcher.schema["body"].format.supports("positions")
        for text in texts:
            a = new.search(text, snippets=False)
            b = old.search(text, snippets=False)
            assert a.hits, text
            assert [h.id for h in a.hits] == [h.id for h in b.hits], text
            assert [h.score for h in a.hits] == pytest.approx([h.score for h in b.hits]), text


def test_phrases_are_read_block_by_block(searcher, monkeypatch):
    """Phrase atoms (a quoted phrase, an acronym's long form) go through _phrase_scores,
    not the document-by-document walk, and score as Whoosh's span matcher does."""
    import oimsearch.topk as topk

    used = []
    real = topk._phrase_scores

    def counting(m, boost):
        found = real(m, boost)
        if found is not None:
            used.append(len(found))
        return found

    monkeypatch.setattr(topk, "_phrase_scores", counting)
    texts = ['"traite des personnes"', "RCA migrants", '"retour volontaire" Niger']
    assert _compare(searcher, searcher.settings, texts, [1, 10, 1000]) >= 3
    assert used and any(used)  # phrase atoms were read block by block, some matched


@pytest.fixture(scope="module")
def zipf_index(tmp_path_factory):
    """1,200 generated documents over a Zipf-like vocabulary, in two files, then an update
    that rewrites one of them (a second segment, deletions in the first)."""
    import json
    import random

    from oimsearch.indexer import index_paths

    base = tmp_path_factory.mktemp("zipf")
    corpus = base / "c"
    corpus.mkdir()
    vocab = (
        "migrants retour aide volontaire projet frontière santé emploi famille enfants "
        "protection réfugiés camp Niger Libye Tchad route désert eau école formation "
        "travail droits traite victimes police justice accueil centre région partenaires"
    ).split()
    weights = [1 / (i + 1) for i in range(len(vocab))]
    rnd = random.Random(11)

    def write(name, start, count):
        with open(corpus / name, "w", encoding="utf-8") as f:
            for i in range(start, start + count):
                n = rnd.randint(3, 40)
                body = " ".join(rnd.choices(vocab, weights, k=n))
                title = " ".join(rnd.choices(vocab, weights, k=rnd.randint(1, 4)))
                doc = {"id": f"d{i}", "title": title.capitalize(), "body": body + "."}
                f.write(json.dumps(doc, ensure_ascii=False) + "\n")

    write("a.jsonl", 0, 600)
    write("b.jsonl", 600, 600)
    ix = base / "ix"
    index_paths([corpus], index_dir=ix)
    write("b.jsonl", 600, 650)
    index_paths([corpus], index_dir=ix)
    return ix


ZIPF_QUERIES = [
    "migrants retour",
    "migrants retour aide",
    "Migrants retour aide volontaire projet",
    "réfugiés camp santé",
    "traite victimes police justice",
    "migrants partenaires",
    "école formation travail droits eau enfants famille emploi",
    # more than 8 words: each document scored with the factor of its own words' weights
    "école formation travail droits eau enfants famille emploi migrants justice",
    "migrants OR retour OR aide",
    "retour volontaire Niger",
]


def test_lazy_sets_equal_whoosh_collector(zipf_index, monkeypatch):
    """Sets of words scored only when their bound reaches the floor: the same top k, floats
    and counts as Whoosh's collector; and the lazy path ran, and skipped documents."""
    from oimsearch import topk

    ran, scored, counted = [], [0], [0]
    real_lazy, real_set_docs = topk._score_words_lazily, topk._set_docs

    def lazy(m, top, offset, allowed):
        n = real_lazy(m, top, offset, allowed)
        ran.append(n is not None)
        counted[0] += n or 0
        return n

    def set_docs(keys, idx):
        docs = real_set_docs(keys, idx)
        scored[0] += len(docs)
        return docs

    monkeypatch.setattr(topk, "_score_words_lazily", lazy)
    monkeypatch.setattr(topk, "_set_docs", set_docs)
    with Searcher(zipf_index) as s:
        assert any(r.has_deletions() for r, _off in s.searcher.reader().leaf_readers())
        for settings in (RankingSettings(), RankingSettings(exact=False, coord=0.8)):
            assert _compare(s, settings, ZIPF_QUERIES, [1, 5, 30]) >= len(ZIPF_QUERIES)
        flt = Q.Term("place_key", "nowhere")
        _compare(s, s.settings, ZIPF_QUERIES, [10], flt)
        allowed = Q.Or([Q.Term("id", f"d{i}") for i in range(0, 1250, 3)])
        assert _compare(s, s.settings, ZIPF_QUERIES, [1, 10], allowed) >= len(ZIPF_QUERIES)
    assert any(ran)
    # the documents of the sets whose bound reached the floor, against every match
    assert 0 < scored[0] < counted[0], (scored, counted)
    monkeypatch.setattr(topk, "LAZY", False)
    with Searcher(zipf_index) as s:
        assert _compare(s, s.settings, ZIPF_QUERIES, [1, 5, 30]) >= len(ZIPF_QUERIES)


def test_exact_twin_rescored_on_the_best_documents(zipf_index):
    """exact_depth below the number of matches: the full query's total, every hit scored as
    the full query scores it (up to the order of the additions), hits in score order, and
    the exact bonus moved documents (the first pass alone ranks otherwise)."""
    with Searcher(zipf_index) as s:
        full_st = replace(s.settings, exact_depth=0)
        checked = same = 0
        # and more than 8 words: every document scored, each with its own coordination factor
        many = "migrants retour aide volontaire projet frontière santé emploi famille enfants"
        for text in [*ZIPF_QUERIES, many]:
            q, _ctx = s.build_query(text, full_st)
            first, terms = split_exact(q)
            assert terms or text != many
            if not terms:
                continue
            assert all(t.fieldname == "body_exact" for t in terms)
            assert "body_exact" not in str(first) and "body_exact" in str(q)
            full = s.search(text, limit=2000, snippets=False, settings=full_st)
            score_of = {h.id: h.score for h in full.hits}
            for depth in (10, 40):
                got = s.search(
                    text, limit=10, snippets=False, settings=replace(s.settings, exact_depth=depth)
                )
                assert got.total == full.total and got.total_relation == "eq"
                scores = [h.score for h in got.hits]
                assert scores == sorted(scores, reverse=True) and len(scores) == 10
                for h in got.hits:
                    assert h.score == pytest.approx(score_of[h.id], rel=1e-12), (text, h.id)
                same += [h.id for h in got.hits] == [h.id for h in full.hits[:10]]
                checked += 1
        assert checked >= 2 * (len(ZIPF_QUERIES) - 1)
        assert same >= checked // 2  # mostly the same top 10 as scoring every match


def test_lazy_scores_and_counts_on_both_paths(zipf_index, monkeypatch):
    """The lazy path's two ways to score a leaf (one expression when every length byte is
    in the column and non-zero, else ``_Bm25.values`` and its fallbacks) and its two ways to
    count (the sizes of the sets when every set was taken, else their union) give Whoosh's
    floats and totals."""
    from oimsearch import topk

    direct, taken = [], []
    real_init, real_sets, real_set_docs = (
        topk._Postings.__init__,
        topk._sets_by_bound,
        topk._set_docs,
    )
    force = {"direct": None}

    def init(self, m, params):
        real_init(self, m, params)
        if force["direct"] is not None:
            self.direct = force["direct"]
        direct.append(self.direct)

    listed = [0]

    def sets_by_bound(*args):
        sets = real_sets(*args)
        listed[0] += len(sets)
        return sets

    def set_docs(keys, idx):
        taken.append(tuple(idx))
        return real_set_docs(keys, idx)

    monkeypatch.setattr(topk._Postings, "__init__", init)
    monkeypatch.setattr(topk, "_sets_by_bound", sets_by_bound)
    monkeypatch.setattr(topk, "_set_docs", set_docs)
    with Searcher(zipf_index) as s:
        # a limit above the number of documents: every set is taken; a limit of 1: not
        for limit in (2000, 1):
            listed[0] = 0
            taken.clear()
            assert _compare(s, s.settings, ZIPF_QUERIES, [limit]) >= len(ZIPF_QUERIES)
            assert (len(taken) == listed[0]) == (limit == 2000), (limit, len(taken), listed)
        assert direct and all(direct)
        force["direct"] = False
        direct.clear()
        assert _compare(s, s.settings, ZIPF_QUERIES, [1, 30, 2000]) >= len(ZIPF_QUERIES)
        assert direct and not any(direct)


def test_length_terms_computed_once_per_field_and_settings():
    """_Bm25's 256 length terms are shared by the leaves of one (avgfl, B, K1), and are
    those of the formula; another table or other settings get their own."""
    from oimsearch import topk

    table = [float(i) for i in range(256)]
    p = (2.0, 10.0, 0.75, 1.2, b"\x01\x02", table, None)
    a, b = topk._Bm25(p), topk._Bm25(p)
    assert a.norm is b.norm
    assert a.norm[7] == 1.2 * ((1 - 0.75) + 0.75 * 7.0 / 10.0)
    c = topk._Bm25((2.0, 10.0, 1.0, 1.2, b"\x01", table, None))
    assert c.norm is not a.norm and c.norm[7] == 1.2 * (0.0 + 1.0 * 7.0 / 10.0)
    other = [x * 2 for x in table]
    d = topk._Bm25((2.0, 10.0, 0.75, 1.2, b"\x01", other, None))
    assert d.norm is not a.norm and d.norm[7] == 1.2 * ((1 - 0.75) + 0.75 * 14.0 / 10.0)
    assert len(topk._NORMS) <= 64
