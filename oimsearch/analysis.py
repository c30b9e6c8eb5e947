"""French text analysis for Whoosh: tokenizer, stemmed chain and its exact twin.

Implements the analyzer of ``shared/docs/french-analysis.md`` (§0 and §5); every step below
names the trap (T1-T22 of §1 of that document) it is there to avoid.

Pipeline, per token of the raw text:

1. :class:`FrenchTokenizer` cuts the *raw* text with one regex, so ``startchar``/``endchar``
   always point into the text the user stored (highlighting stays right for NFD text,
   ligatures, NBSP, curly apostrophes). Combining marks, the soft hyphen, zero-width
   characters and an apostrophe followed by a letter are word-internal (T4, T6, T7); digits
   with internal ``,``/``.`` stay one token (``1,024``).
2. :class:`FrenchFilter` maps each surface to its term(s): normalise (drop ignorables, map
   apostrophe look-alikes, NFKC) → elide the 13 articles at the first apostrophe,
   case-insensitively (T1, T2, T3, T5) → ``casefold`` → ``unidecode`` + lower on the token
   only (T8, T9) → split into ``[a-z0-9]`` runs → Snowball French stop list, folded (T14-T17)
   → five-entry override table (T18-T20) → Savoy's light stemmer on the folded word (T10-T13).
   ``FrenchFilter(exact=True)`` stops after ``casefold``: no folding, stop words or stemming.

The per-surface work is a pure function of the surface, so it is memoised in module-level
dicts (bounded, cleared past :data:`CACHE_LIMIT` entries); the hot loop is one dict look-up
per token. Nothing compiled or cached lives on the instances: Whoosh pickles the analyzers
into the index (``whoosh-notes.md`` T2), so the class names and module path are frozen and
instances only carry plain attributes.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from itertools import chain
from typing import Any

from unidecode import unidecode
from whoosh.analysis import Filter, Token, Tokenizer
from whoosh.analysis.analyzers import CompositeAnalyzer

__all__ = [
    "ANALYZER_VERSION",
    "ARTICLES",
    "CACHE_LIMIT",
    "STEM_OVERRIDES",
    "STOP_WORDS",
    "SPEC_TOKEN_PATTERN",
    "TOKEN_PATTERN",
    "FrenchFilter",
    "FrenchTokenizer",
    "TokenReport",
    "clear_caches",
    "exact_analyzer",
    "explain",
    "fold_fragment",
    "iter_terms",
    "stem_word",
    "stemmed_analyzer",
    "terms",
]

#: Recorded in the index manifest: bump it whenever a change alters any emitted term.
ANALYZER_VERSION: str = "fr-light-1"

# ---------------------------------------------------------------------------------------------
# Character classes and tables
# ---------------------------------------------------------------------------------------------

#: Invisible characters deleted inside a word: soft hyphen, ZWSP, ZWNJ, ZWJ, word joiner, BOM.
IGNORABLES = "\u00ad\u200b\u200c\u200d\u2060\ufeff"

#: Characters used as an apostrophe in real text; all are mapped to U+0027.
APOSTROPHE_LOOKALIKES = "\u2019\u02bc\u2018\u201b\u2032\u00b4\u0060"

_WORD_INTERNAL_MARKS = "\u0300-\u036f\u00ad\u200b-\u200d\u2060\ufeff"
_TOKEN_APOSTROPHES = "'" + APOSTROPHE_LOOKALIKES

#: Tokenizer regex of §5 of the spec, verbatim (kept for reference and for the tests).
SPEC_TOKEN_PATTERN = (
    r"\d+(?:[.,]\d+)+"
    rf"|[^\W_](?:[^\W_]|[{_WORD_INTERNAL_MARKS}]|[{_TOKEN_APOSTROPHES}](?=[^\W_]))*"
)

#: The regex actually used: same matches as :data:`SPEC_TOKEN_PATTERN` (a hypothesis test
#: compares them), rewritten for speed. Both spec branches start with a letter or digit, so the
#: pattern starts with the single class ``[^\W_]`` (``re`` then skips non-word characters
#: with a fast scan instead of trying the alternation at every offset); the number branch
#: follows only when that first character is a digit (``(?<=\d)``), and is still tried
#: first; the word branch loops once per *run* of letters instead of once per letter. The
#: three classes (letters/digits, marks, apostrophes) are disjoint and nothing follows the
#: loop, so there is no backtracking and the greedy match is the spec's.
TOKEN_PATTERN = (
    r"[^\W_](?:(?<=\d)\d*(?:[.,]\d+)+"
    rf"|[^\W_]*(?:(?:[{_WORD_INTERNAL_MARKS}]+|[{_TOKEN_APOSTROPHES}](?=[^\W_]))[^\W_]*)*)"
)
_TOKEN_RE = re.compile(TOKEN_PATTERN)

# One str.translate pass: delete ignorables, map apostrophe look-alikes to U+0027.
_NORMALISE_TABLE = str.maketrans(
    {**{c: None for c in IGNORABLES}, **{c: "'" for c in APOSTROPHE_LOOKALIKES}}
)

#: Lucene's French elision articles (``FrenchAnalyzer.DEFAULT_ARTICLES``), matched case-folded.
ARTICLES = frozenset(
    ["l", "m", "t", "qu", "n", "s", "j", "d", "c", "jusqu", "quoiqu", "lorsqu", "puisqu"]
)
_LONGEST_ARTICLE = max(len(a) for a in ARTICLES)

# A folded token may hold punctuation or spaces that unidecode produced (« → <<, ½ → 1/2):
# only these parts become terms.
_PART_RE = re.compile(r"[a-z0-9]+(?:[',.][a-z0-9]+)*")

# The Snowball French stop list (snowballstem.org/algorithms/french/stop.txt, BSD; = Lucene
# french_stop.txt = Elasticsearch _french_), 154 entries, as listed in §2.2 of the spec.
SNOWBALL_FRENCH_STOP_LIST: tuple[str, ...] = tuple(
    """
    au aux avec ce ces dans de des du elle en et eux il je la le leur lui ma mais me même mes
    moi mon ne nos notre nous on ou par pas pour qu que qui sa se ses sur ta te tes toi ton tu
    un une vos votre vous c d j l à m n s t y
    étée étées étant suis es êtes sont serai seras sera serons serez seront serais serait
    serions seriez seraient étais était étions étiez étaient fus fut fûmes fûtes furent sois
    soit soyons soyez soient fusse fusses fussions fussiez fussent
    ayant eu eue eues eus ai avons avez ont aurai aurons aurez auront aurais aurait aurions
    auriez auraient avais avait aviez avaient eut eûmes eûtes eurent aie aies ait ayons ayez
    aient eusse eusses eût eussions eussiez eussent
    ceci cela celà cet cette ici ils les leurs quel quels quelle quelles sans soi
    """.split()
)

#: Stem-override table (§5), keyed by the folded word; a hit skips the stemmer.
STEM_OVERRIDES: dict[str, str] = {
    "organisation": "organis",
    "organisations": "organis",
    "frontex": "frontex",
    "traite": "traite",
    "traites": "traite",
    "mineur": "mineur",
    "mineure": "mineur",
    "mineurs": "mineur",
    "mineures": "mineur",
    "francais": "francais",
    "francaise": "francais",
    "francaises": "francais",
}

#: Caches are cleared (not evicted one by one) when they grow past this many surfaces.
CACHE_LIMIT = 500_000

# ---------------------------------------------------------------------------------------------
# Per-token steps (pure functions of the token surface)
# ---------------------------------------------------------------------------------------------


def _normalise(surface: str) -> str:
    """Delete ignorables, map apostrophe look-alikes to ``'``, then NFKC.

    Deviation in order from the spec's "NFKC → ignorables → apostrophes", same result on
    ordinary text but safer: NFKC turns U+00B4 ``´`` into a space plus a combining accent
    (so ``l´OIM`` would never be elided), and a soft hyphen between a letter and its
    combining mark would stop NFKC from composing them. The mapping is applied again after
    NFKC because NFKC can *create* a look-alike (``ŉ`` → ``ʼn``).
    """
    if surface.isascii():  # fast path: the only ASCII character to map is the backtick
        return surface.replace("`", "'") if "`" in surface else surface
    text = surface.translate(_NORMALISE_TABLE)
    if not text.isascii():
        composed = unicodedata.normalize("NFKC", text)
        if composed != text:
            text = composed.translate(_NORMALISE_TABLE)
    return text


def _elide(text: str) -> tuple[str, str | None]:
    """Strip a leading article at the first apostrophe; return (rest, article or None).

    Case-insensitive (``L’OIM``, ``JUSQU’EN``: T1) and only at the *first* apostrophe, so
    ``d’aujourd’hui`` → ``aujourd'hui`` while ``aujourd'hui``, ``presqu'île``, ``prud'homme``
    stay whole (``aujourd``, ``presqu`` are not articles: T4). Never leaves an empty word.
    """
    i = text.find("'")
    if 0 < i <= _LONGEST_ARTICLE and i < len(text) - 1:
        article = text[:i].casefold()
        if article in ARTICLES:
            return text[i + 1 :], article
    return text, None


def _fold(text: str) -> str:
    """``casefold`` then ``unidecode`` then ``lower``, on one token only.

    ``unidecode`` folds ligatures and letters that accent maps miss (``œ``, ``æ``, ``ß``: T9);
    applied to a token, never to the raw text, it cannot invent words from symbols (T8).
    """
    text = text.casefold()
    if not text.isascii():
        text = text.translate(_LATIN_UNIDECODE)
        if not text.isascii():
            text = unidecode(text)
        text = text.lower()
    return text


# unidecode maps one character at a time, so translating the Latin letters first with
# unidecode's own output for each is the same function, without unidecode's per-character
# Python loop for the accented words of ordinary French text (it only speeds up cache misses).
# The table is filled on demand (a code point's entry is computed the first time a token
# holds it): building all 464 entries cost ~2 ms at every start of the CLI. A code point
# outside the range maps to itself, which str.translate treats like a missing entry.
class _LatinUnidecode(dict):
    def __missing__(self, c: int) -> str:
        value = unidecode(chr(c)) if 0x80 <= c < 0x250 else chr(c)
        self[c] = value
        return value


_LATIN_UNIDECODE = _LatinUnidecode()


#: The stop list folded exactly like tokens are (``à`` → ``a``, ``même`` → ``meme``), so the
#: comparison with a folded token is symmetric between index and query (T17).
STOP_WORDS: frozenset[str] = frozenset(_fold(w) for w in SNOWBALL_FRENCH_STOP_LIST)


# --- Savoy's light French stemmer ------------------------------------------------------------
#
# Written for oimsearch from the description of the "UniNE" light stemmer in:
#   J. Savoy, "Light stemming approaches for the French, Portuguese, German and Hungarian
#   languages", Proceedings of the 2006 ACM Symposium on Applied Computing (ACM SAC 2006),
#   pp. 1031-1035,
# in the variant that Lucene ships as FrenchLightStemmer (summarised in §2.1 of
# shared/docs/french-analysis.md). Behaviour checked against the published examples
# (chevaux → cheval, administrativement → administratif, créées → cre, ...).

_NORM_ACCENTS = str.maketrans("àáâôèéêùûîç", "aaaoeeeuuic")
_REPEATED_LETTER_RE = re.compile(r"([^\W\d_])\1+")


def _stem_norm(word: str) -> str:
    """Final normalisation of the light stemmer (Savoy's ``norm``).

    For words longer than 4 characters: fold the accents the algorithm knows (not
    ``ï ö ä ë ü``: T13) and collapse runs of a repeated *letter* (digits are kept:
    ``1234555`` must not lose a 5). Then drop a final ``-ie``, then a final ``r``, up to two
    final ``e`` and a final doubled letter, each only while the word is longer than 4.
    """
    if len(word) > 4:
        word = word.translate(_NORM_ACCENTS)
        word = _REPEATED_LETTER_RE.sub(r"\1", word)
    if len(word) > 4 and word.endswith("ie"):
        word = word[:-2]
    if len(word) > 4:
        if word[-1] == "r":
            word = word[:-1]
        if word[-1] == "e":
            word = word[:-1]
        if word[-1] == "e":
            word = word[:-1]
        if word[-1] == word[-2] and word[-1].isalpha():
            word = word[:-1]
    return word


# Every ending that can make step 1 or step 2 below do something (a shortcut for speed).
_STEM_ENDINGS = (
    "x",
    "s",
    "ment",
    "issant",
    "trice",
    "teur",
    "euse",
    "ère",
    "ive",
    "ième",
    "olle",
    "nnel",
    "nnelle",
    "ète",
    "ique",
    "esse",
    "inage",
    "ation",
    "ition",
)


def stem_word(word: str) -> str:
    """Savoy's light French stemmer alone (no override table), on one lower-case word.

    Step 1 removes the plural: ``-aux`` → ``-al`` (but not ``-eaux``) for words longer than
    5, then a final ``x``, then a final ``s``. Step 2 applies the first matching suffix rule
    (each with its own minimum length), most of them rewriting the suffix to the verb or
    masculine form (``-atrice``/``-ateur`` → ``-er``, ``-euse`` → ``-eu``, ``-ive`` → ``-if``,
    ``-isation`` → ``""``...). Step 3 is :func:`_stem_norm`. In oimsearch the input is already
    folded, so the accent-keyed rules (``-ère``, ``-ième``, ``-ète``) never fire: that is the
    accepted cost of folding first (T11, T13).
    """
    if not word.endswith(_STEM_ENDINGS):  # no rule applies: only the final normalisation
        return _stem_norm(word)
    return _stem_rules(word)


def _stem_rules(word: str) -> str:
    """:func:`stem_word` without its shortcut (step 1, step 2, then :func:`_stem_norm`)."""
    w = word
    # Step 1: plural.
    if len(w) > 5 and w[-1] == "x":
        if w[-3:-1] == "au" and w[-4] != "e":
            w = w[:-2] + "l"  # chevaux -> cheval; but peaux, anneaux -> peau, anneau
        else:
            w = w[:-1]
    if len(w) > 3 and w[-1] == "x":
        w = w[:-1]
    if len(w) > 3 and w[-1] == "s":
        w = w[:-1]

    # Step 2: one derivational/inflectional suffix (the first rule that applies).
    n = len(w)
    if n > 9 and w.endswith("issement"):  # investissement -> investir
        return _stem_norm(w[:-7] + "r")
    if n > 8 and w.endswith("issant"):  # assourdissant -> assourdir
        return _stem_norm(w[:-5] + "r")
    if n > 6 and w.endswith("ement"):  # pratiquement -> pratique
        w = w[:-4]
        if len(w) > 3 and w.endswith("ive"):  # administrativement -> administratif
            w = w[:-3] + "if"
        return _stem_norm(w)
    if n > 11 and w.endswith("ficatrice"):  # justificatrice -> justifier
        return _stem_norm(w[:-7] + "er")
    if n > 10 and w.endswith("ficateur"):  # justificateur -> justifier
        return _stem_norm(w[:-6] + "er")
    if n > 9 and w.endswith("catrice"):  # educatrice -> eduquer
        return _stem_norm(w[:-7] + "quer")
    if n > 8 and w.endswith("cateur"):  # communicateur -> communiquer
        return _stem_norm(w[:-6] + "quer")
    if n > 8 and w.endswith("atrice"):  # accompagnatrice -> accompagner
        return _stem_norm(w[:-6] + "er")
    if n > 7 and w.endswith("ateur"):  # administrateur -> administrer
        return _stem_norm(w[:-5] + "er")
    if n > 6 and w.endswith("trice"):  # productrice -> producteur, then the -teur rule
        w = w[:-4] + "eur"
        n = len(w)
    if n > 5 and w.endswith("ième"):  # deuxième -> deux
        return _stem_norm(w[:-4])
    if n > 7 and w.endswith("teuse"):  # acheteuse -> acheter
        return _stem_norm(w[:-3] + "r")
    if n > 6 and w.endswith("teur"):  # acheteur -> acheter
        return _stem_norm(w[:-2] + "r")
    if n > 5 and w.endswith("euse"):  # poreuse -> poreu
        return _stem_norm(w[:-2])
    if n > 8 and w.endswith("ère"):  # bijoutière -> bijoutier
        return _stem_norm(w[:-3] + "er")
    if n > 7 and w.endswith("ive"):  # abrasive -> abrasif
        return _stem_norm(w[:-2] + "if")
    if n > 4 and (w.endswith("folle") or w.endswith("molle")):  # folle -> fou
        return _stem_norm(w[:-3] + "u")
    if n > 9 and w.endswith("nnelle"):  # personnelle -> person
        return _stem_norm(w[:-5])
    if n > 9 and w.endswith("nnel"):
        return _stem_norm(w[:-3])
    if n > 4 and w.endswith("ète"):  # complète -> complet, then the rules below
        w = w[:-3] + "et"
    n = len(w)
    if n > 8 and w.endswith("ique"):  # aromatique -> aromat, then the rules below
        w = w[:-4]
        n = len(w)
    if n > 8 and w.endswith("esse"):  # faiblesse -> faibl
        return _stem_norm(w[:-3])
    if n > 7 and w.endswith("inage"):  # patinage -> patin
        return _stem_norm(w[:-3])
    if n > 9 and w.endswith("isation"):  # sonorisation -> sonor; ritualisation -> rituel
        w = w[:-7]
        if len(w) > 5 and w.endswith("ual"):
            w = w[:-2] + "el"
        return _stem_norm(w)
    if n > 9 and w.endswith("isateur"):  # unreachable after -ateur; kept as in the algorithm
        return _stem_norm(w[:-7])
    if n > 8 and (w.endswith("ation") or w.endswith("ition")):  # nomination -> nomin
        return _stem_norm(w[:-5])
    return _stem_norm(w)


# --- The two chains -----------------------------------------------------------------------------
#
# Both the filter's memo and explain() are built from the same helpers below, so the steps
# shown by `oimsearch analyze` are the ones that produced the indexed terms (a test checks it).


def _split_parts(folded: str) -> list[str]:
    """The ``[a-z0-9]+(?:[',.][a-z0-9]+)*`` parts of a folded token (usually just itself)."""
    if folded.isalnum() and folded.isascii():
        return [folded]
    return _PART_RE.findall(folded)


def _part_term(part: str) -> tuple[str, str]:
    """Term of one folded part and the step that produced it.

    Stop list first (no term, step ``stopped``), then the override table (``override``), else
    the light stemmer (``stemmed``, or ``""`` when the stemmer left the word unchanged).
    """
    if part in STOP_WORDS:
        return part, "stopped"
    override = STEM_OVERRIDES.get(part)
    if override is not None:
        return override, "override"
    stem = stem_word(part)
    return stem, ("stemmed" if stem != part else "")


def _trace(surface: str, exact: bool) -> tuple[list[str], list[tuple[str, str]]]:
    """Run the per-token chain on a surface and record which steps changed something.

    Returns the token-level steps (``normalized``, ``elided:<article>``, ``folded``,
    ``split``) and one ``(term, step)`` pair per part (see :func:`_part_term`); the exact
    chain has a single part with an empty step.
    """
    steps: list[str] = []
    text = _normalise(surface)
    if text != surface:
        steps.append("normalized")
    text, article = _elide(text)
    if article is not None:
        steps.append(f"elided:{article}")
    folded = text.casefold() if exact else _fold(text)
    if folded != text:
        steps.append("folded")
    if exact:
        return steps, ([(folded, "")] if folded else [])
    parts = _split_parts(folded)
    if len(parts) != 1 or parts[0] != folded:
        steps.append("split")
    return steps, [_part_term(p) for p in parts]


class _Stopped(str):
    """Cache value of a surface that is exactly one stop word (the text is the folded word).

    A ``str`` subclass so the hot loop tells the three cases apart with one class check:
    ``str`` (one term), ``_Stopped`` (one stop word), ``tuple`` (anything else).
    """

    __slots__ = ()


_CacheValue = str | tuple[tuple[str, bool], ...]

# surface -> str | _Stopped | tuple[(text, stopped), ...]
_STEMMED_CACHE: dict[str, _CacheValue] = {}
# surface -> exact term ("" when nothing is emitted)
_EXACT_CACHE: dict[str, str] = {}


def clear_caches() -> None:
    """Empty the per-process memo caches (used by tests and by the cold-cache benchmark)."""
    _STEMMED_CACHE.clear()
    _EXACT_CACHE.clear()
    _TRACE_CACHE.clear()


def _compute_stemmed(surface: str) -> _CacheValue:
    """Cache miss of the stemmed chain: analyse the surface and store its compact result."""
    text, _ = _elide(_normalise(surface))
    parts = _split_parts(_fold(text))
    value: _CacheValue
    if len(parts) == 1:
        term, step = _part_term(parts[0])
        value = _Stopped(term) if step == "stopped" else term
    else:
        value = tuple((term, step == "stopped") for term, step in map(_part_term, parts))
    if len(_STEMMED_CACHE) >= CACHE_LIMIT:
        _STEMMED_CACHE.clear()
    _STEMMED_CACHE[surface] = value
    return value


def _compute_exact(surface: str) -> str:
    """Cache miss of the exact chain: normalise, elide, casefold."""
    text, _ = _elide(_normalise(surface))
    value = text.casefold()
    if len(_EXACT_CACHE) >= CACHE_LIMIT:
        _EXACT_CACHE.clear()
    _EXACT_CACHE[surface] = value
    return value


def fold_fragment(text: str, exact: bool = False) -> str:
    """Normalise a query *fragment* (prefix, wildcard or range bound): no stop list, no stem.

    Whoosh sends prefix and wildcard text through the field analyzer with ``tokenize=False``
    (``réfugi*`` → ``réfugi``). Stemming a fragment cuts it below the stored stem, and the
    stop list would delete it, so only normalise → elide → casefold → unidecode + lower are
    applied (``exact=True``: normalise → elide → casefold). The text is *not* split into
    ``[a-z0-9]`` parts, so the wildcard characters ``*``, ``?`` and ``[...]`` survive.
    """
    text, _ = _elide(_normalise(text))
    return text.casefold() if exact else _fold(text)


# ---------------------------------------------------------------------------------------------
# Whoosh components
# ---------------------------------------------------------------------------------------------

# Token attribute telling FrenchFilter that the tokenizer was called with tokenize=False.
_FRAGMENT_ATTR = "oimsearch_fragment"


class _TokenStream:
    """What :class:`FrenchTokenizer` returns: a lazy token iterator that remembers its call.

    Iterated directly, it yields Whoosh ``Token`` objects like any tokenizer. When the very
    next stage is a :class:`FrenchFilter` (the normal ``FrenchTokenizer() | FrenchFilter()``
    chain) and iteration has not started, the filter reads the call's arguments and runs one
    fused loop over the regex matches instead of two chained generators: same tokens, about
    half the per-token overhead (the speed target is 2× Whoosh's ``LanguageAnalyzer``).
    """

    __slots__ = (
        "value",
        "positions",
        "chars",
        "keeporiginal",
        "removestops",
        "start_pos",
        "start_char",
        "tokenize",
        "mode",
        "kwargs",
        "_gen",
    )

    def __init__(
        self,
        value: str,
        positions: bool,
        chars: bool,
        keeporiginal: bool,
        removestops: bool,
        start_pos: int,
        start_char: int,
        tokenize: bool,
        mode: str,
        kwargs: dict[str, Any],
    ) -> None:
        self.value = value
        self.positions = positions
        self.chars = chars
        self.keeporiginal = keeporiginal
        self.removestops = removestops
        self.start_pos = start_pos
        self.start_char = start_char
        self.tokenize = tokenize
        self.mode = mode
        self.kwargs = kwargs
        self._gen: Iterator[Token] | None = None

    def new_token(self) -> Token:
        """The single ``Token`` object of this stream, as Whoosh's tokenizers create it."""
        t = Token(
            self.positions, self.chars, removestops=self.removestops, mode=self.mode, **self.kwargs
        )
        setattr(t, _FRAGMENT_ATTR, not self.tokenize)
        return t

    def _generator(self) -> Iterator[Token]:
        if self._gen is None:
            self._gen = _raw_tokens(self)
        return self._gen

    def __iter__(self) -> Iterator[Token]:
        return self._generator()

    def __next__(self) -> Token:
        return next(self._generator())


def _raw_tokens(s: _TokenStream) -> Iterator[Token]:
    """The tokenizer on its own: one ``Token`` per regex match, raw surface and raw offsets."""
    value = s.value
    positions, chars, keeporiginal = s.positions, s.chars, s.keeporiginal
    start_char = s.start_char
    t = s.new_token()
    if not s.tokenize:
        t.original = t.text = value
        t.boost = 1.0
        t.stopped = False
        if positions:
            t.pos = s.start_pos
        if chars:
            t.startchar = start_char
            t.endchar = start_char + len(value)
        yield t
        return
    pos = s.start_pos
    for match in _TOKEN_RE.finditer(value):
        t.text = text = match.group()
        t.boost = 1.0
        t.stopped = False
        if keeporiginal:
            t.original = text
        if positions:
            t.pos = pos
            pos += 1
        if chars:
            start, end = match.span()
            t.startchar = start_char + start
            t.endchar = start_char + end
        yield t


class FrenchTokenizer(Tokenizer):
    """Whoosh tokenizer over the raw text with the spec's regex (:data:`TOKEN_PATTERN`).

    Offsets are those of the raw text (``text[startchar:endchar]`` is what the user typed,
    even for NFD input or ``ﬁ``), unlike whoosh3's ``NormalizingRegexTokenizer`` whose offsets
    point into the normalised text. Like Whoosh's own tokenizers, it yields one ``Token``
    object over and over, and honours ``positions``, ``chars``, ``keeporiginal``,
    ``removestops``, ``start_pos``, ``start_char``, ``mode`` and ``tokenize``. With
    ``tokenize=False`` the whole value is one token, flagged so that :class:`FrenchFilter`
    treats it as a query fragment. The returned iterator is lazy (see :class:`_TokenStream`).
    """

    def __call__(
        self,
        value: str,
        positions: bool = False,
        chars: bool = False,
        keeporiginal: bool = False,
        removestops: bool = True,
        start_pos: int = 0,
        start_char: int = 0,
        tokenize: bool = True,
        mode: str = "",
        **kwargs: Any,
    ) -> Iterator[Token]:
        if not isinstance(value, str):
            raise TypeError(f"{value!r} is not a str")
        return _TokenStream(
            value,
            positions,
            chars,
            keeporiginal,
            removestops,
            start_pos,
            start_char,
            tokenize,
            mode,
            kwargs,
        )


class FrenchFilter(Filter):
    """Per-token French chain; ``FrenchFilter()`` is the stemmed chain, ``exact=True`` the twin.

    Stemmed: normalise → elide → casefold → unidecode → parts → stop list → overrides → light
    stemmer. Exact: normalise → elide → casefold only. Each surface is analysed once per
    process (module-level memo, see :data:`CACHE_LIMIT`).

    Whoosh contract kept, as ``StopFilter(renumber=True)`` does: stop words do not consume
    positions (the emitted terms are numbered consecutively from the first token's position,
    so phrases match across removed stop words); with ``removestops=False`` (highlighting) stop
    words are still emitted with ``token.stopped = True`` and the position the next term will
    take. A surface that folds into several parts (``½`` → ``1``, ``2``) emits one token per
    part, each with its own position and the surface's character offsets.

    A token produced with ``tokenize=False`` (prefix, wildcard, range text) is a fragment:
    :func:`fold_fragment` only, never the stop list or the stemmer (T3 of whoosh-notes).

    ``is_morph`` stays False on purpose: Whoosh's ``no_morph=True`` (used for ``spelling=True``
    fields) would drop the *whole* filter, elision and folding included.
    """

    exact: bool = False  # class default, so an older pickled instance without it still loads

    def __init__(self, exact: bool = False) -> None:
        self.exact = bool(exact)

    def __call__(self, tokens: Iterable[Token]) -> Iterator[Token]:
        if tokens.__class__ is _TokenStream and tokens._gen is None:  # type: ignore[attr-defined]
            s: _TokenStream = tokens  # type: ignore[assignment]
            if not s.tokenize:
                return _fragment_stream(s, self.exact)
            if s.positions and s.removestops and not s.keeporiginal and not s.start_char:
                return _fused_exact_indexing(s) if self.exact else _fused_stemmed_indexing(s)
            return _fused_exact(s) if self.exact else _fused_stemmed(s)
        return _exact_stream(tokens) if self.exact else _stemmed_stream(tokens)


def _fragment_stream(tokens: Iterable[Token], exact: bool) -> Iterator[Token]:
    """Query fragments: each token's text through :func:`fold_fragment`; empty ones dropped."""
    for t in tokens:
        text = fold_fragment(t.text, exact=exact)
        if text:
            t.text = text
            t.stopped = False
            yield t


def _fused_stemmed(s: _TokenStream) -> Iterator[Token]:
    """Tokenizer and stemmed chain in one loop: one regex match and one dict look-up per token.

    Must emit exactly what ``_stemmed_stream(_raw_tokens(s))`` emits (a test checks it, for
    every combination of options). Offsets come from ``str.find`` from the end of the
    previous token: every letter or digit of the text belongs to a token, so the next
    occurrence of a surface cannot start in the gap before it (``findall`` + ``find`` is
    cheaper than ``finditer`` + ``span``). ``boost`` is set once: nothing here changes it.
    """
    t = s.new_token()
    t.boost = 1.0
    t.stopped = False
    get = _STEMMED_CACHE.get
    compute = _compute_stemmed
    stopped_cls = _Stopped
    positions, chars, keeporiginal, removestops = (
        s.positions,
        s.chars,
        s.keeporiginal,
        s.removestops,
    )
    pos = s.start_pos
    start_char = s.start_char
    find = s.value.find
    start = end = 0
    for surface in _TOKEN_RE.findall(s.value):
        if chars:
            start = find(surface, end)
            end = start + len(surface)
        value = get(surface)
        if value is None:
            value = compute(surface)
        cls = value.__class__
        if cls is str:
            value = ((value, False),)
        elif cls is stopped_cls:
            if removestops:
                continue
            value = ((str(value), True),)
        for text, stopped in value:  # type: ignore[misc]
            if stopped and removestops:
                continue
            t.text = text
            t.stopped = stopped
            if keeporiginal:
                t.original = surface
            if positions:
                t.pos = pos
                if not stopped:
                    pos += 1
            if chars:
                t.startchar = start_char + start
                t.endchar = start_char + end
            yield t


def _fused_stemmed_indexing(s: _TokenStream) -> Iterator[Token]:
    """:func:`_fused_stemmed` specialised for the indexing case, the hottest loop of all.

    Valid when ``positions and removestops and not keeporiginal and start_char == 0`` (what
    Whoosh's writer and highlighter-free searches pass): fewer tests per token, stop words
    skipped after one look-up.
    """
    t = s.new_token()
    t.boost = 1.0
    t.stopped = False
    get = _STEMMED_CACHE.get
    compute = _compute_stemmed
    chars = s.chars
    pos = s.start_pos
    find = s.value.find
    start = end = 0
    for surface in _TOKEN_RE.findall(s.value):
        if chars:
            start = find(surface, end)
            end = start + len(surface)
        value = get(surface)
        if value is None:
            value = compute(surface)
        if value.__class__ is str:
            t.text = value
            t.pos = pos
            pos += 1
            if chars:
                t.startchar = start
                t.endchar = end
            yield t
        elif value.__class__ is tuple:
            for text, stopped in value:  # type: ignore[misc]
                if not stopped:
                    t.text = text
                    t.pos = pos
                    pos += 1
                    if chars:
                        t.startchar = start
                        t.endchar = end
                    yield t
        # else: a single stop word, removed


def _fused_exact(s: _TokenStream) -> Iterator[Token]:
    """Tokenizer and exact chain in one loop (same contract as :func:`_fused_stemmed`)."""
    t = s.new_token()
    t.boost = 1.0
    t.stopped = False
    get = _EXACT_CACHE.get
    compute = _compute_exact
    positions, chars, keeporiginal = s.positions, s.chars, s.keeporiginal
    pos = s.start_pos
    start_char = s.start_char
    find = s.value.find
    start = end = 0
    for surface in _TOKEN_RE.findall(s.value):
        if chars:
            start = find(surface, end)
            end = start + len(surface)
        value = get(surface)
        if value is None:
            value = compute(surface)
        if not value:
            continue
        t.text = value
        if keeporiginal:
            t.original = surface
        if positions:
            t.pos = pos
            pos += 1
        if chars:
            t.startchar = start_char + start
            t.endchar = start_char + end
        yield t


def _fused_exact_indexing(s: _TokenStream) -> Iterator[Token]:
    """:func:`_fused_exact` specialised like :func:`_fused_stemmed_indexing`."""
    t = s.new_token()
    t.boost = 1.0
    t.stopped = False
    get = _EXACT_CACHE.get
    compute = _compute_exact
    chars = s.chars
    pos = s.start_pos
    find = s.value.find
    start = end = 0
    for surface in _TOKEN_RE.findall(s.value):
        if chars:
            start = find(surface, end)
            end = start + len(surface)
        value = get(surface)
        if value is None:
            value = compute(surface)
        if value:
            t.text = value
            t.pos = pos
            pos += 1
            if chars:
                t.startchar = start
                t.endchar = end
            yield t


def _stemmed_stream(tokens: Iterable[Token]) -> Iterator[Token]:
    """Stemmed chain over any token stream (the tokenizer's own iterator, or another one)."""
    it = iter(tokens)
    first = next(it, None)
    if first is None:
        return
    if getattr(first, _FRAGMENT_ATTR, False):
        yield from _fragment_stream(chain((first,), it), exact=False)
        return
    get = _STEMMED_CACHE.get
    compute = _compute_stemmed
    stopped_cls = _Stopped
    positions = first.positions
    removestops = first.removestops
    pos = first.pos if positions else 0
    for t in chain((first,), it):
        value = get(t.text)
        if value is None:
            value = compute(t.text)
        cls = value.__class__
        if cls is str:
            t.text = value
            t.stopped = False
            if positions:
                t.pos = pos
                pos += 1
            yield t
            continue
        if cls is stopped_cls:
            if removestops:
                continue
            value = ((str(value), True),)
        for text, stopped in value:  # type: ignore[misc]
            if stopped and removestops:
                continue
            t.text = text
            t.stopped = stopped
            if positions:
                t.pos = pos
                if not stopped:
                    pos += 1
            yield t


def _exact_stream(tokens: Iterable[Token]) -> Iterator[Token]:
    """Exact chain over any token stream."""
    it = iter(tokens)
    first = next(it, None)
    if first is None:
        return
    if getattr(first, _FRAGMENT_ATTR, False):
        yield from _fragment_stream(chain((first,), it), exact=True)
        return
    get = _EXACT_CACHE.get
    compute = _compute_exact
    positions = first.positions
    pos = first.pos if positions else 0
    for t in chain((first,), it):
        value = get(t.text)
        if value is None:
            value = compute(t.text)
        if not value:
            continue
        t.text = value
        t.stopped = False
        if positions:
            t.pos = pos
            pos += 1
        yield t


def stemmed_analyzer() -> CompositeAnalyzer:
    """The index/query analyzer of the stemmed fields: ``FrenchTokenizer() | FrenchFilter()``."""
    return FrenchTokenizer() | FrenchFilter()


def exact_analyzer() -> CompositeAnalyzer:
    """The exact twin: ``FrenchTokenizer() | FrenchFilter(exact=True)``."""
    return FrenchTokenizer() | FrenchFilter(exact=True)


_ANALYZERS: dict[bool, CompositeAnalyzer] = {False: stemmed_analyzer(), True: exact_analyzer()}


def terms(text: str, exact: bool = False) -> list[str]:
    """The terms the analyzer emits for ``text`` (``A(x)`` of §7 of the spec), in order."""
    return [t.text for t in _ANALYZERS[exact](text)]


def iter_terms(text: str, exact: bool = False) -> Iterator[str]:
    """:func:`terms`, lazily: a token is analysed only when its term is asked for."""
    for t in _ANALYZERS[exact](text):
        yield t.text


# ---------------------------------------------------------------------------------------------
# explain(): what happened to each token, for `oimsearch analyze`
# ---------------------------------------------------------------------------------------------


@dataclass
class TokenReport:
    """One row of :func:`explain`.

    ``steps`` lists, in order, the steps that applied: ``normalized`` (NFKC, ignorables or
    apostrophe mapping changed the surface), ``elided:<article>``, ``folded`` (case or accents
    changed; for the exact chain, case only), ``split`` (the folded surface gave several parts,
    or lost characters that cannot be in a term), then one of ``stopped`` (stop word, no term),
    ``override`` (table hit, stemmer skipped) or ``stemmed`` (the stemmer changed the word).
    A surface that folds into several terms gives one report per term with the same offsets.
    """

    position: int | None
    start: int
    end: int
    surface: str
    term: str | None
    steps: list[str] = field(default_factory=list)


# (surface, exact) -> _trace's result as tuples: explain() runs on every snippet field, and
# the surfaces of a language repeat
_TRACE_CACHE: dict[tuple[str, bool], tuple[tuple[str, ...], tuple[tuple[str, str], ...], bool]] = {}


def _traced(surface: str, exact: bool):
    """``_trace(surface, exact)`` as tuples, plus whether an article was elided (memoised)."""
    key = (surface, exact)
    traced = _TRACE_CACHE.get(key)
    if traced is None:
        steps, parts = _trace(surface, exact)
        elided = any(st.startswith("elided") for st in steps)
        traced = (tuple(steps), tuple(parts), elided)
        if len(_TRACE_CACHE) >= CACHE_LIMIT:
            _TRACE_CACHE.clear()
        _TRACE_CACHE[key] = traced
    return traced


def token_spans(text: str) -> Iterator[tuple[int, int, str]]:
    """``(start, end, surface)`` of each token, as the tokenizer finds them (raw offsets)."""
    for m in _TOKEN_RE.finditer(text):
        yield m.start(), m.end(), m.group()


def token_matches(text: str) -> Iterator[re.Match]:
    """The tokenizer's regex matches on ``text`` (``group()`` is the surface, ``span()`` its
    raw offsets): :func:`token_spans` without a tuple per token, for loops over whole texts."""
    return _TOKEN_RE.finditer(text)


def surface_keys(surface: str) -> tuple[str, str, bool]:
    """``(exact term, folded, elided)`` of one token's surface: the first steps of both
    chains (normalise, elide, then casefold, or fold), without the split, stop list and stem.

    ``exact term`` is the exact field's term (``""``: none), the one term of
    ``traced_terms(surface, exact=True)``; ``folded`` is what the stemmed chain splits into
    parts (and what a prefix query is compared with, see :func:`fold_fragment`); ``elided``
    says whether an article was cut off, as :func:`traced_terms` does.
    """
    text, article = _elide(_normalise(surface))
    return text.casefold(), _fold(text), article is not None


def term_head(term: str) -> str:
    """The first two characters of a stemmed term: see :func:`may_stem_to`."""
    return term[:2]


def may_stem_to(folded: str, heads: frozenset[str] | set[str]) -> bool:
    """False only if no stemmed term of a token folded to ``folded`` (see
    :func:`surface_keys`) can have its :func:`term_head` in ``heads``; a cheap test that saves
    the stemmer on most tokens when looking for a few terms (snippets).

    It holds because the light stemmer keeps a word's first two characters: every rule keeps
    at least two leading characters, and the final normalisation only cuts the end of a word
    longer than 4 and merges runs of a repeated letter, which can change the second
    character only when it repeats the first. So a part is looked at further when its first
    two characters are a head, when they are the same character, or when the override table
    (which maps words anywhere) has it; a stop word gives no term. A test checks the
    property on generated words and on every override.
    """
    for p in _split_parts(folded):
        if p[:2] in heads or p in STEM_OVERRIDES or (len(p) > 1 and p[0] == p[1]):
            return True
    return False


def traced_terms(surface: str, exact: bool = False) -> tuple[list[str], bool]:
    """The index terms of one token's surface (stop words left out), and whether an article
    was elided from it: the terms :func:`explain` reports for a token with this surface."""
    _steps, parts, elided = _traced(surface, exact)
    return [term for term, step in parts if term and step != "stopped"], elided


def explain(text: str, exact: bool = False) -> list[TokenReport]:
    """Analyse ``text`` like the index does and report each token's fate, in text order.

    Positions are those the index records (0-based, stop words consume none); a stop word or
    a surface that folds to nothing has ``position`` and ``term`` set to ``None``.
    """
    reports: list[TokenReport] = []
    pos = 0
    for t in FrenchTokenizer()(text, chars=True):
        start, end, surface = t.startchar, t.endchar, t.text
        steps, parts, _elided = _traced(surface, exact)
        if not parts:
            reports.append(TokenReport(None, start, end, surface, None, list(steps)))
            continue
        for term, step in parts:
            row_steps = [*steps, step] if step else list(steps)
            if step == "stopped":
                reports.append(TokenReport(None, start, end, surface, None, row_steps))
            else:
                reports.append(TokenReport(pos, start, end, surface, term, row_steps))
                pos += 1
    return reports
