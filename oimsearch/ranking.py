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
    # "or": any word may match, with a coordination bonus (documents with all the words
    # first); "and": every word must match
    operator: str = "or"
    coord: float = 0.3
    shared_idf: bool = True
    exact: bool = True
    proximity: bool = True
    proximity_boost: float = 0.5
    proximity_slop: int = 4
    acronyms: bool = True
    acronym_boost: float = 0.7
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
