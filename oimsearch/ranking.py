"""Ranking settings and the BM25 weighting model.

Whoosh's own ``BM25F`` scores each field with its own IDF and sums the fields. A word that is
common in bodies but rare in titles then gets a huge title IDF (see the peers README, finding
2: on PIAF, "a" in a title outscored the only document containing the rare query word). Here
every field of one *field group* (the stemmed ``title``/``body`` pair, and the exact twins
``title_exact``/``body_exact``) shares one IDF, taken from the document frequency of the term
over the group (the larger of the per-field frequencies, a lower bound of the union that is
exact whenever title words also occur in the body). Length normalisation and saturation stay
per field (Whoosh's BM25), which keeps Whoosh's block-max optimisations for top-k search.

Every ranking feature can be switched off through :class:`RankingSettings`, so the benchmark
can measure what each one buys.
"""

from __future__ import annotations

import weakref
from bisect import bisect_left
from dataclasses import asdict, dataclass, fields
from itertools import accumulate
from math import log

from whoosh import scoring
from whoosh.scoring import BM25FScorer, WeightingModel, WeightScorer

from oimsearch.schema import positions_field

# Fields whose IDF is shared: each field maps to the group it belongs to.
FIELD_GROUPS = {
    "title": ("title", "body"),
    "body": ("title", "body"),
    "body_pos": ("title", "body"),  # the body's positions (phrases, proximity)
    "title_exact": ("title_exact", "body_exact"),
    "body_exact": ("title_exact", "body_exact"),
}


# Interrogative adverbs and pronouns, folded (quel, quelle, quels, quelles and où are stop
# words already). "comment" is not one of them: dropping it too measured CDTN 0.3043 but
# CNIL 0.9102 (paraphrases 0.7057), whose FAQ titles ask "Comment ... ?" (whole dev halves).
QUESTION_WORDS = frozenset(
    {"quand", "pourquoi", "combien", "quoi", "lequel", "laquelle", "lesquels", "lesquelles"}
)


@dataclass(frozen=True)
class RankingSettings:
    """Weights and feature switches (defaults chosen on the dev halves, see bench/README.md)."""

    k1: float = 1.2
    b: float = 0.75
    # whole dev halves, nDCG@10 CDTN / PIAF / CNIL (paraphrases), title_b at title_boost 2.0:
    # 0.5: 0.2770 / 0.8021 / 0.9137 (0.7129); 0.75: 0.2923 / 0.8025 / 0.9117 (0.7098);
    # 0.9: 0.2992 / 0.8028 / 0.9086 (0.7101); 1.0: 0.3028 / 0.8027 / 0.9080 (0.7081);
    # and 1.0 at title_boost 2.5: 0.3022 / 0.8027 / 0.9123 (0.7096) (2026-11-24)
    title_b: float = 1.0
    title_boost: float = 2.5
    # the title's weight is title_boost times the index's title ratio (distinct titles /
    # documents with a title: the mean over documents of 1 / the number of documents sharing
    # their title). Titles shared by many documents (an article's title over each of its
    # paragraphs) say less about each one. Whole dev halves, at title_b 0.5, nDCG@10 at
    # title weights 2.0 / 1.0: PIAF (ratio 0.32) 0.7931 / 0.8024; CDTN (0.99) 0.2769 /
    # 0.2769; CNIL (0.98) 0.9139 / 0.8871 (and 0.9203 at 3.0, where CDTN falls to 0.2721)
    title_share: bool = True
    # the exact twins' weight (times the field's). Whole dev halves, nDCG@10 CDTN / PIAF /
    # CNIL (paraphrases), with question_words: 0.5: 0.3024 / 0.8056 / 0.9149 (0.7195);
    # 0.6: 0.3023 / 0.8059 / 0.9166 (0.7258); 0.7: PIAF 0.8051, CNIL 0.9158 (0.7229)
    exact_boost: float = 0.6
    # "or": any word may match, scores times (weight of the matched words / weight of all
    # the words) ** coord, so that documents with all the words come first; "and": every
    # word must match
    operator: str = "or"
    coord: float = 0.3
    # in that factor each word counts its IDF ** coord_idf (its largest over its terms), so
    # that a document missing a rare word of the query loses more than one missing a common
    # word; 0: every word counts 1. Whole dev halves, nDCG@10 CDTN / PIAF / CNIL
    # (paraphrases), coord 0.3: 0: 0.3021 / 0.8059 / 0.9166 (0.7258); 1: 0.3016 / 0.8108 /
    # 0.9165 (0.7256); 1.25: 0.3018 / 0.8114 / 0.9150 (0.7240); 1.5: 0.3018 / 0.8119 /
    # 0.9127 (0.7210); 2: PIAF 0.8125, CNIL 0.9128 (0.7211) (2026-11-24)
    coord_idf: float = 1.25
    # True BM25F (one saturation and one IDF per word over all fields); False: Whoosh-style
    # per-field BM25 summed (with one IDF per field group when shared_idf)
    bm25f: bool = False
    # with bm25f: the title (and its exact twin) saturates apart from the body
    title_separate: bool = True
    shared_idf: bool = True
    exact: bool = True
    exact_body: bool = True
    proximity: bool = True
    proximity_boost: float = 0.5
    proximity_slop: int = 4
    # the proximity bonus re-scores the best `proximity_depth` documents of the query without
    # it (so the rest can be skipped, MaxScore), or the `offset + limit` asked for when more;
    # 0: a phrase clause over every match. 30 rather than 100: warm p95 on the codes queries
    # 85.6 ms against 102.9 ms, nDCG@10 at limit 10 CDTN 0.2769 against 0.2772, PIAF and
    # CNIL unchanged (bench/README.md, 2026-11-23)
    proximity_depth: int = 30
    # the body's exact twin scores the best `exact_depth` documents of the query without it
    # (or the `offset + limit` asked for when more), instead of every match: its postings are
    # as long as the body's, and a document it would lift from below into the top is rare.
    # 0: scored over every match, like the other fields. Whole dev halves, nDCG@10 at 0 / 100 /
    # 50 / 30: CDTN 0.3023 / 0.3022 / 0.3021 / 0.3015, PIAF 0.8059 at 0, 100 and 50, CNIL
    # 0.9166 (0.7258) at 0, 100 and 50; codes queries in one process, p95 at 0 / 100 / 30:
    # 19.16 / 16.70 / 15.55 ms, and in another run at 100 / 50: 17.48 / 15.66 ms (2026-11-24)
    exact_depth: int = 50
    acronyms: bool = True
    acronym_boost: float = 0.35
    fuzzy: bool = True
    fuzzy_boost: float = 0.5
    # drop the interrogatives of QUESTION_WORDS from a query's free words when other words
    # remain: they say that a question is asked, not what it is about. Whole dev halves,
    # nDCG@10 CDTN / PIAF / CNIL (paraphrases): 0.3022 / 0.8027 / 0.9123 (0.7096) without,
    # 0.3024 / 0.8056 / 0.9149 (0.7195) with (2026-11-24)
    question_words: bool = True

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> RankingSettings:
        known = {f.name for f in fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise ValueError(f"unknown ranking settings: {', '.join(sorted(unknown))}")
        return cls(**data)


def bm25_idf(n: int, total: int) -> float:
    """Lucene's BM25 IDF, always positive: log(1 + (N - n + 0.5) / (n + 0.5))."""
    return log(1.0 + (total - n + 0.5) / (n + 0.5))


def make_weighting(settings: RankingSettings):
    """Return the Whoosh weighting model for these settings."""
    if not settings.shared_idf:
        return scoring.BM25F(B=settings.b, K1=settings.k1, title_B=settings.title_b)
    return SharedIdfBM25(settings)


def group_idf(searcher, fieldname: str, text) -> float:
    """The IDF of ``text`` over the field's group (FIELD_GROUPS): from its largest document
    frequency in the group's fields, over the whole index."""
    parent = searcher.get_parent()
    n = 0
    for f in FIELD_GROUPS.get(fieldname, (fieldname,)):
        if f in parent.schema:
            n = max(n, parent.doc_frequency(f, text))
    return bm25_idf(n, parent.doc_count_all())


def word_weights(searcher, words: list, idf_power: float) -> list:
    """Each word's weight in the coordination factor (:class:`CoordQuery`): the largest IDF
    of its terms (phrases left out; the field group's IDF, :func:`group_idf`) to the power
    ``idf_power``; a word without terms (a prefix) counts as the mean of the others. All 1.0
    when ``idf_power`` is 0."""
    if not idf_power:
        return [1.0] * len(words)
    model = searcher.weighting
    idf = model.group_idf if isinstance(model, SharedIdfBM25) else group_idf
    schema = searcher.schema
    found = []
    for q in words:
        best = None
        for f, t in q.iter_all_terms(phrases=False):
            if f in schema and schema[f].scorable:
                v = idf(searcher, f, t)
                if best is None or v > best:
                    best = v
        found.append(best)
    known = [v for v in found if v is not None]
    mean = sum(known) / len(known) if known else 1.0
    return [(mean if v is None else v) ** idf_power for v in found]


class SharedIdfBM25(WeightingModel):
    """BM25 per field, one IDF per field group (see module docstring)."""

    def __init__(self, settings: RankingSettings):
        self.settings = settings
        self._idf_cache: dict[tuple[tuple[str, ...], str], float] = {}

    def supports_block_quality(self) -> bool:
        return True

    def group_idf(self, searcher, fieldname: str, text) -> float:
        key = (FIELD_GROUPS.get(fieldname, (fieldname,)), text)
        cached = self._idf_cache.get(key)
        if cached is not None:
            return cached
        value = group_idf(searcher, fieldname, text)
        self._idf_cache[key] = value
        return value

    def scorer(self, searcher, fieldname: str, text, qf: int = 1):
        if not searcher.schema[fieldname].scorable:
            return WeightScorer.for_(searcher, fieldname, text)
        b = self.settings.title_b if fieldname.startswith("title") else self.settings.b
        idf = self.group_idf(searcher, fieldname, text)
        sc = GroupIdfScorer(searcher, fieldname, text, b, self.settings.k1, idf, qf=qf)
        sc.dfl = _length_getter(searcher, fieldname, sc.dfl)
        return sc


class GroupIdfScorer(BM25FScorer):
    """Whoosh's BM25 scorer with a given IDF (the group's): the same ``_score``, the same
    set-up (``setup``: length function, best block quality), without the per-field IDF that
    Whoosh's initializer looks up only to have it replaced."""

    def __init__(self, searcher, fieldname: str, text, B: float, K1: float, idf: float, qf=1):
        self.idf = idf
        self.avgfl = searcher.get_parent().avg_field_length(fieldname) or 1
        self.B = B
        self.K1 = K1
        self.qf = qf
        self.setup(searcher, fieldname, text)


# segment per-doc reader -> {field: its length column as bytes}, read once per segment
_LENGTH_BYTES: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def length_bytes(searcher, fieldname: str):
    """The segment's length column of ``fieldname`` as ``bytes`` (one byte a document), read
    once per segment, and Whoosh's byte-to-length table; None when this codec has no such
    column (another Whoosh version or codec)."""
    try:
        from whoosh.codec.whoosh3 import LENGTHS_COLUMN, _lenfield

        perdoc = searcher.reader()._perdoc
        per_field = _LENGTH_BYTES.get(perdoc)
        if per_field is None:
            per_field = _LENGTH_BYTES[perdoc] = {}
        lens = per_field.get(fieldname)
        if lens is None:
            col = perdoc._cached_reader(_lenfield(fieldname), LENGTHS_COLUMN)
            if col is None or col._fixedlen != 1 or col._typecode != "B":
                return None
            lens = per_field[fieldname] = col._dbfile.get(col._basepos, col._count)
    except Exception:  # another codec or Whoosh version: Whoosh's own path
        return None
    if not _BYTE_LENGTHS:
        from whoosh.util.numeric import byte_to_length

        _BYTE_LENGTHS.extend(byte_to_length(i) for i in range(256))
    return lens, _BYTE_LENGTHS


_BYTE_LENGTHS: list = []  # Whoosh's length byte -> length, filled on first use


def _length_getter(searcher, fieldname: str, slow):
    """A faster ``slow`` (``lambda d: searcher.doc_field_length(d, fieldname, 1)``).

    Whoosh decodes one length byte per call through five method calls; here the segment's
    length column (one byte per document) is read once as ``bytes`` and decoded with Whoosh's
    own table. Any case this does not cover (no column, a zero byte, a document past the
    column) goes to ``slow``, so the values are always Whoosh's.
    """
    found = length_bytes(searcher, fieldname)
    if found is None:
        return slow
    lens, table = found
    n = len(lens)

    def dfl(docid: int):
        if docid < n:
            b = lens[docid]
            if b:
                return table[b]
        return slow(docid)

    dfl.lengths = (lens, table, slow)  # for term-at-a-time scoring (oimsearch.topk)
    return dfl


# --------------------------------------------------------------------------------------
# True BM25F (Robertson & Zaragoza, "The Probabilistic Relevance Framework: BM25 and
# Beyond", 2009, §3.3): for one query word, the term frequencies of every field are length-
# normalised per field, weighted, summed into one pseudo-frequency, saturated once and
# multiplied by one IDF. Whoosh's own BM25F instead saturates and weights each field apart.

from whoosh import matching as _wm  # noqa: E402
from whoosh import query as _wq  # noqa: E402
from whoosh.codec.whoosh3 import W3LeafMatcher as _W3Leaf  # noqa: E402

_FilterMatcher = _wm.FilterMatcher


class WordQuery(_wq.Query):
    """One query word searched in several fields, scored as one BM25F term.

    ``parts`` are (field, term text, field weight); ``idf_fields`` are the (field, term)
    pairs whose largest document frequency gives the word's IDF.
    """

    def __init__(self, parts, idf_terms, k1: float, bs: dict, label: str, boost: float = 1.0):
        self.parts = tuple(parts)
        self.idf_terms = tuple(idf_terms)
        self.k1 = k1
        self.bs = dict(bs)
        self.label = label
        self.boost = boost

    def __repr__(self) -> str:
        return f"WordQuery({self.label!r}, {self.parts!r})"

    def __str__(self) -> str:
        inner = " ".join(f"{f}:{t}^{w:g}" for f, t, w in self.parts)
        return f"bm25f({inner})" + (f"^{self.boost:g}" if self.boost != 1 else "")

    def __eq__(self, other) -> bool:
        return (
            type(other) is type(self)
            and self.parts == other.parts
            and self.boost == other.boost
            and self.k1 == other.k1
        )

    def __hash__(self) -> int:
        return hash((self.parts, self.boost, self.k1))

    def is_leaf(self) -> bool:
        return True

    def has_terms(self) -> bool:
        return True

    def terms(self, phrases: bool = False):
        for f, t, _w in self.parts:
            yield f, t

    def estimate_size(self, ixreader) -> int:
        return max((ixreader.doc_frequency(f, t) for f, t, _ in self.parts), default=0)

    def matcher(self, searcher, context=None):
        reader = searcher.reader()
        parent = searcher.get_parent()
        leaves = []
        for f, t, w in self.parts:
            if f in reader.schema and (f, t) in reader:
                m = reader.postings(f, t)
                avg = parent.avg_field_length(f) or 1.0
                leaves.append((m, f, w, self.bs.get(f, 0.75), avg))
        if not leaves:
            return _wm.NullMatcher()
        n = max((parent.doc_frequency(f, t) for f, t in self.idf_terms), default=0)
        idf = bm25_idf(n, parent.doc_count_all())
        return BM25FMatcher(leaves, idf * self.boost, self.k1, reader)


class _UnionMatcher(_wm.Matcher):
    """Walks the union of child matchers' documents; subclasses define ``score``.

    Only the children flagged in ``essential`` drive the enumeration (all of them unless a
    subclass prunes); the others are skipped forward when a document is scored.
    """

    def __init__(self, subs):
        self.subs = subs
        self.essential = [True] * len(subs)
        self._find()

    def _find(self) -> None:
        best = None
        for m, ess in zip(self.subs, self.essential, strict=True):
            if ess and m.is_active():
                i = m.id()
                if best is None or i < best:
                    best = i
        self._id = best

    def _at_current(self):
        """The children positioned on the current document (non-essential ones skip to it)."""
        cur = self._id
        for m in self.subs:
            if not m.is_active():
                continue
            if m.id() < cur:
                m.skip_to(cur)
                if not m.is_active():
                    continue
            if m.id() == cur:
                yield m

    def is_active(self) -> bool:
        return self._id is not None

    def id(self) -> int:
        return self._id

    def reset(self) -> None:
        for m in self.subs:
            m.reset()
        self.essential = [True] * len(self.subs)
        self._find()

    def children(self):
        return list(self.subs)

    def supports_block_quality(self) -> bool:
        return False

    def next(self):
        cur = self._id
        for m, ess in zip(self.subs, self.essential, strict=True):
            if ess and m.is_active() and m.id() == cur:
                m.next()
        self._find()
        return False

    def skip_to(self, id):
        for m, ess in zip(self.subs, self.essential, strict=True):
            if ess and m.is_active() and m.id() < id:
                m.skip_to(id)
        self._find()

    def weight(self) -> float:
        return self.score()

    def replace(self, minquality=0):
        return self if self.is_active() else _wm.NullMatcher()

    def spans(self):
        return []


class BM25FMatcher(_UnionMatcher):
    """One word over several fields: ``fields`` holds (field, weight, b, avg length) per child."""

    def __init__(self, leaves, idf: float, k1: float, reader):
        self.fields = [rest for _m, *rest in leaves]
        self.idf = idf
        self.k1 = k1
        self.reader = reader
        super().__init__([m for m, *_ in leaves])

    def copy(self):
        leaves = [(m.copy(), *rest) for m, rest in zip(self.subs, self.fields, strict=True)]
        return BM25FMatcher(leaves, self.idf, self.k1, self.reader)

    def term_matchers(self):
        yield self  # one word, however many fields

    def term(self):
        return None

    def max_quality(self) -> float:
        return self.idf * (self.k1 + 1)

    def _pseudo(self) -> float:
        cur = self._id
        dfl = self.reader.doc_field_length
        tf = 0.0
        for m, (f, w, b, avg) in zip(self.subs, self.fields, strict=True):
            if m.is_active() and m.id() == cur:
                tf += w * m.weight() / ((1.0 - b) + b * dfl(cur, f, 1) / avg)
        return tf

    def weight(self) -> float:
        return self._pseudo()

    def score(self) -> float:
        tf = self._pseudo()
        return self.idf * tf * (self.k1 + 1.0) / (tf + self.k1)


class CoordQuery(_wq.Query):
    """Sum of sub-queries (the words of a query) times a coordination factor.

    factor = (weight of the matched words / weight of all the words) ** power, each word
    weighing its IDF ** ``idf_power`` (:func:`word_weights`; 1 each at 0: matched / n):
    documents with all the words come first when ``power`` is large, partial matches are
    kept after them, those missing only common words first.
    """

    def __init__(self, subqueries, power: float, boost: float = 1.0, idf_power: float = 0.0):
        self.subqueries = list(subqueries)
        self.power = power
        self.boost = boost
        self.idf_power = idf_power

    def __repr__(self) -> str:
        return f"CoordQuery({self.subqueries!r}, power={self.power}, idf_power={self.idf_power})"

    def __str__(self) -> str:
        return "(" + " OR ".join(str(q) for q in self.subqueries) + f")~coord{self.power:g}"

    def __eq__(self, other) -> bool:
        return (
            type(other) is type(self)
            and self.subqueries == other.subqueries
            and self.power == other.power
            and self.idf_power == other.idf_power
        )

    def __hash__(self) -> int:
        return hash(tuple(self.subqueries))

    def is_leaf(self) -> bool:
        return False

    def children(self):
        return iter(self.subqueries)

    def apply(self, fn):
        return CoordQuery([fn(q) for q in self.subqueries], self.power, self.boost, self.idf_power)

    def estimate_size(self, ixreader) -> int:
        return sum(q.estimate_size(ixreader) for q in self.subqueries)

    def estimate_min_size(self, ixreader) -> int:
        # a union matches at least as many documents as its largest part
        return max((q.estimate_min_size(ixreader) for q in self.subqueries), default=0)

    def matcher(self, searcher, context=None):
        # needs_current: Whoosh then builds each word's Or as a tree of UnionMatchers, whose
        # max_quality() bounds the word's score (the sum of its parts). Without it, on an
        # index of up to 5,000 documents Whoosh preloads an ArrayUnionMatcher, whose
        # max_quality() is the largest part alone: no bound for MaxScore.
        if context is not None:
            context = context.set(needs_current=True)
        subs, weights = [], []
        coord = self.power and len(self.subqueries) > 1
        all_weights = word_weights(searcher, self.subqueries, self.idf_power if coord else 0)
        for q, w in zip(self.subqueries, all_weights, strict=True):
            m = q.matcher(searcher, context)
            if m.is_active():
                subs.append(m)
                weights.append(w)
        if not subs:
            return _wm.NullMatcher()
        # the words' weights summed in word order, the inactive ones too: the same total on
        # every segment
        total = 0.0
        for w in all_weights:
            total += w
        n = len(self.subqueries)
        return CoordMatcher(subs, n, self.power, self.boost, weights=weights, wtotal=total)


# Whoosh builds a word's matcher as a binary tree of unions (``UnionMatcher``) over its
# term matchers, boosted ones wrapped in ``WrappingMatcher``. CoordMatcher walks these trees
# flat: the leaves ("atoms": any other matcher) sit in one list with their current document
# cached, and a word's score is its tree evaluated over the atoms on the current document, with
# the same additions and multiplications in the same order as Whoosh's matchers (so the same
# floats), without one Python call per tree node per document.
_UNION = _wm.UnionMatcher
_WRAP = _wm.WrappingMatcher


def _flatten(m, atoms: list):
    """The score expression of a matcher tree, appending its atoms to ``atoms``.

    An expression is an atom index, ``(0, a, b)`` (union: a + b, or whichever is on the
    document) or ``(1, child, boost)`` (child * boost); ``None`` when nothing is active.
    Only the exact Whoosh classes are walked: a subclass may score differently.
    """
    cls = m.__class__
    if cls is _UNION:
        a = _flatten(m.a, atoms)
        b = _flatten(m.b, atoms)
        if a is None:
            return b
        if b is None:
            return a
        return (0, a, b)
    if cls is _WRAP:
        c = _flatten(m.child, atoms)
        return None if c is None else (1, c, m.boost)
    if not m.is_active():
        return None
    atoms.append(m)
    return len(atoms) - 1


def _atom_boosts(e, out: dict, path: tuple = ()) -> dict:
    """Atom index -> the boosts of the wrappers above it, innermost first."""
    if e.__class__ is int:
        out[e] = path
    elif e[0]:
        _atom_boosts(e[1], out, (e[2], *path))
    else:
        _atom_boosts(e[1], out, path)
        _atom_boosts(e[2], out, path)
    return out


def _expr_score(e, atoms, ids, cur):
    """UnionMatcher.score / WrappingMatcher.score of the tree; None if no atom is on ``cur``."""
    if e.__class__ is int:
        return atoms[e].score() if ids[e] == cur else None
    a = _expr_score(e[1], atoms, ids, cur)
    if e[0]:
        return None if a is None else a * e[2]
    b = _expr_score(e[2], atoms, ids, cur)
    if a is None:
        return b
    if b is None:
        return a
    return a + b


def _expr_max_quality(e, atoms, ids):
    """AdditiveBiMatcher.max_quality / WrappingMatcher.max_quality of the tree (active atoms)."""
    if e.__class__ is int:
        return atoms[e].max_quality() if ids[e] is not None else None
    a = _expr_max_quality(e[1], atoms, ids)
    if e[0]:
        return None if a is None else a * e[2]
    b = _expr_max_quality(e[2], atoms, ids)
    if a is None:
        return b
    if b is None:
        return a
    return a + b


class CoordMatcher(_wm.Matcher):
    """Union of the words' matchers, summed, times the coordination factor.

    Top-k pruning with MaxScore (Turtle & Flood, "Query evaluation: strategies and
    optimizations", IP&M 1995): once the k-th best score is known, the words whose summed
    maximum contributions cannot reach it are "non-essential": documents are enumerated from
    the essential words' postings only, and the others are only skipped to, for scoring.

    Each word's matcher tree is walked flat (see :func:`_flatten`); the documents visited,
    the order of the calls that move the term matchers and the scores are those of the
    word matchers themselves.
    """

    def __init__(
        self, subs, n: int, power: float, boost: float, _flat=None, weights=None, wtotal=None
    ):
        self.n = n
        self.power = power
        self.boost = boost
        if _flat is None:
            atoms: list = []
            exprs, spans = [], []
            for m in subs:
                lo = len(atoms)
                exprs.append(_flatten(m, atoms))
                spans.append(range(lo, len(atoms)))
        else:
            atoms, exprs, spans = _flat
        self.atoms = atoms
        self.exprs = exprs
        self.word_atoms = spans  # the atoms of each word (index ranges)
        # each word's weight in the coordination factor, and the weight of all n words (see
        # CoordQuery); 1.0 each and n: matched / n
        self.weights = list(weights) if weights is not None else [1.0] * len(exprs)
        self.wtotal = float(n) if wtotal is None else wtotal
        # one atom alone on a document scores as atom.score() * its wrappers' boosts
        self.boosts: dict = {}
        for e in exprs:
            if e is not None:
                _atom_boosts(e, self.boosts)
        self.ids = [_first_id(m) for m in atoms]
        self.wids = [self._word_id(w) for w in range(len(exprs))]
        self.essential = [True] * len(exprs)
        self._minq = 0.0
        self._mq: list = []
        self._find()

    def _word_id(self, w: int):
        ids = self.ids
        best = None
        for k in self.word_atoms[w]:
            i = ids[k]
            if i is not None and (best is None or i < best):
                best = i
        return best

    def _find(self) -> None:
        best = None
        for i, ess in zip(self.wids, self.essential, strict=True):
            if ess and i is not None and (best is None or i < best):
                best = i
        self._id = best

    def _skip_word(self, w: int, target: int) -> None:
        """The word's union skip_to: every active atom skips (in tree order)."""
        atoms, ids = self.atoms, self.ids
        for k in self.word_atoms[w]:
            if ids[k] is not None:
                m = atoms[k]
                m.skip_to(target)
                ids[k] = m.id() if m.is_active() else None
        self.wids[w] = self._word_id(w)

    def is_active(self) -> bool:
        return self._id is not None

    def id(self) -> int:
        return self._id

    def reset(self) -> None:
        for m in self.atoms:
            m.reset()
        self.ids = [m.id() if m.is_active() else None for m in self.atoms]
        self.wids = [self._word_id(w) for w in range(len(self.exprs))]
        self.essential = [True] * len(self.exprs)
        self._find()

    def children(self):
        return list(self.atoms)

    def copy(self):
        flat = ([m.copy() for m in self.atoms], self.exprs, self.word_atoms)
        c = CoordMatcher(
            None,
            self.n,
            self.power,
            self.boost,
            _flat=flat,
            weights=self.weights,
            wtotal=self.wtotal,
        )
        c.essential = list(self.essential)
        c._find()
        return c

    def supports_block_quality(self) -> bool:
        return False

    def next(self):
        cur = self._id
        atoms, ids, wids = self.atoms, self.ids, self.wids
        for w, ess in enumerate(self.essential):
            if ess and wids[w] == cur:
                # the word's union next(): its atoms on the current document move on
                for k in self.word_atoms[w]:
                    if ids[k] == cur:
                        m = atoms[k]
                        m.next()
                        ids[k] = m.id() if m.is_active() else None
                wids[w] = self._word_id(w)
        self._find()
        return False

    def skip_to(self, id):
        wids = self.wids
        for w, ess in enumerate(self.essential):
            if ess and wids[w] is not None and wids[w] < id:
                self._skip_word(w, id)
        self._find()

    def _word_max_quality(self, w: int) -> float:
        return _expr_max_quality(self.exprs[w], self.atoms, self.ids)

    def max_quality(self) -> float:
        wids = self.wids
        return (
            sum(self._word_max_quality(w) for w in range(len(wids)) if wids[w] is not None)
            * self.boost
        )

    def replace(self, minquality=0):
        if not minquality:
            return self if self.is_active() else _wm.NullMatcher()
        wids = self.wids
        mq = [self._word_max_quality(w) if wids[w] is not None else 0.0 for w in range(len(wids))]
        # for score(): the collector keeps only scores above minquality, which never goes down
        self._minq = minquality
        self._mq = mq
        order = sorted(range(len(wids)), key=lambda w: mq[w])
        essential = [True] * len(wids)
        coord = self.power and self.n > 1
        acc = wacc = 0.0
        for m, w in enumerate(order, 1):
            q = mq[w] * self.boost if wids[w] is not None else 0.0
            wacc += self.weights[w]
            # a document found by none of the essential words matches at most these m words
            # of n: its coordination factor is at most that of their weight (a hair above:
            # summed in another order than the score's)
            bound = (acc + q) * (self.factor(wacc) * (1 + 1e-9) if coord and m < self.n else 1.0)
            if bound < minquality:
                acc += q
                essential[w] = False
            else:
                break
        if essential != self.essential:
            self.essential = essential
            cur = self._id
            self._find()
            if self._id is not None and cur is not None and self._id < cur:
                self.skip_to(cur)
        return self if self.is_active() else _wm.NullMatcher()

    def weight(self) -> float:
        return self.score()

    def spans(self):
        return []

    def _word_score(self, w: int, cur: int) -> float:
        ids = self.ids
        on = [k for k in self.word_atoms[w] if ids[k] == cur]
        if len(on) == 1:
            k = on[0]
            v = self.atoms[k].score()
            for b in self.boosts[k]:
                v = v * b
            return v
        return _expr_score(self.exprs[w], self.atoms, ids, cur)

    def score(self) -> float:
        cur = self._id
        wids = self.wids
        nw = len(self.exprs)
        vals: list = [None] * nw
        essential = self.essential
        if self._minq and not all(essential):
            # MaxScore at scoring time: score the essential words first; if even the
            # non-essential ones at their maximum cannot lift the document above the
            # collector's threshold, stop there and return that bound (the collector drops
            # the document, as it would drop its true score, which is lower still)
            part, matched, rest = 0.0, 0.0, 0.0
            weights = self.weights
            for w in range(nw):
                if essential[w]:
                    if wids[w] == cur:
                        vals[w] = v = self._word_score(w, cur)
                        part += v
                        matched += weights[w]
                elif wids[w] is not None:
                    rest += self._mq[w]
                    matched += weights[w]
            bound = part + rest
            if self.power and self.n > 1:
                bound *= self.factor(matched) * (1 + 1e-9)
            bound *= self.boost
            if bound <= self._minq:
                return bound
        total = 0.0
        matched = 0.0
        weights = self.weights
        for w in range(nw):
            v = vals[w]
            if v is None:
                i = wids[w]
                if i is None:
                    continue
                if i < cur:
                    self._skip_word(w, cur)
                    i = wids[w]
                    if i is None:
                        continue
                if i != cur:
                    continue
                v = self._word_score(w, cur)
            total += v
            matched += weights[w]
        if self.power and self.n > 1:
            total *= self.factor(matched)
        return total * self.boost

    def factor(self, weight: float) -> float:
        """The coordination factor of a document matching words of this summed weight."""
        return (weight / self.wtotal) ** self.power


# --------------------------------------------------------------------------------------
# Proximity as a re-scoring of the top candidates. The bonus is the score Whoosh gives
# ``Or([Phrase("body", stems, slop), Phrase("title", stems, slop)])`` (each phrase boosted)
# when it is added to a query with ``AndMaybe``: a field's phrase matches when the words occur
# in order, each 1..slop positions after the previous one (Whoosh's ``SpanNear2`` with
# ``mindist=1``), and then scores the sum of its term scores times its boost. Computing it
# only for the documents that can still reach the top lets the main query skip the others.


def _in_order_near(plists: list, slop: int) -> bool:
    """True if p1 < p2 < ... with p_i in plists[i] and 1 <= p_(i+1) - p_i <= slop."""
    ends = plists[0]
    for nxt in plists[1:]:
        new = []
        for p in nxt:
            i = bisect_left(ends, p - slop)
            if i < len(ends) and ends[i] <= p - 1:
                new.append(p)
        if not new:
            return False
        ends = new
    return True


def _tree_sum(vals: list) -> float:
    """Sum in the order of Whoosh's binary tree of matchers (``make_binary_tree``)."""
    if len(vals) == 1:
        return vals[0]
    h = len(vals) // 2
    return _tree_sum(vals[:h]) + _tree_sum(vals[h:])


def proximity_fields(settings: RankingSettings) -> tuple:
    """(field, boost) of the proximity bonus: the body, and the title with its weight."""
    return (
        ("body", settings.proximity_boost),
        ("title", settings.proximity_boost * settings.title_boost),
    )


def unwrap_deletions(m):
    """``(leaf, deleted docnums)`` of a matcher of a segment with deletions (Whoosh wraps
    every posting list in an excluding FilterMatcher), else ``(m, None)``."""
    if type(m) is _FilterMatcher and m._exclude:
        return m.child, m._ids
    return m, None


def block_ids(m) -> tuple:
    """The docnums of the current block of a W3LeafMatcher, decoded at once (Whoosh's own
    decoding sums the delta-coded ids through a generator, one call per id)."""
    ids = m._ids
    if ids is None:
        if m._data is None:
            m._read_data()
        ids = m._ids = m._data[0] if m._byteids else tuple(accumulate(m._data[0]))
    return ids


def _first_id(m):
    """``m.id()``, or None when ``m`` is exhausted. On Whoosh's on-disk leaf, the block is
    decoded by :func:`block_ids` first: Whoosh's own ``id()`` would sum its delta-coded ids
    through a generator, one call per id of the block (up to 2,048, see writer.BLOCK_LIMITS)."""
    if not m.is_active():
        return None
    leaf, _gone = unwrap_deletions(m)
    if type(leaf) is _W3Leaf:
        block_ids(leaf)
    return m.id()


def _seek(m, d: int) -> bool:
    """Move matcher ``m`` to the first posting >= ``d`` (never backwards); True if it is
    ``d``. On Whoosh's on-disk leaf matcher, whole blocks are passed on their headers and the
    block's ids are bisected (Whoosh's ``skip_to`` steps through the block one posting at a
    time: most of the time of the proximity re-scoring)."""
    # with deletions: ``d`` is a live document, the deleted ones are not looked at
    m, _gone = unwrap_deletions(m)
    if type(m) is not _W3Leaf:
        if m.is_active() and m.id() < d:
            m.skip_to(d)
        return m.is_active() and m.id() == d
    if not m.is_active():
        return False
    while m._maxid < d:
        m._next_block()
        if not m.is_active():
            return False
    ids = block_ids(m)
    i = bisect_left(ids, d, m._i)  # < the block's length: its last id (_maxid) is >= d
    m._i = i
    return ids[i] == d


# the field whose exact-form terms are re-scored on the best documents (see exact_depth)
RESCORED_EXACT_FIELD = "body_exact"


def split_exact(q, field: str = RESCORED_EXACT_FIELD) -> tuple:
    """``(query, terms)``: a word query without the ``field`` terms of its words, and those
    terms. A word query: a CoordQuery of words, or a single word, each word a Term or an Or
    of clauses (phrases and other clauses stay in place). A word's exact terms are taken out
    only when it also has a term of the stemmed field (``body`` for ``body_exact``): an exact
    form's documents have its stem at the same position, so the query's documents stay the
    same. Anything else, or no such term, gives ``(q, [])``."""
    stem_field = field.removesuffix("_exact")

    def word(w):
        if type(w) is not _wq.Or or w.boost != 1:
            return w, []
        keep, gone = [], []
        for c in w.subqueries:
            (gone if type(c) is _wq.Term and c.fieldname == field else keep).append(c)
        if not gone or not any(type(c) is _wq.Term and c.fieldname == stem_field for c in keep):
            return w, []
        return _wq.Or(keep), gone

    if isinstance(q, CoordQuery):
        words, terms = [], []
        for w in q.subqueries:
            w2, gone = word(w)
            words.append(w2)
            terms += gone
        return (CoordQuery(words, q.power, q.boost, q.idf_power), terms) if terms else (q, [])
    return word(q)


def _by_segment(searcher, want: list):
    """``(segment searcher, docnum offset, reader, local docnums)`` of each segment holding
    some of the sorted global docnums ``want``."""
    for sub, offset in searcher.leaf_searchers():
        reader = sub.reader()
        end = offset + reader.doc_count_all()
        local = [d - offset for d in want if offset <= d < end]
        if local:
            yield sub, offset, reader, local


def exact_bonus(searcher, pairs: list, mults: dict, terms: list) -> dict:
    """Global docnum -> the scores of ``terms`` (Whoosh Terms, with their boosts) on each
    document of ``pairs``, summed and multiplied by the document's multiplier (``mults``:
    coordination factor times the query's boost, from topk.top_docs)."""
    out: dict = {}
    want = sorted({d for _sc, d in pairs})
    if not want or not terms:
        return out
    context = searcher.context()
    for sub, offset, reader, local in _by_segment(searcher, want):
        for t in terms:
            if (t.fieldname, t.text) not in reader:
                continue
            # the bare posting list (a boost would wrap it, and _seek would step through it)
            m = _wq.Term(t.fieldname, t.text).matcher(sub, context)
            boost = t.boost
            for d in local:
                if _seek(m, d):
                    v = m.score() if boost == 1 else m.score() * boost
                    g = d + offset
                    out[g] = out.get(g, 0.0) + v
    return {d: v * mults[d] for d, v in out.items()}


def proximity_bonus(searcher, docnums, stems: list, settings: RankingSettings) -> dict:
    """Global docnum -> proximity bonus, for the documents of ``docnums`` that have one."""
    out: dict = {}
    if not docnums or len(stems) < 2:
        return out
    want = sorted(set(docnums))
    fields_ = proximity_fields(settings)
    slop = settings.proximity_slop
    for sub, offset, reader, local in _by_segment(searcher, want):
        per_field = []
        for f, boost in fields_:
            f = positions_field(reader.schema, f)
            if f not in reader.schema:
                continue
            ms = []
            for t in stems:
                if (f, t) not in reader:
                    break
                ms.append(_wq.Term(f, t).matcher(sub))
            else:
                # rarest word first: most documents fail on it
                order = sorted(range(len(ms)), key=lambda i: reader.doc_frequency(f, stems[i]))
                per_field.append((ms, order, boost))
        if not per_field:
            continue
        for d in local:
            bonus = None
            for ms, order, boost in per_field:
                ok = True
                for i in order:
                    if not _seek(ms[i], d):
                        ok = False
                        break
                if not ok:
                    continue
                if not _in_order_near([list(m.value_as("positions")) for m in ms], slop):
                    continue
                v = _tree_sum([m.score() for m in ms]) * boost
                bonus = v if bonus is None else bonus + v
            if bonus is not None:
                out[d + offset] = bonus
    return out
