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

from dataclasses import asdict, dataclass, fields
from math import log

from whoosh import scoring
from whoosh.scoring import BM25FScorer, WeightingModel, WeightScorer

# Fields whose IDF is shared: each field maps to the group it belongs to.
FIELD_GROUPS = {
    "title": ("title", "body"),
    "body": ("title", "body"),
    "title_exact": ("title_exact", "body_exact"),
    "body_exact": ("title_exact", "body_exact"),
}


@dataclass(frozen=True)
class RankingSettings:
    """Weights and feature switches (defaults chosen on the dev halves, see bench/README.md)."""

    k1: float = 1.2
    b: float = 0.75
    title_b: float = 0.5
    title_boost: float = 2.0
    exact_boost: float = 0.5
    # "or": any word may match, scores times (matched words / words) ** coord, so that
    # documents with all the words come first; "and": every word must match
    operator: str = "or"
    coord: float = 0.3
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
    acronyms: bool = True
    acronym_boost: float = 0.35
    fuzzy: bool = True
    fuzzy_boost: float = 0.5

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


class SharedIdfBM25(WeightingModel):
    """BM25 per field, one IDF per field group (see module docstring)."""

    def __init__(self, settings: RankingSettings):
        self.settings = settings
        self._idf_cache: dict[tuple[tuple[str, ...], str], float] = {}

    def supports_block_quality(self) -> bool:
        return True

    def group_idf(self, searcher, fieldname: str, text) -> float:
        group = FIELD_GROUPS.get(fieldname, (fieldname,))
        key = (group, text)
        cached = self._idf_cache.get(key)
        if cached is not None:
            return cached
        parent = searcher.get_parent()
        n = 0
        for f in group:
            if f in parent.schema:
                n = max(n, parent.doc_frequency(f, text))
        value = bm25_idf(n, parent.doc_count_all())
        self._idf_cache[key] = value
        return value

    def scorer(self, searcher, fieldname: str, text, qf: int = 1):
        if not searcher.schema[fieldname].scorable:
            return WeightScorer.for_(searcher, fieldname, text)
        b = self.settings.title_b if fieldname.startswith("title") else self.settings.b
        sc = BM25FScorer(searcher, fieldname, text, b, self.settings.k1, qf=qf)
        # replace the per-field IDF by the group IDF, then recompute the max quality
        sc.idf = self.group_idf(searcher, fieldname, text)
        ti = searcher.term_info(fieldname, text)
        sc._maxquality = sc._score(ti.max_weight(), ti.min_length())
        return sc


# --------------------------------------------------------------------------------------
# True BM25F (Robertson & Zaragoza, "The Probabilistic Relevance Framework: BM25 and
# Beyond", 2009, §3.3): for one query word, the term frequencies of every field are length-
# normalised per field, weighted, summed into one pseudo-frequency, saturated once and
# multiplied by one IDF. Whoosh's own BM25F instead saturates and weights each field apart.

from whoosh import matching as _wm  # noqa: E402
from whoosh import query as _wq  # noqa: E402


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

    factor = (matched / n) ** power: documents with all the words come first when
    ``power`` is large, partial matches are kept after them.
    """

    def __init__(self, subqueries, power: float, boost: float = 1.0):
        self.subqueries = list(subqueries)
        self.power = power
        self.boost = boost

    def __repr__(self) -> str:
        return f"CoordQuery({self.subqueries!r}, power={self.power})"

    def __str__(self) -> str:
        return "(" + " OR ".join(str(q) for q in self.subqueries) + f")~coord{self.power:g}"

    def __eq__(self, other) -> bool:
        return type(other) is type(self) and self.subqueries == other.subqueries

    def __hash__(self) -> int:
        return hash(tuple(self.subqueries))

    def is_leaf(self) -> bool:
        return False

    def children(self):
        return iter(self.subqueries)

    def apply(self, fn):
        return CoordQuery([fn(q) for q in self.subqueries], self.power, self.boost)

    def estimate_size(self, ixreader) -> int:
        return sum(q.estimate_size(ixreader) for q in self.subqueries)

    def matcher(self, searcher, context=None):
        subs = []
        for q in self.subqueries:
            m = q.matcher(searcher, context)
            if m.is_active():
                subs.append(m)
        if not subs:
            return _wm.NullMatcher()
        return CoordMatcher(subs, len(self.subqueries), self.power, self.boost)


class CoordMatcher(_UnionMatcher):
    """Union of the words' matchers, summed, times the coordination factor.

    Top-k pruning with MaxScore (Turtle & Flood, "Query evaluation: strategies and
    optimizations", IP&M 1995): once the k-th best score is known, the words whose summed
    maximum contributions cannot reach it are "non-essential": documents are enumerated from
    the essential words' postings only, and the others are only skipped to, for scoring.
    """

    def __init__(self, subs, n: int, power: float, boost: float):
        self.n = n
        self.power = power
        self.boost = boost
        super().__init__(subs)

    def copy(self):
        c = CoordMatcher([m.copy() for m in self.subs], self.n, self.power, self.boost)
        c.essential = list(self.essential)
        c._find()
        return c

    def max_quality(self) -> float:
        return sum(m.max_quality() for m in self.subs if m.is_active()) * self.boost

    def replace(self, minquality=0):
        if not minquality:
            return self if self.is_active() else _wm.NullMatcher()
        order = sorted(
            range(len(self.subs)),
            key=lambda i: self.subs[i].max_quality() if self.subs[i].is_active() else 0.0,
        )
        essential = [True] * len(self.subs)
        acc = 0.0
        for i in order:
            m = self.subs[i]
            q = m.max_quality() * self.boost if m.is_active() else 0.0
            if acc + q < minquality:
                acc += q
                essential[i] = False
            else:
                break
        if essential != self.essential:
            self.essential = essential
            cur = self._id
            self._find()
            if self._id is not None and cur is not None and self._id < cur:
                self.skip_to(cur)
        return self if self.is_active() else _wm.NullMatcher()

    def score(self) -> float:
        total = 0.0
        matched = 0
        for m in self._at_current():
            total += m.score()
            matched += 1
        if self.power and self.n > 1:
            total *= (matched / self.n) ** self.power
        return total * self.boost
