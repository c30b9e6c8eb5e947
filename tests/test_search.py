"""Ranking, query syntax, highlighting and filters on the hand-written fixture corpus."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from oimsearch.errors import QuerySyntaxError, UsageError
from oimsearch.ranking import RankingSettings
from tests.conftest import ids

TRAFFIC = "communiques/01-bangui-traite-des-personnes.txt"
CAR_NO_RCA = "communiques/02-bangui-deplaces-internes-dtm.txt"
RETURN = "communiques/03-niamey-retour-volontaire.txt"
REFUGEES = "communiques/04-kinshasa-femmes-refugiees.txt"
ASCII_OIM = "communiques/05-tunis-caravane-sanitaire.txt"
GENEVA = "communiques/06-geneve-recrutement-equitable.txt"
TREATY = "geneve-2023-travailleurs-migrants.md"
TREATMENT = "numerisation-demandes-asile.html"
FISHING = "cote-divoire-peche-erosion.md"
SIN = "note-2024-01-dialogue-interreligieux"


def test_traite_finds_trafficking_first_and_not_traitement(searcher):
    res = searcher.search("traite")
    got = ids(res)
    assert got[0] == TRAFFIC
    assert TREATMENT not in got  # traitement is stemmed apart (override table)


def test_accented_treaty_ranks_the_treaty_first(searcher):
    # traité folds onto traite, so both documents match; the exact twin puts the treaty first
    got = ids(searcher.search("traité"))
    assert got[:1] == [TREATY]
    assert TRAFFIC in got


def test_unaccented_query_finds_accented_words(searcher):
    got = set(ids(searcher.search("securite")))
    assert {RETURN, REFUGEES, GENEVA} <= got


def test_elision_and_apostrophes_are_one_word(searcher):
    a = ids(searcher.search("OIM", limit=50))
    b = ids(searcher.search("l'OIM", limit=50))
    c = ids(searcher.search("L’OIM", limit=50))
    assert set(a) == set(b) == set(c)
    assert ASCII_OIM in a  # written with an ASCII apostrophe


def test_phrase_requires_adjacent_words(searcher):
    got = ids(searcher.search('"retour volontaire"'))
    assert got == [RETURN]
    loose = ids(searcher.search("retour volontaire"))
    assert RETURN == loose[0] and REFUGEES in loose  # partial/far matches kept, ranked after


def test_not_and_minus_exclude(searcher):
    a = ids(searcher.search("retour NOT volontaire", limit=50))
    b = ids(searcher.search("retour -volontaire", limit=50))
    assert RETURN not in a and REFUGEES not in a
    assert set(a) == set(b)


def test_prefix_is_folded_not_stemmed(searcher):
    got = ids(searcher.search("réfugi*"))
    assert REFUGEES in got
    with pytest.raises(QuerySyntaxError):
        searcher.search("r*")
    with pytest.raises(QuerySyntaxError):
        searcher.search("*tion")


def test_title_field(searcher):
    got = ids(searcher.search("title:traité"))
    # traité folds onto traite (accepted by the analyzer spec); the exact twin ranks it first
    assert got[0] == TREATY
    assert set(got) <= {TREATY, TRAFFIC}
    assert ids(searcher.search("title:Bangui")) == []  # Bangui is only in bodies


def test_fuzzy_syntax(searcher):
    got = ids(searcher.search("déplacé~"))
    assert CAR_NO_RCA in got


def test_acronym_finds_long_form_only_document(searcher):
    got = ids(searcher.search("RCA", limit=20))
    assert got[0] == TRAFFIC
    assert CAR_NO_RCA in got  # says only "République centrafricaine"
    off = ids(searcher.search("RCA", settings=RankingSettings(acronyms=False)))
    assert CAR_NO_RCA not in off


def test_long_form_finds_acronym(searcher):
    res = searcher.search("République centrafricaine")
    assert "République centrafricaine" in str(res.expansions.get("acronyms", {}))


def test_typo_fallback_only_for_unknown_words(searcher):
    res = searcher.search("migrans")
    assert res.hits and res.fuzzy
    assert "migrans" in res.expansions["fuzzy"]
    res2 = searcher.search("migrants")
    assert not res2.fuzzy and "fuzzy" not in res2.expansions
    res3 = searcher.search("migrans", settings=RankingSettings(fuzzy=False))
    assert not res3.expansions.get("fuzzy")


def test_zero_hits_has_suggestion(searcher):
    res = searcher.search("zzzqqq")
    assert res.total == 0 and res.hits == []


def test_all_words_documents_first(searcher):
    res = searcher.search("bourse étudiants Genève", limit=20)
    assert res.hits[0].id == "note-2023-05-bourse-etudiants"


def test_highlights_are_on_raw_text(searcher):
    res = searcher.search("securite deplaces OIM")
    seen = set()
    for h in res.hits:
        for s in h.snippets:
            for a, b in s.highlights:
                assert 0 <= a < b <= len(s.text)
                seen.add(s.text[a:b])
    assert any("sécurité" == w.lower() for w in seen)
    assert any(w.endswith("OIM") for w in seen)
    assert "OIM" in seen  # the elided article is not highlighted: l’OIM -> OIM


def test_snippets_are_exact_substrings(searcher):
    from oimsearch.searcher import Searcher  # noqa: F401

    res = searcher.search("migrants")
    for h in res.hits:
        doc = searcher.document(h.id)
        for s in h.snippets:
            field = doc.title if s.field == "title" else doc.body
            assert field[s.offset : s.offset + len(s.text)] == s.text
            assert s.cut_start == (s.offset > 0)


def test_filters_place_date_path(searcher):
    bangui = ids(searcher.search("OIM", place="bangui", limit=50))
    assert set(bangui) == {TRAFFIC, CAR_NO_RCA}
    y2024 = ids(searcher.search("OIM", since="2024", limit=50))
    assert TRAFFIC in y2024 and CAR_NO_RCA not in y2024
    upto = ids(searcher.search("OIM", until="2022-12", limit=50))
    assert TRAFFIC not in upto and REFUGEES in upto
    comm = ids(searcher.search("OIM", path="communiques/*", limit=50))
    assert comm and all(i.startswith("communiques/") for i in comm)
    with pytest.raises(UsageError):
        searcher.search("OIM", since="hier")


def test_paging_and_ranks(searcher):
    full = searcher.search("OIM", limit=6)
    page2 = searcher.search("OIM", limit=3, offset=3)
    assert [h.id for h in page2.hits] == [h.id for h in full.hits[3:6]]
    assert [h.rank for h in page2.hits] == [4, 5, 6]
    assert full.total >= 6 and full.total_relation == "eq"


def test_stop_words_only_query_finds_nothing(searcher):
    assert searcher.search("de la").hits == []


def test_similar_and_show(searcher):
    res = searcher.similar(TRAFFIC, limit=3)
    assert res.hits and TRAFFIC not in ids(res)
    doc = searcher.document(TRAFFIC)
    assert doc.place == "Bangui" and doc.date == "2024-02-12"
    assert "traite" in doc.body


def test_stats(searcher):
    st = searcher.stats()
    assert st.documents == 14
    assert st.analyzer.startswith("fr-light")
    assert ("Bangui", 2) in st.top_places or any(p == "Bangui" for p, _ in st.top_places)
    assert "RCA" in st.acronyms and "OIM" in st.acronyms


def test_searcher_resolves_the_index_dir_like_the_indexer(tmp_path, monkeypatch):
    from oimsearch import indexer, searcher

    for env in (None, "", str(tmp_path / "env")):
        if env is None:
            monkeypatch.delenv("OIMSEARCH_INDEX", raising=False)
        else:
            monkeypatch.setenv("OIMSEARCH_INDEX", env)
        for arg in (None, "", str(tmp_path / "opt"), tmp_path / "p"):
            assert searcher.resolve_index_dir(arg) == indexer.resolve_index_dir(arg)


def test_long_forms_are_analysed_only_for_queries_that_can_use_them(fixture_index):
    """With a manifest written before long forms were stored analysed."""
    from oimsearch.searcher import Searcher

    s = Searcher(fixture_index)
    s.manifest.acronym_terms = {}
    try:
        s.search("migrants")  # one word: no run of words to look up
        assert not s.__dict__.get("_long_form_terms")
        res = s.search("République centrafricaine")
        assert "RCA" in str(res.expansions.get("acronyms", {}))
        analysed = set(s.__dict__["_long_form_terms"])
        forms = [f for fs in s.manifest.acronyms.values() for f in fs[:2]]
        assert analysed and len(analysed) < len(set(forms))
        _check_long_form_runs(s)
    finally:
        s.close()


def _check_long_form_runs(s) -> None:
    """Every run of query terms finds in ``s._long_forms`` what the table of all long forms
    (built here, analysing each one) has for it."""
    from oimsearch.analysis import terms

    full: dict = {}
    for acr, fs in s.manifest.acronyms.items():
        for f in fs[:2]:
            t = tuple(terms(f))
            if len(t) >= 2:
                full.setdefault(t, []).append((f, acr))
    found = 0
    for text in ("République centrafricaine", "organisation internationale migrations"):
        seq = terms(text)
        table = s._long_forms(set(seq))
        found += sum(map(len, table.values()))
        for i in range(len(seq)):
            for j in range(i + 2, len(seq) + 1):
                key = tuple(seq[i:j])
                assert table.get(key, []) == full.get(key, [])
    assert found


def test_prefix_absent_from_titles_on_a_large_index(tmp_path, monkeypatch):
    """On indexes too large for an exact total, Whoosh's size estimate of a prefix that
    expands to nothing in one field (here: no title word starts with `refugi`) raised
    ValueError; the search must answer with a lower bound instead."""
    import oimsearch.searcher as searcher_mod
    from oimsearch.indexer import index_paths
    from oimsearch.searcher import Searcher

    corpus = tmp_path / "c"
    corpus.mkdir()
    for i in range(3):
        (corpus / f"{i}.txt").write_text(f"Note {i}\n\nLes réfugiés arrivés à Tunis ({i}).\n")
    index_paths([corpus], index_dir=tmp_path / "ix")
    monkeypatch.setattr(searcher_mod, "EXACT_TOTAL_MAX_DOCS", 0)
    with Searcher(tmp_path / "ix") as s:
        s.term_at_a_time = False  # Whoosh's collector, which estimates the total
        res = s.search("réfugi*", limit=2)
        assert len(res.hits) == 2
        assert res.total >= 2 and res.total_relation == "gte"
        s.term_at_a_time = True  # scores every match: the total is exact
        res = s.search("réfugi*", limit=2)
        assert len(res.hits) == 2
        assert (res.total, res.total_relation) == (3, "eq")


def test_coordination_weighs_words_by_idf(tmp_path):
    """The coordination factor counts each word as its IDF ** coord_idf: a document missing
    a rare word of the query keeps less of its score than one missing a common word; at
    coord_idf 0 each word counts 1 (matched / n)."""
    from oimsearch.indexer import index_paths
    from oimsearch.ranking import bm25_idf
    from oimsearch.searcher import Searcher

    corpus = tmp_path / "c"
    corpus.mkdir()
    (corpus / "z.txt").write_text("Note\n\nUn zèbre traverse la plaine.\n")
    for i in range(30):
        (corpus / f"m{i}.txt").write_text(f"Note\n\nLa maison numéro {i} est vendue.\n")
    index_paths([corpus], index_dir=tmp_path / "ix")
    plain = {"exact": False, "proximity": False, "acronyms": False, "fuzzy": False}

    def scores(**kw):
        res = s.search("zèbre maison", limit=50, settings=RankingSettings(**plain, **kw))
        return {h.id: h.score for h in res.hits}

    with Searcher(tmp_path / "ix") as s:
        for bm25f, p in [(False, 0.0), (False, 1.0), (False, 1.5), (True, 1.5)]:
            bare = scores(coord=0.0, bm25f=bm25f)
            assert len(bare) == 31
            idf_z, idf_m = bm25_idf(1, 31), bm25_idf(30, 31)
            got = scores(coord=0.3, coord_idf=p, bm25f=bm25f)
            wz, wm = idf_z**p, idf_m**p
            fz, fm = (wz / (wz + wm)) ** 0.3, (wm / (wz + wm)) ** 0.3
            assert got["z.txt"] == pytest.approx(bare["z.txt"] * fz, rel=1e-9), bm25f
            assert got["m0.txt"] == pytest.approx(bare["m0.txt"] * fm, rel=1e-9), bm25f
            assert (fz > fm) if p else (fz == fm == 0.5**0.3)


def test_snippet_matches_follow_spec_changes():
    """find_matches caches per surface; a spec whose terms change must not reuse old answers."""
    from oimsearch.analysis import terms
    from oimsearch.snippets import MatchSpec, find_matches

    text = "Les migrants et l’OIM. Les réfugiés."
    spec = MatchSpec(stems=set(terms("migrants")))
    assert [text[s:e] for s, e, _ in find_matches(text, spec)] == ["migrants"]
    spec.stems |= set(terms("oim"))
    assert [text[s:e] for s, e, _ in find_matches(text, spec)] == ["migrants", "OIM"]
    spec.stems = set(terms("réfugié"))
    assert [text[s:e] for s, e, _ in find_matches(text, spec)] == ["réfugiés"]


def test_prefix_highlight_skips_the_elided_article():
    """`organ*` highlights Organisation in l’Organisation (the word, not the article)."""
    from oimsearch.snippets import MatchSpec, find_matches

    text = "Le rôle de l’Organisation et d'organismes."
    spans = [text[s:e] for s, e, _ in find_matches(text, MatchSpec(prefixes={"organ"}))]
    assert spans == ["Organisation", "organismes"]


def test_long_forms_analysed_at_index_time(fixture_index, monkeypatch):
    """The manifest holds every long form analysed; a query then analyses none of them and
    finds the same acronyms as from an older manifest."""
    from oimsearch import analysis
    from oimsearch.analysis import terms
    from oimsearch.searcher import Searcher

    with Searcher(fixture_index) as old:
        old.manifest.acronym_terms = {}
        want = old.search("République centrafricaine", snippets=False)
    with Searcher(fixture_index) as s:
        stored = s.manifest.acronym_terms
        forms = {f for fs in s.manifest.acronyms.values() for f in fs}
        assert forms and set(stored) == forms
        assert all(stored[f] == terms(f) for f in forms)

        def no_analysis(*a, **k):
            raise AssertionError("a long form was analysed at query time")

        monkeypatch.setattr(analysis, "iter_terms", no_analysis)
        got = s._long_forms(set(terms("République centrafricaine")))
        assert any(acr == "RCA" for pairs in got.values() for _f, acr in pairs)
        monkeypatch.undo()
        res = s.search("République centrafricaine", snippets=False)
        assert res.expansions == want.expansions and res.parsed_query == want.parsed_query
        assert [(h.id, h.score) for h in res.hits] == [(h.id, h.score) for h in want.hits]
        _check_long_form_runs(s)


def _jsonl_index(tmp_path, docs: list):
    """An index of ``docs`` (dicts with id, title, body), written as one JSONL file."""
    import json

    from oimsearch.indexer import index_paths

    corpus = tmp_path / "c"
    corpus.mkdir()
    (corpus / "docs.jsonl").write_text(
        "".join(json.dumps(d, ensure_ascii=False) + "\n" for d in docs), encoding="utf-8"
    )
    ix = tmp_path / "ix"
    index_paths([corpus], index_dir=ix)
    return ix


def _shared_title_corpus(tmp_path):
    """Three paragraphs of one article share its title; a fourth document has its own."""
    docs = [
        {
            "id": "p1",
            "title": "Port de Marseille",
            "body": "Les quais furent agrandis au siècle dernier.",
        },
        {
            "id": "p2",
            "title": "Port de Marseille",
            "body": "Le trafic des conteneurs a doublé en dix ans.",
        },
        {
            "id": "p3",
            "title": "port  de MARSEILLE",
            "body": "Les ferries partent vers la Corse chaque soir.",
        },
        {
            "id": "n1",
            "title": "Note de synthèse",
            "body": "Le port de commerce, premier port de la ville, recrute.",
        },
    ]
    return _jsonl_index(tmp_path, docs)


def test_title_weight_scaled_by_the_title_ratio(tmp_path):
    from oimsearch.schema import read_manifest
    from oimsearch.searcher import open_searcher

    ix = _shared_title_corpus(tmp_path)
    # two distinct titles (case and spacing do not count) over four documents
    assert read_manifest(ix).title_ratio == pytest.approx(0.5)
    base = RankingSettings(title_boost=2.0)
    with open_searcher(ix, settings=base) as s:
        eff = s.effective_settings()
        assert eff.title_boost == pytest.approx(1.0) and not eff.title_share
        assert s.effective_settings(eff) == eff  # applied once
        shared = s.search("port", snippets=False)
    with open_searcher(ix, settings=RankingSettings(title_boost=2.0, title_share=False)) as s:
        flat = s.search("port", snippets=False)
    # at full title weight the three paragraphs whose shared title says "port" come first;
    # at the weight their shared title deserves, the document about a port does
    assert [h.id for h in flat.hits][0] != "n1"
    assert [h.id for h in shared.hits][0] == "n1"
    assert {h.id for h in shared.hits} == {h.id for h in flat.hits}


def _question_corpus(tmp_path):
    docs = [
        {
            "id": "ferry",
            "title": "Horaires des ferries",
            "body": "Les ferries partent de Marseille vers la Corse chaque soir à vingt heures.",
        },
        {
            "id": "quand",
            "title": "Souvenirs",
            "body": "Quand il pleut, quand il vente, combien de fois pourquoi, et quoi encore.",
        },
        {
            "id": "bateau",
            "title": "Un bateau",
            "body": "Le bateau du soir part quand la marée le permet.",
        },
    ]
    return _jsonl_index(tmp_path, docs)


def test_question_words_are_dropped_from_free_words_only(tmp_path):
    from oimsearch.searcher import open_searcher

    ix = _question_corpus(tmp_path)
    q = "Quand partent les ferries de Marseille ?"
    with open_searcher(ix) as s:
        asked = s.search(q, snippets=False)
        # an interrogative alone, quoted, given a field, or with only stop words: searched
        alone = s.search("quand", snippets=False)
        quoted = s.search('"quand" ferries', snippets=False)
        fielded = s.search("body:quand ferries", snippets=False)
        only_stops = s.search("combien de combien", snippets=False)
    with open_searcher(ix, settings=RankingSettings(question_words=False)) as s:
        kept = s.search(q, snippets=False)
    assert "quand" not in asked.parsed_query and "quand" in kept.parsed_query
    assert [h.id for h in asked.hits] == ["ferry"]  # the documents saying only "quand" go
    assert {"quand", "bateau"} <= {h.id for h in kept.hits}
    assert {h.id for h in alone.hits} == {"quand", "bateau"}
    for res in (quoted, fielded):
        assert "quand" in res.parsed_query and {"ferry", "quand", "bateau"} <= {
            h.id for h in res.hits
        }
    assert [h.id for h in only_stops.hits] == ["quand"]


def test_query_syntax_is_whoosh_minus_quotes_ranges_and_boosts():
    """The parser's plugin set: fields, prefixes, phrases, groups, operators, fuzzy and -/+;
    no single quotes (l'OIM is a word), no [a TO b] ranges, no ^boosts (searched as words)."""
    from whoosh import query as Q

    from oimsearch.searcher import parse_user_query

    def leaves(text):
        return [(type(q).__name__, q.fieldname, getattr(q, "text", None) or getattr(q, "words", None))
                for q in parse_user_query(text).leaves()]  # fmt: skip

    assert leaves("l'OIM 'b c'") == [("Term", "text", "l'OIM"), ("Term", "text", "b"),
                                     ("Term", "text", "c")]  # fmt: skip
    assert leaves("[a TO c]") == [("Term", "text", "a"), ("Term", "text", "TO"),
                                  ("Term", "text", "c")]  # fmt: skip
    assert leaves("x^2") == [("Phrase", "text", ["x", "2"])]
    assert leaves("title:asile migr* trafic~") == [
        ("Term", "title", "asile"), ("Prefix", "text", "migr"), ("FuzzyTerm", "text", "trafic")
    ]  # fmt: skip
    tree = parse_user_query('"a b" AND c -x')
    assert isinstance(tree, Q.AndNot) and isinstance(tree.a, Q.And)
    assert leaves("porte-parole - x") == [("Phrase", "text", ["porte", "parole"]),
                                          ("Term", "text", "x")]  # fmt: skip


def test_dataclasses_have_their_own_docstrings():
    """A dataclass without a docstring gets one built from ``inspect.signature`` as its class
    is created: about 0.3 ms of every cold start for each of them."""
    import dataclasses
    import importlib

    mods = ["analysis", "ranking", "schema", "searcher", "snippets", "indexer", "sources"]
    found = []
    for name in mods:
        mod = importlib.import_module(f"oimsearch.{name}")
        for obj in vars(mod).values():
            if (
                isinstance(obj, type)
                and dataclasses.is_dataclass(obj)
                and obj.__module__ == mod.__name__
            ):
                found.append(obj)
                assert not (obj.__doc__ or "").startswith(obj.__name__ + "("), obj
    assert len(found) >= 10


_QUERY_PIECES = [
    "traite", "réfugiés", "l'OIM", "l’OIM", "aujourd'hui", "RCA", "3,5", "1.5", "x", "é", "ÉTÉ",
    "AND", "OR", "NOT", "ANDNOT", "ANDMAYBE", "TO", "and", "or", "not", "porte-parole", "-x",
    "+x", "x-", "migr*", "*", "trafic~", "title:asile", "body:", ":", '"', '"a b"', "(", ")",
    "x^2", "[a", "c]", "{a", "'", "’", "_", "n°", "e\u0301", "ﬁn", "COVID-19", "a/b", "#", "€",
    "'x", "x'", "a''b", "²", "½",
]  # fmt: skip


@settings(max_examples=400, deadline=None)
@given(
    st.lists(st.sampled_from(_QUERY_PIECES), min_size=1, max_size=6),
    st.lists(st.sampled_from([" ", "  ", "\t", "\u00a0"]), min_size=6, max_size=6),
    st.sampled_from(["or", "and"]),
)
def test_plain_words_tree_is_the_parsers_tree(pieces, spaces, operator):
    """The parser-free tree of a query of plain words is the one Whoosh's parser builds:
    same nodes, same order, same offsets; a query with any syntax goes to the parser."""
    from oimsearch.searcher import _parser, _plain_words_tree

    text = "".join(p + s for p, s in zip(pieces, spaces, strict=False)).strip()
    fast = _plain_words_tree(text, operator)
    if fast is None:
        return
    parsed = _parser(operator).parse(text)
    assert repr(fast) == repr(parsed)
    assert [vars(q) for q in fast.leaves()] == [vars(q) for q in parsed.leaves()]
    assert vars(fast).keys() == vars(parsed).keys()


def test_plain_words_tree_covers_ordinary_queries():
    from oimsearch.searcher import _plain_words_tree

    for q in ["traite RCA", "l’OIM réfugiés réfugiés", "titre de séjour étudiant", "1945"]:
        assert _plain_words_tree(q, "or") is not None, q
    for q in ["traite AND RCA", "traite -RCA", '"traite RCA"', "porte-parole", "migr*", "a:b"]:
        assert _plain_words_tree(q, "or") is None, q
    # letters and apostrophes that are not one whole token of the tokenizer
    for q in ["'", "x '", "'x", "x'", "a''b", "a\u0301"]:
        assert _plain_words_tree(q, "or") is None, q
