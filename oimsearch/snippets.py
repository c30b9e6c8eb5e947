"""Snippets: passages of the stored text with the matched words located.

Offsets come from the analyzer's tokenizer on the raw stored text, so a highlight covers
exactly what the document says (``l’OIM`` highlights ``OIM``'s whole token, an unaccented
query highlights the accented word). Offsets are Python ``str`` indices (code points),
half-open, sorted, merged, relative to the snippet's ``text``, which is an exact substring of
the stored field (``offset`` places it there; ``cut_start``/``cut_end`` say whether it was cut).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from oimsearch.analysis import may_stem_to, surface_keys, term_head, token_matches, traced_terms

_APOS = re.compile("['\u2019\u02bc\u2018\u201b\u2032\u00b4`]")


@dataclass
class Snippet:
    """A window of a stored field; ``highlights`` are [start, end) offsets in ``text``."""

    field: str
    text: str
    offset: int
    cut_start: bool
    cut_end: bool
    highlights: list[list[int]] = field(default_factory=list)

    def to_dict(self) -> dict:
        return {
            "field": self.field,
            "text": self.text,
            "offset": self.offset,
            "cut_start": self.cut_start,
            "cut_end": self.cut_end,
            "highlights": [list(h) for h in self.highlights],
        }


@dataclass
class MatchSpec:
    """What to highlight: stemmed terms, exact terms, folded prefixes."""

    stems: set[str] = field(default_factory=set)
    exact: set[str] = field(default_factory=set)
    prefixes: set[str] = field(default_factory=set)
    # surface -> what _surface_hit says, shared by the fields and hits of one search (with
    # the terms it was computed for: emptied if they change)
    seen: dict = field(default_factory=dict, repr=False, compare=False)
    seen_for: tuple = field(default=(), repr=False, compare=False)

    def __bool__(self) -> bool:
        return bool(self.stems or self.exact or self.prefixes)


def _surface_hit(surface: str, spec: MatchSpec, heads: frozenset[str]) -> tuple[str, int] | None:
    """The query term a token with this surface matches, and how many leading characters an
    elided article takes (``l’OIM``: highlight ``OIM``); None if it matches nothing.

    Stemmed terms first, then the exact term, then the prefixes. The stemmer only runs when
    the folded surface may stem to a term of the spec (``heads``: their
    :func:`~oimsearch.analysis.term_head`); most surfaces of a text cannot."""
    exact, folded, elided = surface_keys(surface)
    hit = None
    if spec.stems and may_stem_to(folded, heads):
        stems, _ = traced_terms(surface, exact=False)
        hit = next((t for t in stems if t in spec.stems), None)
    if hit is None and exact and exact in spec.exact:
        hit = exact
    if hit is None and spec.prefixes:
        hit = next((p for p in spec.prefixes if folded.startswith(p)), None)
    if hit is None:
        return None
    cut = 0
    if elided:
        m = _APOS.search(surface)
        if m:
            cut = m.end()
    return hit, cut


def find_matches(text: str, spec: MatchSpec) -> list[tuple[int, int, str]]:
    """(start, end, term) of every token of ``text`` that the query matched.

    Tokens are the analyzer's (its tokenizer regex on the raw text, so offsets are raw);
    each distinct surface is analysed once per spec: every hit's whole body is scanned, and
    the words of a language repeat.
    """
    out: list[tuple[int, int, str]] = []
    if not text or not spec:
        return out
    key = (frozenset(spec.stems), frozenset(spec.exact), frozenset(spec.prefixes))
    if spec.seen_for != key:
        spec.seen.clear()
        spec.seen_for = key
    seen = spec.seen
    heads = frozenset(term_head(t) for t in spec.stems)
    for m in token_matches(text):
        surface = m.group()
        r = seen.get(surface, seen)
        if r is seen:
            r = seen[surface] = _surface_hit(surface, spec, heads)
        if r is not None:
            hit, cut = r
            start, end = m.span()
            out.append((start + cut, end, hit))
    return out


def _merge(spans: list[tuple[int, int]]) -> list[list[int]]:
    merged: list[list[int]] = []
    for s, e in sorted(spans):
        if merged and s <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], e)
        else:
            merged.append([s, e])
    return merged


def _cut_left(text: str, pos: int, lo: int) -> int:
    """Move ``pos`` left to a word boundary not before ``lo``."""
    if pos <= lo:
        return lo
    i = pos
    while i > lo and not text[i - 1].isspace():
        i -= 1
    return i if i > lo else pos


def _cut_right(text: str, pos: int, hi: int) -> int:
    if pos >= hi:
        return hi
    i = pos
    while i < hi and not text[i].isspace():
        i += 1
    return i


def whole_field(fieldname: str, text: str, spec: MatchSpec) -> tuple[Snippet, set[str]]:
    """The whole field as one snippet, and the set of matched terms."""
    matches = find_matches(text, spec)
    snippet = Snippet(
        field=fieldname,
        text=text,
        offset=0,
        cut_start=False,
        cut_end=False,
        highlights=_merge([(s, e) for s, e, _ in matches]),
    )
    return snippet, {t for _, _, t in matches}


def make_snippets(
    fieldname: str,
    text: str,
    spec: MatchSpec,
    max_snippets: int = 3,
    width: int = 200,
) -> tuple[list[Snippet], set[str]]:
    """Up to ``max_snippets`` passages of about ``width`` characters around matches.

    Passages are chosen greedily by the number of distinct matched terms they contain, then
    returned in text order. Also returns the set of matched terms (for ``matched_terms``).
    """
    matches = find_matches(text, spec)
    terms = {t for _, _, t in matches}
    if not matches:
        return [], terms
    n = len(text)
    candidates = []
    for i, (s, _e, _t) in enumerate(matches):
        lo = max(0, s - width // 4)
        hi = min(n, lo + width)
        inside = [m for m in matches[i:] if m[1] <= hi]
        # also count matches just before s that fit in the window
        inside += [m for m in matches[:i] if m[0] >= lo]
        distinct = len({t for _, _, t in inside})
        candidates.append((distinct, len(inside), -s, lo, hi))
    candidates.sort(reverse=True)
    chosen: list[tuple[int, int]] = []
    for _d, _c, _s, lo, hi in candidates:
        if any(not (hi <= a or lo >= b) for a, b in chosen):
            continue
        chosen.append((lo, hi))
        if len(chosen) >= max_snippets:
            break
    out = []
    for lo, hi in sorted(chosen):
        # snap to word boundaries without cutting a highlighted token
        first = (
            min(s for s, e, _ in matches if s >= lo and e <= hi)
            if any(s >= lo and e <= hi for s, e, _ in matches)
            else lo
        )
        start = _cut_left(text, lo, 0) if lo > 0 else 0
        start = min(start, first)
        if start > 0 and not text[start - 1].isspace():
            # inside a word: move to the next word start
            j = start
            while j < first and not text[j].isspace():
                j += 1
            start = j
        while start < first and text[start].isspace():
            start += 1
        end = _cut_right(text, hi, n)
        while end > start and text[end - 1].isspace():
            end -= 1
        piece = text[start:end]
        spans = [(s - start, e - start) for s, e, _ in matches if s >= start and e <= end]
        out.append(
            Snippet(
                field=fieldname,
                text=piece,
                offset=start,
                cut_start=start > 0,
                cut_end=end < n,
                highlights=_merge(spans),
            )
        )
    return out, terms
