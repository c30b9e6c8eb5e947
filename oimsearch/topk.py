"""Top-k evaluation of word queries, term at a time.

Whoosh scores a query document at a time: every document costs a chain of Python method calls
through the matcher tree, whatever pruning does. For the common query (words, each one a union
of per-field terms, :class:`~oimsearch.ranking.CoordQuery` over them) this module instead reads
each term's posting list block by block and scores the whole block in one comprehension, then
sums the fields and the words with dictionaries, and keeps the best documents with a heap.

The scores are the floats Whoosh's matchers compute for the same query: the same formula
(Whoosh's ``bm25``, its length byte table), the same additions and multiplications in the same
order (the word's tree of unions and boosts, then the words in order, then the coordination
factor). Phrases are read block by block too. Any matcher this module does not know is walked
document by document through its own ``score()``, so any query tree under a word is scored
right, only more slowly. Queries of another shape (AND, NOT) return None: the caller uses
Whoosh's collector.

Documents are taken by the set of query words they match, the sets with the highest bound
first; once a set's bound is below the k-th best score, the remaining sets are only counted,
so the total is exact. When every atom of a query of 2 to 8 words is a BM25 leaf, the
postings are read without scoring them, and only the documents of the sets that reach the
floor are scored (on the codes queries, the slowest 50 matched 907,397 documents and scored
110,488 of them; warm p95 20.3 -> 18.5 ms, paired in one process).
"""

from __future__ import annotations

from array import array
from heapq import nlargest
from itertools import chain

from whoosh import matching as wm
from whoosh import query as wq
from whoosh.codec.whoosh3 import W3LeafMatcher
from whoosh.query.spans import SpanNear2
from whoosh.scoring import BM25FScorer

from oimsearch.ranking import (
    CoordMatcher,
    CoordQuery,
    GroupIdfScorer,
    _flatten,
    _in_order_near,
    _tree_sum,
    block_ids,
    unwrap_deletions,
)

_UNION = wm.UnionMatcher
_WRAP = wm.WrappingMatcher
_SPAN_NEAR2 = SpanNear2.SpanNear2Matcher
# word queries whose atoms are all BM25 leaves: score only the sets of words that can reach
# the top k (False: score every posting, then take the sets)
LAZY = True


def _leaf_blocks(m, values: bool = False):
    """(ids, weights) of each remaining block of a W3LeafMatcher (Whoosh's own decoding, the
    ids by :func:`oimsearch.ranking.block_ids`); with ``values``, the weights are (weight,
    value) pairs."""
    while m.is_active():
        ids = block_ids(m)
        ws = m._weights
        if ws is None:
            ws = m._data[1]
            if ws is None or isinstance(ws, float):  # all 1.0, or all one value (float32)
                ws = array("f", [1.0 if ws is None else ws]) * m._blocklength
        if values:
            if m._values is None:
                m._read_values()
            ws = list(zip(ws, m._values, strict=True))
        i = m._i
        yield (ids[i:], ws[i:]) if i else (ids, ws)
        m._i = m._blocklength
        m._next_block()


def _leaf_params(m):
    """(idf, avgfl, B, K1, length bytes, byte->length table, slow length) of a Whoosh BM25
    leaf, or None for another matcher or scorer."""
    if type(m) is not W3LeafMatcher:
        return None
    sc = m.scorer
    if type(sc) is not BM25FScorer and type(sc) is not GroupIdfScorer:
        return None
    lengths = getattr(sc.dfl, "lengths", None)
    if lengths is None:
        return None
    return (sc.idf, sc.avgfl, sc.B, sc.K1, *lengths)


def _bm25_at(params, d: int, tf: float) -> float:
    """bm25() of whoosh.scoring for one posting, with the document's length as Whoosh reads it."""
    idf, avgfl, b, k1, lens, table, slow = params
    fl = table[lens[d]] if d < len(lens) and lens[d] else slow(d)
    return idf * ((tf * (k1 + 1)) / (tf + k1 * ((1 - b) + b * fl / avgfl)))


# (avgfl, B, K1) -> (length table, its length terms): the same for every leaf of a field
_NORMS: dict = {}


class _Bm25:
    """bm25() of whoosh.scoring for the postings of one leaf, with its length term computed
    once per length byte: idf * ((tf * (K1 + 1)) / (tf + K1 * ((1 - B) + B * fl / avgfl)))."""

    __slots__ = ("params", "idf", "lens", "norm", "kp1", "some_zero")

    def __init__(self, params):
        idf, avgfl, b, k1, lens, table, _slow = params
        self.params = params
        self.idf = idf
        self.lens = lens
        key = (avgfl, b, k1)
        found = _NORMS.get(key)
        if found is None or found[0] is not table:
            if len(_NORMS) >= 64:
                _NORMS.clear()
            found = _NORMS[key] = (table, [k1 * ((1 - b) + b * fl / avgfl) for fl in table])
        self.norm = found[1]
        self.kp1 = k1 + 1
        self.some_zero = 0 in lens  # never for a field a document has a posting in

    def values(self, ids, tfs, boost: float) -> list:
        """score * boost of each posting (score * 1.0 is the score: no multiplication)."""
        idf, lens, norm, kp1 = self.idf, self.lens, self.norm, self.kp1
        pairs = zip(ids, tfs, strict=True)
        if max(ids) < len(lens) and not (self.some_zero and not all(lens[d] for d in ids)):
            if boost == 1:
                return [idf * ((tf * kp1) / (tf + norm[lens[d]])) for d, tf in pairs]
            return [idf * ((tf * kp1) / (tf + norm[lens[d]])) * boost for d, tf in pairs]
        # a document past the column or with a zero length byte: Whoosh's own length
        params = self.params
        if boost == 1:
            return [_bm25_at(params, d, tf) for d, tf in pairs]
        return [_bm25_at(params, d, tf) * boost for d, tf in pairs]


def _bm25_leaf(m, boost: float) -> dict | None:
    """docnum -> score * boost of a Whoosh BM25 leaf over its whole posting list, or None
    if ``m`` is not one whose scorer this module can reproduce."""
    params = _leaf_params(m)
    if params is None:
        return None
    bm25 = _Bm25(params)
    out: dict = {}
    for ids, ws in _leaf_blocks(m):
        out.update(zip(ids, bm25.values(ids, ws, boost), strict=True))
    return out


def _phrase_scores(m, boost: float) -> dict | None:
    """docnum -> score * boost of Whoosh's phrase matcher (``SpanNear2Matcher``, ordered):
    the documents whose words occur in order, each 1..slop positions after the previous one
    (``ranking._in_order_near``), scored as the sum of the words' BM25 scores over Whoosh's
    binary tree of intersections (``ranking._tree_sum``). The words' posting lists are read
    block by block and only the documents having every word get their positions decoded;
    Whoosh's span matcher walks every candidate through several method calls per word.
    None if ``m`` is another matcher or its words are not plain posting lists."""
    if type(m) is not _SPAN_NEAR2 or not m.ordered or m.mindist != 1:
        return None
    words = []
    for tm in m.ms:
        tm, gone = unwrap_deletions(tm)
        params = _leaf_params(tm)
        if params is None:
            return None
        postings: dict = {}
        for ids, ws in _leaf_blocks(tm, values=True):
            postings.update(zip(ids, ws, strict=True))
        if gone:
            postings = {d: v for d, v in postings.items() if d not in gone}
        words.append((postings, params, tm.format.decoder("positions")))
    docs = set(words[0][0])
    for postings, _p, _dec in words[1:]:
        docs &= postings.keys()
    slop = m.slop
    out: dict = {}
    for d in docs:
        plists = [dec(postings[d][1]) for postings, _p, dec in words]
        if not _in_order_near(plists, slop):
            continue
        scores = [_bm25_at(params, d, postings[d][0]) for postings, params, _dec in words]
        v = _tree_sum(scores) * m.boost  # the span wrapper's own boost (1.0)
        out[d] = v if boost == 1 else v * boost
    return out


def _walk(m, boost: float) -> dict:
    """docnum -> score * boost of any matcher, document by document."""
    out: dict = {}
    while m.is_active():
        v = m.score()
        out[m.id()] = v if boost == 1 else v * boost
        m.next()
    return out


def _atom_scores(m, boost: float = 1.0) -> dict:
    leaf, gone = unwrap_deletions(m)
    if gone is not None:
        inner = _bm25_leaf(leaf, boost)
        if inner is not None:
            return {d: v for d, v in inner.items() if d not in gone}
    found = _bm25_leaf(m, boost)
    if found is None:
        found = _phrase_scores(m, boost)
    return found if found is not None else _walk(m, boost)


def _expr_scores(e, atoms, leaf=_atom_scores) -> dict:
    """docnum -> value of an expression of :func:`oimsearch.ranking._flatten`; ``leaf(atom,
    boost)`` gives an atom's scores."""
    if e.__class__ is int:
        return leaf(atoms[e], 1.0)
    if e[0]:  # a boost: child * boost
        if e[1].__class__ is int:  # of a leaf: multiplied as each score is computed
            return leaf(atoms[e[1]], e[2])
        boost = e[2]
        return {d: v * boost for d, v in _expr_scores(e[1], atoms, leaf).items()}
    a = _expr_scores(e[1], atoms, leaf)
    b = _expr_scores(e[2], atoms, leaf)
    if len(a) < len(b):  # merge the smaller into the larger, keeping a + b in that order
        for d, v in a.items():
            w = b.get(d)
            b[d] = v if w is None else v + w
        return b
    for d, v in b.items():
        w = a.get(d)
        a[d] = v if w is None else w + v
    return a


class _TopK:
    """The best documents seen so far: (score, global docnum) pairs, ties at the floor kept."""

    def __init__(self, limit: int, multipliers: bool = False):
        self.limit = limit
        self.items: list = []
        # the limit-th best score once `limit` documents are in: a document scoring below it
        # cannot enter (not even on a tie, which the docnum would break)
        self.floor = float("-inf")
        # global docnum -> what its words' scores were multiplied by (coordination factor
        # times the query's boost), for the documents that entered
        self.mults: dict | None = {} if multipliers else None

    def add(self, scored: dict, offset: int, mult: float = 1.0) -> None:
        if not scored or not self.limit:
            return
        items, limit = self.items, self.limit
        if len(items) + len(scored) >= limit:
            floor = nlargest(limit, chain([v for v, _d in items], scored.values()))[-1]
            if floor > self.floor:
                self.floor = floor
                items = [vd for vd in items if vd[0] >= floor]
        floor = self.floor
        new = [(v, d + offset) for d, v in scored.items() if v >= floor]
        if self.mults is not None:
            self.mults.update((d, mult) for _v, d in new)
        items += new
        self.items = items

    def best(self) -> list:
        self.items.sort(key=lambda vd: (-vd[0], vd[1]))
        return self.items[: self.limit]


def _coord_sum(ws: list, f: float, boost: float, docs) -> dict:
    """docnum -> CoordMatcher.score of documents matched by exactly the words ``ws``:
    ((0.0 + w1 + w2 + ...) * factor) * boost, the words in query order."""
    if len(ws) == 1:
        (a,) = ws
        if f == 1 and boost == 1:
            return {d: a[d] for d in docs}
        return {d: a[d] * f * boost for d in docs}
    if len(ws) == 2:
        a, b = ws
        return {d: (a[d] + b[d]) * f * boost for d in docs}
    if len(ws) == 3:
        a, b, c = ws
        return {d: (a[d] + b[d] + c[d]) * f * boost for d in docs}
    return {d: sum(w[d] for w in ws) * f * boost for d in docs}


class _Postings:
    """A BM25 leaf read but not scored: docnum -> term frequency (deleted documents left
    out), and an upper bound of its scores (the largest of Whoosh's block qualities: BM25 of
    the block's largest frequency and shortest length)."""

    __slots__ = ("tfs", "bm25", "bound", "direct")

    def __init__(self, m, params):
        m, gone = unwrap_deletions(m)
        tfs: dict = {}
        bound = 0.0
        quality = m.scorer.block_quality
        last = -1
        for ids, ws in _leaf_blocks(m):
            q = quality(m)  # the matcher is still on this block
            if q > bound:
                bound = q
            tfs.update(zip(ids, ws, strict=True))
            last = ids[-1]
        if gone:
            if len(gone) < len(tfs):
                for d in gone:
                    tfs.pop(d, None)
            else:
                tfs = {d: tf for d, tf in tfs.items() if d not in gone}
        self.tfs = tfs
        self.bm25 = bm25 = _Bm25(params)
        self.bound = bound
        # every posting's length byte is in the column and not zero: the scores can be
        # computed in one expression (else _Bm25.values checks and falls back per call)
        self.direct = last < len(bm25.lens) and not bm25.some_zero

    @staticmethod
    def params_of(m):
        """The BM25 parameters of a leaf this class can read (deletions: the filtered leaf)."""
        return _leaf_params(unwrap_deletions(m)[0])

    def scores(self, docs, boost: float) -> dict:
        """docnum -> score * boost for the documents of ``docs`` in this leaf: the floats of
        :func:`_bm25_leaf` (the same expression, ``_Bm25.values``)."""
        tfs = self.tfs
        common = tfs.keys() & docs
        if not common:
            return {}
        if self.direct:
            bm = self.bm25
            idf, lens, norm, kp1 = bm.idf, bm.lens, bm.norm, bm.kp1
            if boost == 1:
                return {d: idf * (((tf := tfs[d]) * kp1) / (tf + norm[lens[d]])) for d in common}
            return {
                d: idf * (((tf := tfs[d]) * kp1) / (tf + norm[lens[d]])) * boost for d in common
            }
        common = list(common)
        vals = self.bm25.values(common, list(map(tfs.__getitem__, common)), boost)
        return dict(zip(common, vals, strict=True))


def _expr_bound(e, leaves) -> float:
    """An upper bound of an expression's value on any document."""
    if e.__class__ is int:
        return leaves[e].bound
    if e[0]:
        return _expr_bound(e[1], leaves) * e[2]
    return _expr_bound(e[1], leaves) + _expr_bound(e[2], leaves)


def _expr_atoms(e, out: list) -> list:
    if e.__class__ is int:
        out.append(e)
    elif e[0]:
        _expr_atoms(e[1], out)
    else:
        _expr_atoms(e[1], out)
        _expr_atoms(e[2], out)
    return out


def _score_words_lazily(m, top: _TopK, offset: int, allowed):
    """:func:`_score_segment` for a query of 2 to 8 words whose atoms are all BM25 leaves,
    scoring only the documents of the sets of words whose bound reaches the floor (most
    documents of a query of common words are in sets that cannot). None: not such a query.

    The bounds come from Whoosh's block qualities instead of the words' best scores, so
    they are looser; the scores are the same floats."""
    atoms, exprs = m.atoms, m.exprs
    live = [e for e in exprs if e is not None]
    if not 2 <= len(live) <= 8:
        return None
    weights = [w for e, w in zip(exprs, m.weights, strict=True) if e is not None]
    params = [_Postings.params_of(a) for a in atoms]
    if any(p is None for p in params):
        return None
    leaves = [_Postings(a, p) for a, p in zip(atoms, params, strict=True)]
    keys = []
    for e in live:
        ks = set()
        for i in _expr_atoms(e, []):
            ks.update(leaves[i].tfs)
        if allowed is not None:
            ks = {d for d in ks if d + offset in allowed}
        keys.append(ks)
    weights = [w for w, ks in zip(weights, keys, strict=True) if ks]
    live = [e for e, ks in zip(live, keys, strict=True) if ks]
    keys = [ks for ks in keys if ks]
    if not keys:
        return 0
    boost = m.boost
    # a hair above each bound: a bound is a float computed another way than the scores
    best = [_expr_bound(e, leaves) * (1 + 1e-9) for e in live]

    def scored(idx, docs):
        return [_expr_scores(live[i], leaves, lambda p, b: p.scores(docs, b)) for i in idx]

    return _take_sets(keys, best, _set_factor(m, weights), boost, top, offset, scored)


def _take_sets(keys: list, best: list, factor, boost: float, top: _TopK, offset: int, scored):
    """Add to ``top`` the documents of each set of words whose bound reaches its floor, best
    bound first (``scored(idx, docs)``: the scores of the words ``idx`` on ``docs``); the
    number of documents matching any word. The sets partition those documents: when every
    set was taken, their sizes add up to it; else it is the union of the words' documents."""
    counted = 0
    for bound, idx, f in _sets_by_bound(best, factor, boost):
        if bound < top.floor:
            break
        docs = _set_docs(keys, idx)
        if docs:
            counted += len(docs)
            top.add(_coord_sum(scored(idx, docs), f, boost, docs), offset, f * boost)
    else:
        return counted
    return len(set().union(*keys))


def _set_factor(m, weights: list):
    """The coordination factor of CoordMatcher ``m`` for a document matching exactly the
    words ``idx`` (indexes into ``weights``, the weights of the words taken, in word
    order): their weights summed in word order, as ``CoordMatcher.score`` sums them."""
    if not (m.power and m.n > 1):
        return lambda idx: 1.0

    def factor(idx):
        w = 0.0
        for i in idx:
            w += weights[i]
        return m.factor(w)

    return factor


def _sets_by_bound(best: list, factor, boost: float) -> list:
    """(bound, word indexes, coordination factor) of every non-empty set of words, highest
    bound first."""
    sets = []
    for mask in range(1, 1 << len(best)):
        idx = [i for i in range(len(best)) if mask >> i & 1]
        bound = 0.0
        for i in idx:
            bound += best[i]
        f = factor(idx)
        sets.append((bound * f * boost, idx, f))
    sets.sort(key=lambda bs: -bs[0])
    return sets


def _set_docs(keys: list, idx: list) -> set:
    """The documents matched by exactly the words ``idx``.

    Each step makes a new set (``a & b``, ``a - b``), never an in-place one: CPython's
    ``a -= b`` walks all of ``b`` unless ``b`` is 8 times larger, where ``a - b`` walks the
    smaller side, and a copy of the first word's set is not needed."""
    inside = sorted((keys[i] for i in idx), key=len)
    docs = inside[0] & inside[1] if len(inside) > 1 else inside[0]
    for ks in inside[2:]:
        docs = docs & ks
    for i, ks in enumerate(keys):
        if i not in idx and docs:
            docs = docs - ks
    return docs if docs is not inside[0] else set(docs)


def _score_segment(m, top: _TopK, offset: int, allowed) -> int:
    """Score a segment's matcher into ``top``; the number of documents it matches (within
    ``allowed`` global docnums, when given).

    A word query's documents are taken by the set of words they match, from the set with
    the highest possible score (the words' best scores summed, times the coordination
    factor) down; once that bound is below the floor of ``top``, no document of the
    remaining sets can enter it, and they are only counted."""
    if isinstance(m, CoordMatcher):
        if LAZY:
            counted = _score_words_lazily(m, top, offset, allowed)
            if counted is not None:
                return counted
        atoms, exprs, boost = m.atoms, m.exprs, m.boost
        weights = m.weights
        factor = m.factor if m.power and m.n > 1 else None
    else:
        atoms = []
        exprs, weights, boost, factor = [_flatten(m, atoms)], [1.0], 1.0, None
    words = [
        (_expr_scores(e, atoms), w) for e, w in zip(exprs, weights, strict=True) if e is not None
    ]
    if allowed is not None:
        words = [({d: v for d, v in s.items() if d + offset in allowed}, w) for s, w in words]
    words = [sw for sw in words if sw[0]]
    if not words:
        return 0
    weights = [w for _s, w in words]
    words = [s for s, _w in words]
    # CoordMatcher.score: 0.0, plus each word's score on the document in word order, times
    # the coordination factor of the words' summed weight, times the boost. Scores are >= 0,
    # so the sum of the words a document has is that sum, and it grows with each word's
    # score: summing the words' best scores the same way bounds it.
    set_factor = _set_factor(m, weights) if factor is not None else (lambda idx: 1.0)
    if len(words) == 1:
        (a,) = words
        f = set_factor([0])
        top.add(
            a if f == 1 and boost == 1 else {d: v * f * boost for d, v in a.items()},
            offset,
            f * boost,
        )
        return len(a)
    keys = [w.keys() for w in words]
    if len(words) > 8:  # too many sets of words to list: score every document
        every = set().union(*keys)
        for f, scored in _all_coord(words, weights, factor, boost, every).items():
            top.add(scored, offset, f * boost)
        return len(every)
    best = [max(w.values()) for w in words]
    return _take_sets(
        keys, best, set_factor, boost, top, offset, lambda idx, _docs: [words[i] for i in idx]
    )


def _all_coord(words: list, weights: list, factor, boost: float, docs) -> dict:
    """Coordination factor -> {docnum: CoordMatcher.score} of the documents ``docs``, each
    scored over all the words (``factor``: the factor of a summed weight; None: 1.0)."""
    out: dict = {}
    pairs = list(zip(words, weights, strict=True))
    for d in docs:
        total, matched = 0.0, 0.0
        for w, wt in pairs:
            v = w.get(d)
            if v is not None:
                total += v
                matched += wt
        f = factor(matched) if factor is not None else 1.0
        scored = out.get(f)
        if scored is None:
            scored = out[f] = {}
        scored[d] = total * f * boost
    return out


def top_docs(searcher, q, limit: int, flt=None, multipliers: bool = False):
    """``(pairs, total)``: the ``limit`` best (score, global docnum), best first (ties by
    docnum), and the exact number of matching documents; None when ``q`` is not a word query
    (then Whoosh's own collector runs it). With ``multipliers``, ``(pairs, total, mults)``:
    mults maps each docnum of pairs to what its words' summed scores were multiplied by (the
    coordination factor of the words it matched, times the query's boost)."""
    if not isinstance(q, (CoordQuery, wq.Or, wq.Term)):
        return None
    allowed = searcher._filter_to_comb(flt) if flt is not None else None
    # the context Whoosh's search_with_collector gives: the same matcher trees (on a small
    # index a union may be an ArrayUnionMatcher, walked document by document)
    context = searcher.context()
    top = _TopK(limit, multipliers)
    total = 0
    for sub, offset in searcher.leaf_searchers():
        m = q.matcher(sub, context)
        if not m.is_active():
            continue
        total += _score_segment(m, top, offset, allowed)
    if multipliers:
        best = top.best()
        mults = top.mults
        return best, total, {d: mults[d] for _v, d in best}
    return top.best(), total
