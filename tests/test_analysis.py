"""Tests of oimsearch.analysis: the 149 acceptance cases, the Whoosh contract, speed-path parity.

The acceptance file ``french-analysis-cases.tsv`` (a byte-exact copy of
``shared/docs/french-analysis-cases.tsv``) is driven line by line as §7 of
``french-analysis.md`` defines it.
"""

from __future__ import annotations

import json
import pickle
import re
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from whoosh.analysis import Token

from oimsearch import analysis
from oimsearch.analysis import (
    ANALYZER_VERSION,
    SPEC_TOKEN_PATTERN,
    STOP_WORDS,
    FrenchFilter,
    FrenchTokenizer,
    exact_analyzer,
    explain,
    fold_fragment,
    stem_word,
    stemmed_analyzer,
    terms,
)

ROOT = Path(__file__).resolve().parents[1]
CASES_PATH = Path(__file__).with_name("french-analysis-cases.tsv")
SHARED_CASES_PATH = ROOT.parent / "shared" / "docs" / "french-analysis-cases.tsv"

# Positional options Whoosh passes to analyzers, in every combination the tests care about.
OPTION_SETS: list[dict[str, Any]] = [
    {},
    {"positions": True},
    {"positions": True, "chars": True},
    {"positions": True, "chars": True, "removestops": False},
    {"positions": True, "chars": True, "keeporiginal": True},
    {"chars": True, "removestops": False, "start_char": 7},
    {"positions": True, "start_pos": 10, "start_char": 3, "mode": "index"},
    {"positions": True, "removestops": False, "keeporiginal": True, "mode": "query"},
]


def dump(tokens: Any) -> list[dict[str, Any]]:
    """Copy the public attributes of a token stream (the Token object is reused)."""
    keys = ("text", "stopped", "boost", "pos", "startchar", "endchar", "original")
    return [{k: getattr(t, k) for k in keys if hasattr(t, k)} for t in tokens]


# ---------------------------------------------------------------------------------------------
# The acceptance file (§7)
# ---------------------------------------------------------------------------------------------


def read_cases() -> list[Any]:
    """One pytest param per line: split on TAB only, no strip (fields hold NBSP, U+202F...)."""
    params = []
    with open(CASES_PATH, encoding="utf-8", newline="") as f:
        for lineno, line in enumerate(f, 1):
            if line.endswith("\n"):
                line = line[:-1]
            if line.endswith("\r"):
                line = line[:-1]
            fields = line.split("\t")
            assert len(fields) == 3, f"line {lineno}: {fields!r}"
            params.append(pytest.param(*fields, id=f"{lineno:03d}-{fields[0]}"))
    return params


CASES = read_cases()


def test_cases_file_is_complete_and_a_byte_exact_copy() -> None:
    assert len(CASES) == 149
    if SHARED_CASES_PATH.exists():
        assert CASES_PATH.read_bytes() == SHARED_CASES_PATH.read_bytes()


@pytest.mark.parametrize(("text", "prop", "note"), CASES)
def test_acceptance_case(text: str, prop: str, note: str) -> None:
    kind, sep, arg = prop.partition(":")
    assert sep, prop
    got = terms(text)
    if kind == "same":
        assert got == terms(arg), note
    elif kind == "differ":
        other = terms(arg)
        assert got and other, note
        assert got != other, note
    elif kind == "terms":
        assert got == (arg.split(" ") if arg else []), note
    elif kind == "keeps":
        unit = terms(arg)
        assert len(unit) == 1, (unit, note)
        assert unit[0] in got, (got, note)
    else:
        pytest.fail(f"unknown property {prop!r}")


# ---------------------------------------------------------------------------------------------
# The light stemmer, stop list, override table
# ---------------------------------------------------------------------------------------------

# Outputs of Savoy's light stemmer as described (the examples quoted in §2.1 of the spec, and
# one or more words per rule of the algorithm).
STEM_EXAMPLES = {
    "chevaux": "cheval",
    "cheval": "cheval",
    "hiboux": "hibou",
    "peaux": "peau",
    "chantés": "chant",
    "chanter": "chant",
    "chante": "chant",
    "baronnes": "baron",
    "administrativement": "administratif",
    "personnelle": "person",
    "personne": "person",
    "sonorisation": "sono",
    "ritualisation": "rituel",
    "créées": "cre",
    "investissement": "investi",
    "assourdissant": "asourdi",
    "pratiquement": "pratiqu",
    "justificatrice": "justifi",
    "justificateur": "justifi",
    "educatrice": "eduqu",
    "communicateur": "comuniqu",
    "accompagnatrice": "acompagn",
    "administrateur": "administr",
    "productrice": "product",
    "acheteuse": "achet",
    "acheteur": "achet",
    "poreuse": "poreu",
    "bijoutière": "bijouti",
    "abrasive": "abrasif",
    "folle": "fou",
    "complète": "complet",
    "aromatique": "aromat",
    "faiblesse": "faibl",
    "patinage": "patin",
    "nomination": "nomin",
    "disposition": "dispos",
    # norm(): repeated letters collapse, repeated digits do not (SOLR-3463)
    "1234555": "1234555",
    "abcdeff": "abcdef",
    "22hh00": "22h00",
    # the spec's own measurements (§3, §5, §6)
    "refugies": "refug",
    "refugi": "refugi",
    "migrants": "migrant",
    "migrations": "migr",
    "organisation": "organ",
    "frontex": "front",
    "mineurs": "mineu",
    "francais": "francai",
    "paris": "pari",
    "niger": "nig",
    "prud'hommes": "prud'hom",
    "presqu'ile": "presqu'il",
    "aujourd'hui": "aujourd'hui",
    "1,024": "1,024",
    "": "",
}


@pytest.mark.parametrize(("word", "stem"), sorted(STEM_EXAMPLES.items()))
def test_stem_word(word: str, stem: str) -> None:
    assert stem_word(word) == stem


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet="abcdefilmnoqrstuvxzéèêàç'", max_size=16))
def test_stem_shortcut_is_exact(word: str) -> None:
    """The ``_STEM_ENDINGS`` pre-check never skips a rule that would have applied."""
    assert stem_word(word) == analysis._stem_rules(word)


@settings(max_examples=500, deadline=None)
@given(st.text(alphabet="abcdeéèfilmnoqrstuvxzàçœ'.,019", min_size=1, max_size=16))
def test_may_stem_to_never_misses_a_term(word: str) -> None:
    """Snippets skip the stemmer when ``may_stem_to`` says no: it must say yes whenever a
    term of the word has the head asked for (the stemmer keeps a word's first two
    characters, except through the override table or a doubled first letter)."""
    for surface in (word, word.upper(), "l'" + word):
        found, _elided = analysis.traced_terms(surface)
        _exact, folded, _ = analysis.surface_keys(surface)
        for term in found:
            assert analysis.may_stem_to(folded, {analysis.term_head(term)}), (surface, term)


def test_may_stem_to_on_overrides_and_rule_examples() -> None:
    words = [
        *analysis.STEM_OVERRIDES,
        *"""aarhus oolithes ffolle folle molles chevaux anneaux justificatrice educatrice
        administrativement investissement deuxième complètes ïle ritualisation 11e 1.5
        aujourd'hui œuvres ex x l'a""".split(),
    ]
    for w in words:
        found, _ = analysis.traced_terms(w)
        folded = analysis.surface_keys(w)[1]
        for term in found:
            assert analysis.may_stem_to(folded, {analysis.term_head(term)}), (w, term)
    # and it does say no: the point of the test
    assert not analysis.may_stem_to("migrations", {"re", "oi"})
    assert analysis.may_stem_to("migrations", {"mi"})


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet="abcdeéÉfilLmnoOqrstuvxzàçœ'’`\u00ad.,019", min_size=1, max_size=16))
def test_surface_keys_agree_with_traced_terms(surface: str) -> None:
    exact, folded, elided = analysis.surface_keys(surface)
    assert ([exact] if exact else []) == analysis.traced_terms(surface, exact=True)[0]
    assert elided == analysis.traced_terms(surface)[1]
    assert folded == analysis.fold_fragment(surface)


def test_stop_list() -> None:
    assert len(analysis.SNOWBALL_FRENCH_STOP_LIST) == 154
    assert len(set(analysis.SNOWBALL_FRENCH_STOP_LIST)) == 154
    # folded: à -> a, même -> meme, celà == cela, eût == eut
    assert {"a", "meme", "les", "ils", "cette", "y", "qu", "l", "etee"} <= STOP_WORDS
    assert len(STOP_WORDS) == 152
    # homonyms deliberately kept (§2.2), and no English list (T15)
    for word in ("est", "ete", "son", "sommes", "avions", "elles", "the", "of", "and", "in"):
        assert word not in STOP_WORDS


def test_overrides_skip_the_stemmer() -> None:
    assert terms("Organisations Frontex traites mineures Françaises") == [
        "organis",
        "frontex",
        "traite",
        "mineur",
        "francais",
    ]
    assert terms("traitement") == ["trait"]


# ---------------------------------------------------------------------------------------------
# Tokenizer and offsets
# ---------------------------------------------------------------------------------------------


def test_offsets_point_into_the_raw_text() -> None:
    text = "la ﬁn des de\u0301place\u0301s\u00a0: l’OIM, « 1,024 »\u202f!"
    got = [
        (t.text, text[t.startchar : t.endchar])
        for t in stemmed_analyzer()(text, positions=True, chars=True)
    ]
    assert got == [
        ("fin", "ﬁn"),
        ("deplac", "de\u0301place\u0301s"),
        ("oim", "l’OIM"),
        ("1,024", "1,024"),
    ]
    exact = [
        (t.text, text[t.startchar : t.endchar])
        for t in exact_analyzer()(text, positions=True, chars=True)
    ]
    assert exact == [
        ("la", "la"),
        ("fin", "ﬁn"),
        ("des", "des"),
        ("déplacés", "de\u0301place\u0301s"),
        ("oim", "l’OIM"),
        ("1,024", "1,024"),
    ]


def test_tokenizer_alone_yields_raw_surfaces() -> None:
    text = "mi\u00adgrants Côte-d’Ivoire chamon@iom.int 900\u00a0000 l’"
    tokens = dump(FrenchTokenizer()(text, positions=True, chars=True, keeporiginal=True))
    assert [t["text"] for t in tokens] == [
        "mi\u00adgrants",
        "Côte",
        "d’Ivoire",
        "chamon",
        "iom",
        "int",
        "900",
        "000",
        "l",
    ]
    assert [t["pos"] for t in tokens] == list(range(9))
    for t in tokens:
        assert text[t["startchar"] : t["endchar"]] == t["text"] == t["original"]


def test_tokenizer_reuses_one_token_object() -> None:
    seen = {id(t) for t in FrenchTokenizer()("un deux trois")}
    assert len(seen) == 1
    seen = {id(t) for t in stemmed_analyzer()("migrants disparus secourus")}
    assert len(seen) == 1


def test_start_char_and_start_pos() -> None:
    toks = dump(
        stemmed_analyzer()("Les migrants", positions=True, chars=True, start_pos=4, start_char=100)
    )
    assert toks == [
        {
            "text": "migrant",
            "stopped": False,
            "boost": 1.0,
            "pos": 4,
            "startchar": 104,
            "endchar": 112,
        }
    ]


def test_explain_reports_each_step() -> None:
    text = "L’OIM forme les réfugiés ½ ﬁn Frontex"
    rows = explain(text)
    for r in rows:
        assert text[r.start : r.end] == r.surface
    summary = [(r.position, r.surface, r.term, r.steps) for r in rows]
    assert summary == [
        (0, "L’OIM", "oim", ["normalized", "elided:l", "folded"]),
        (1, "forme", "form", ["stemmed"]),
        (None, "les", None, ["stopped"]),
        (2, "réfugiés", "refug", ["folded", "stemmed"]),
        (3, "½", "1", ["normalized", "folded", "split"]),
        (4, "½", "2", ["normalized", "folded", "split"]),
        (5, "ﬁn", "fin", ["normalized"]),
        (6, "Frontex", "frontex", ["folded", "override"]),
    ]
    exact = [(r.position, r.term, r.steps) for r in explain("L’OIM aide les réfugiés", True)]
    assert exact == [
        (0, "oim", ["normalized", "elided:l", "folded"]),
        (1, "aide", []),
        (2, "les", []),
        (3, "réfugiés", []),
    ]


@pytest.mark.parametrize("exact", [False, True])
@pytest.mark.parametrize(
    "text",
    [
        "Jusqu’à présent, l’OIM a recensé 1,024 migrants ½ disparus en Méditerranée.",
        "de\u0301place\u0301s mi\u00adgrants ŉ l´OIM « ﬁn » 北京 Ǆ",
        "",
    ],
)
def test_explain_agrees_with_the_analyzer(text: str, exact: bool) -> None:
    rows = [r for r in explain(text, exact) if r.term is not None]
    assert [r.term for r in rows] == terms(text, exact)
    assert [r.position for r in rows] == list(range(len(rows)))


# ---------------------------------------------------------------------------------------------
# Normalisation details
# ---------------------------------------------------------------------------------------------


def test_apostrophe_lookalikes_and_nfkc_traps() -> None:
    # U+00B4 becomes "space + combining acute" under NFKC: mapped before NFKC, so elided.
    assert terms("l´OIM") == terms("l'OIM") == ["oim"]
    assert terms("l`OIM") == terms("l′OIM") == terms("l‛OIM") == ["oim"]
    # ŉ (U+0149) decomposes to ʼn under NFKC; the look-alike it creates is mapped too.
    assert terms("\u0149", exact=True) == ["'n"]
    # an ignorable between a letter and its combining mark does not block composition
    assert terms("de\u00ad\u0301place\u0301s") == terms("déplacés")


def test_exact_twin() -> None:
    assert terms("Les Réfugiées DÉPLACÉES, L’Œuvre d’aujourd’hui", exact=True) == [
        "les",
        "réfugiées",
        "déplacées",
        "œuvre",
        "aujourd'hui",
    ]
    assert terms("de\u0301place\u0301s", exact=True) == terms("déplacés", exact=True)
    assert terms("traité", exact=True) != terms("traite", exact=True)
    assert terms("pêche", exact=True) != terms("péché", exact=True)
    assert terms("STRASSE Straße", exact=True) == ["strasse", "strasse"]  # casefold
    assert terms("1,024 n° 3", exact=True) == ["1,024", "n", "3"]


def test_fold_fragment() -> None:
    assert fold_fragment("réfugi") == "refugi"
    assert fold_fragment("DÉPLACÉS") == "deplaces"  # no stemming
    assert fold_fragment("L’Œuvre") == "oeuvre"
    assert fold_fragment("les") == "les"  # no stop list
    assert fold_fragment("réf*gié?") == "ref*gie?"  # wildcard syntax kept
    assert fold_fragment("l'") == "l'"  # elision never leaves an empty word
    assert fold_fragment("L’Œuvre", exact=True) == "œuvre"
    assert fold_fragment("de\u0301place\u0301", exact=True) == "déplacé"


@pytest.mark.parametrize(
    ("analyzer", "fragment", "expected"),
    [
        (stemmed_analyzer, "réfugi", ["refugi"]),
        (stemmed_analyzer, "DÉPLACÉS", ["deplaces"]),
        (stemmed_analyzer, "les", ["les"]),
        (stemmed_analyzer, "l’OIM", ["oim"]),
        (stemmed_analyzer, "«", ["<<"]),
        (stemmed_analyzer, "", []),
        (exact_analyzer, "Réfugi", ["réfugi"]),
        (exact_analyzer, "l’Œuv", ["œuv"]),
    ],
)
def test_tokenize_false_is_a_fragment(analyzer: Any, fragment: str, expected: list[str]) -> None:
    toks = dump(analyzer()(fragment, tokenize=False, removestops=False, positions=True, chars=True))
    assert [t["text"] for t in toks] == expected
    for t in toks:
        assert (t["pos"], t["startchar"], t["endchar"], t["stopped"]) == (
            0,
            0,
            len(fragment),
            False,
        )


def test_query_parser_prefix_and_wildcard() -> None:
    from whoosh import query
    from whoosh.fields import TEXT, Schema
    from whoosh.qparser import QueryParser

    schema = Schema(body=TEXT(analyzer=stemmed_analyzer()), exact=TEXT(analyzer=exact_analyzer()))
    qp = QueryParser("body", schema)
    assert qp.parse("réfugi*") == query.Prefix("body", "refugi")
    assert qp.parse("DÉPLACÉS*") == query.Prefix("body", "deplaces")
    assert qp.parse("les*") == query.Prefix("body", "les")
    assert qp.parse("réf*gié?") == query.Wildcard("body", "ref*gie?")
    assert qp.parse("exact:Réfugi*") == query.Prefix("exact", "réfugi")
    assert qp.parse("réfugiées") == query.Term("body", "refug")
    assert qp.parse("les") == query.NullQuery


# ---------------------------------------------------------------------------------------------
# Whoosh stop-word contract
# ---------------------------------------------------------------------------------------------


def test_positions_are_renumbered_across_stop_words() -> None:
    toks = dump(
        stemmed_analyzer()("Les migrants de la Méditerranée et les réfugiés", positions=True)
    )
    assert [(t["text"], t["pos"]) for t in toks] == [
        ("migrant", 0),
        ("mediteran", 1),
        ("refug", 2),
    ]


def test_removestops_false_marks_stop_words() -> None:
    text = "Les migrants de la Méditerranée ½"
    kept = dump(stemmed_analyzer()(text, positions=True, chars=True))
    marked = dump(stemmed_analyzer()(text, positions=True, chars=True, removestops=False))
    assert [(t["text"], t["stopped"], t["pos"]) for t in marked] == [
        ("les", True, 0),
        ("migrant", False, 0),
        ("de", True, 1),
        ("la", True, 1),
        ("mediteran", False, 1),
        ("1", False, 2),
        ("2", False, 3),
    ]
    # the kept terms are the same tokens, positions and offsets as with removestops=True
    assert [t for t in marked if not t["stopped"]] == kept
    for t in marked:
        assert text[t["startchar"] : t["endchar"]] != ""
    # the exact twin has no stop words at all
    assert [t.stopped for t in exact_analyzer()(text, removestops=False)] == [False] * 6


def test_highlighting_uses_raw_offsets() -> None:
    """Whoosh re-analyses stored text with removestops=False; offsets must be the raw ones."""
    from whoosh.highlight import UppercaseFormatter, WholeFragmenter, highlight

    text = "Aide aux réfugiées de\u0301place\u0301es à l’Est."
    out = highlight(
        text, {"refug", "deplac"}, stemmed_analyzer(), WholeFragmenter(), UppercaseFormatter()
    )
    assert out == "Aide aux RÉFUGIÉES DE\u0301PLACE\u0301ES à l’Est."


# ---------------------------------------------------------------------------------------------
# Pickling (Whoosh stores the analyzers in the index)
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("make", [stemmed_analyzer, exact_analyzer])
def test_pickle_round_trip(make: Any) -> None:
    analyzer = make()
    data = pickle.dumps(analyzer)
    assert b"oimsearch.analysis" in data
    assert b"FrenchTokenizer" in data and b"FrenchFilter" in data
    again = pickle.loads(data)
    assert again == analyzer
    text = "L’OIM aide les réfugiés de\u0301place\u0301s"
    assert dump(again(text, positions=True, chars=True)) == dump(
        analyzer(text, positions=True, chars=True)
    )


def test_old_pickled_filter_without_attributes_still_works() -> None:
    f = FrenchFilter.__new__(FrenchFilter)  # what unpickling an attribute-less state gives
    assert [t.text for t in f(FrenchTokenizer()("Les réfugiés"))] == ["refug"]


def test_analyzer_version() -> None:
    assert ANALYZER_VERSION == "fr-light-1"


def test_index_reopened_in_a_new_process(tmp_path: Path) -> None:
    from whoosh import index
    from whoosh.fields import ID, TEXT, Schema

    schema = Schema(
        id=ID(stored=True, unique=True),
        body=TEXT(analyzer=stemmed_analyzer(), stored=True),
        body_exact=TEXT(analyzer=exact_analyzer(), phrase=False),
    )
    ix = index.create_in(str(tmp_path), schema)
    with ix.writer() as w:
        w.add_document(
            id="a",
            body="L’OIM a secouru 1,024 migrants disparus ; la traite des personnes recule.",
            body_exact="L’OIM a secouru 1,024 migrants disparus ; la traite des personnes.",
        )
        w.add_document(id="b", body="Le traité de Paris.", body_exact="Le traité de Paris.")
    code = textwrap.dedent(
        """
        import json, sys
        sys.path.insert(0, sys.argv[2])
        from whoosh import index
        from whoosh.qparser import MultifieldParser, QueryParser
        ix = index.open_dir(sys.argv[1])
        out = {"analyzer": type(ix.schema["body"].analyzer.items[1]).__module__}
        with ix.searcher() as s:
            for q in ["secourus", "MIGRANT", "disparu", "1,024", "l'oim", "\\"traite personnes\\"",
                      "traité", "traitement", "DISPAR*", "l’organis*", "refug*"]:
                parsed = QueryParser("body", ix.schema).parse(q)
                out[q] = sorted(hit["id"] for hit in s.search(parsed))
            mf = MultifieldParser(["body", "body_exact"], ix.schema,
                                  fieldboosts={"body_exact": 1.5})
            out["mf"] = [hit["id"] for hit in s.search(mf.parse("traité"))]
        print(json.dumps(out))
        """
    )
    proc = subprocess.run(
        [sys.executable, "-c", code, str(tmp_path), str(ROOT)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert out.pop("analyzer") == "oimsearch.analysis"
    assert out == {
        "secourus": ["a"],
        "MIGRANT": ["a"],
        "disparu": ["a"],
        "1,024": ["a"],
        "l'oim": ["a"],
        '"traite personnes"': ["a"],  # phrase across the removed stop word "des"
        "traité": ["a", "b"],  # folding conflates (accepted, §6)
        "traitement": [],
        "DISPAR*": ["a"],  # prefix text is folded, not stemmed
        "l’organis*": [],  # the document has no word starting with organis
        "refug*": [],
        "mf": ["b", "a"],  # the exact twin ranks the accented match first
    }


# ---------------------------------------------------------------------------------------------
# Speed paths: fused loop == generic chain; caches
# ---------------------------------------------------------------------------------------------

SAMPLE = (
    "L’Organisation internationale pour les migrations (OIM) a secouru 1,024 migrants "
    "de\u0301place\u0301s ; jusqu’à ½ des réfugiées d’aujourd’hui — « Côte-d’Ivoire »\u202f! "
    "mi\u00adgrants ŉ l´OIM ﬁn 北京 n° 3 chamon@iom.int"
)


@pytest.mark.parametrize("exact", [False, True])
@pytest.mark.parametrize("options", OPTION_SETS, ids=lambda o: ",".join(sorted(o)) or "none")
def test_fused_path_equals_generic_chain(exact: bool, options: dict[str, Any]) -> None:
    fused = dump(FrenchFilter(exact)(FrenchTokenizer()(SAMPLE, **options)))
    # iter() hides the tokenizer's stream: the filter then runs its generic per-token loop
    generic = dump(FrenchFilter(exact)(iter(FrenchTokenizer()(SAMPLE, **options))))
    assert fused == generic
    assert fused, "sample produced no tokens"


def test_cache_limit_clears_and_results_stay_right(monkeypatch: pytest.MonkeyPatch) -> None:
    expected = terms(SAMPLE)
    analysis.clear_caches()
    monkeypatch.setattr(analysis, "CACHE_LIMIT", 3)
    assert terms(SAMPLE) == expected
    assert terms(SAMPLE) == expected
    assert len(analysis._STEMMED_CACHE) <= 3
    assert terms(SAMPLE, exact=True) and len(analysis._EXACT_CACHE) <= 3


# ---------------------------------------------------------------------------------------------
# Properties
# ---------------------------------------------------------------------------------------------

FRENCHISH = st.text(
    alphabet=st.sampled_from(
        list("aeilnorstuxz AEOLDJQ0123456789,.-_@/«»;:!?")
        + list("éèêàçôûîïœŒæÉÀ")
        + ["\u00a0", "\u202f", "\u2011", "\u2014", "'", "’", "ʼ", "‘", "´", "`", "′"]
        + ["\u0301", "\u0302", "\u00ad", "\u200b", "\u2060", "\ufeff", "ﬁ", "½", "²", "ŉ"]
    ),
    max_size=60,
)
_SPEC_RE = re.compile(SPEC_TOKEN_PATTERN)


@settings(max_examples=300, deadline=None)
@given(FRENCHISH)
def test_token_regex_matches_the_spec_regex(text: str) -> None:
    ours = [m.span() for m in analysis._TOKEN_RE.finditer(text)]
    assert ours == [m.span() for m in _SPEC_RE.finditer(text)]


@settings(max_examples=200, deadline=None)
@given(FRENCHISH)
def test_offsets_in_bounds_and_increasing(text: str) -> None:
    for make in (stemmed_analyzer, exact_analyzer):
        last_start, last_end = 0, 0
        for t in make()(text, chars=True, removestops=False):
            assert 0 <= t.startchar < t.endchar <= len(text)
            assert t.startchar >= last_end or t.startchar == last_start  # split parts share
            last_start, last_end = t.startchar, t.endchar


@settings(max_examples=200, deadline=None)
@given(FRENCHISH)
def test_analysis_is_deterministic_and_well_formed(text: str) -> None:
    first = terms(text)
    analysis.clear_caches()
    assert terms(text) == first == terms(text)
    for term in first:
        assert term and re.fullmatch(r"[a-z0-9',.]+", term), term
    assert terms(text, exact=True) == terms(text, exact=True)


@settings(max_examples=200, deadline=None)
@given(FRENCHISH, st.sampled_from(OPTION_SETS), st.booleans())
def test_fused_path_equals_generic_chain_property(
    text: str, options: dict[str, Any], exact: bool
) -> None:
    fused = dump(FrenchFilter(exact)(FrenchTokenizer()(text, **options)))
    generic = dump(FrenchFilter(exact)(iter(FrenchTokenizer()(text, **options))))
    assert fused == generic


def test_filter_accepts_other_token_streams() -> None:
    from whoosh.analysis import RegexTokenizer

    chain = RegexTokenizer(r"\S+") | FrenchFilter()
    assert [t.text for t in chain("L’OIM les réfugiés")] == ["oim", "refug"]
    assert list(FrenchFilter()(iter([]))) == []
    tok = Token(positions=True)
    tok.text, tok.pos = "migrantes", 3
    assert [(t.text, t.pos) for t in FrenchFilter()([tok])] == [("migrant", 3)]


@pytest.mark.parametrize("exact", [False, True])
def test_token_spans_and_traced_terms_are_explain_rows(exact):
    """The snippet path (token_spans + traced_terms per surface) analyses like explain()."""
    from oimsearch.analysis import explain, token_spans, traced_terms

    texts = [
        "L’OIM et l'Organisation internationale pour les migrations (OIM) : ½ tonne, 1,024 km.",
        "Qu'il vienne jusqu’à l´OIM — œuvre, Straße, Привет, 東京; ﬁn de la réunion",
        "Cafe\u0301 soft\u00adhyphen zero\u200bwidth d'\u00e9t\u00e9 au des à",
        "",
    ]
    for text in texts:
        rows: dict[tuple[int, int, str], list] = {}
        for r in explain(text, exact=exact):
            row = rows.setdefault((r.start, r.end, r.surface), [[], False])
            if r.term:
                row[0].append(r.term)
            row[1] = row[1] or any(s.startswith("elided") for s in r.steps)
        assert list(token_spans(text)) == list(rows)
        for (_start, _end, surface), (want, elided) in rows.items():
            assert traced_terms(surface, exact=exact) == (want, elided)
