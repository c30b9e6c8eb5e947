"""Parse, expand and run ranked queries; build result objects.

The user's query is parsed by Whoosh's query parser against a *surface* schema (words are
tokenized but not analysed), then every word is expanded into the index fields: stemmed and
folded ``title``/``body`` for recall, ``title_exact``/``body_exact`` (accents and forms as
typed) for precision, plus, when enabled, the long form of an acronym the corpus defines, and
nearest vocabulary words for a word absent from the index (typo fallback). Scoring is BM25
with one IDF per field group (:mod:`oimsearch.ranking`). Results are dataclasses; rendering
is elsewhere.
"""

from __future__ import annotations

import fnmatch
import os
import re
import time
from dataclasses import dataclass, field, replace
from pathlib import Path

from oimsearch.errors import (
    DocumentNotFoundError,
    IndexFormatError,
    QuerySyntaxError,
    UsageError,
)
from oimsearch.ranking import CoordQuery, RankingSettings, WordQuery, make_weighting
from oimsearch.schema import check_analyzer, positions_field, read_manifest, resolve_index_dir
from oimsearch.snippets import MatchSpec, Snippet, make_snippets, whole_field

MAX_QUERY_CHARS = 4000
MIN_PREFIX = 2
OPEN_RETRIES = 6
# Up to this many documents, the total is counted exactly (an unscored second pass).
EXACT_TOTAL_MAX_DOCS = 5_000


@dataclass
class Hit:
    """One ranked document of a :class:`SearchResult` (``rank`` counts from 1)."""

    rank: int
    score: float
    id: str
    path: str | None
    title: str | None
    snippets: list[Snippet] = field(default_factory=list)
    matched_terms: list[dict] = field(default_factory=list)
    date: str | None = None
    place: str | None = None

    def to_dict(self) -> dict:
        return {
            "rank": self.rank,
            "score": round(self.score, 4),
            "id": self.id,
            "path": self.path,
            "title": self.title,
            "snippets": [s.to_dict() for s in self.snippets],
            "matched_terms": self.matched_terms,
        }


@dataclass
class SearchResult:
    """What :meth:`Searcher.search` returns: the query echo, the total and one page of hits."""

    query: str
    parsed_query: str
    index: dict
    offset: int
    limit: int
    total: int
    total_relation: str
    hits: list[Hit]
    suggestion: str | None = None
    fuzzy: bool = False
    expansions: dict = field(default_factory=dict)
    elapsed_ms: float = 0.0


@dataclass
class Document:
    """A whole stored document, as :meth:`Searcher.document` returns it."""

    id: str
    path: str | None
    title: str
    body: str
    date: str | None
    place: str | None
    url: str | None
    meta: dict

    def to_dict(self) -> dict:
        return {
            "id": self.id,
            "path": self.path,
            "title": self.title,
            "date": self.date,
            "place": self.place,
            "url": self.url,
            "meta": self.meta,
            "body": self.body,
        }


@dataclass
class IndexStats:
    """What :meth:`Searcher.stats` reports about an index."""

    path: str
    documents: int
    files: int
    terms: int
    size_bytes: int
    analyzer: str
    format: int
    oimsearch: str
    created: float
    updated: float
    roots: list[str]
    segments: int
    top_places: list[tuple[str, int]]
    acronyms: dict[str, list[str]]
    # distinct titles / documents with a title (None: not known, see Manifest.title_ratio)
    title_ratio: float | None = None

    def to_dict(self) -> dict:
        return {
            "path": self.path,
            "documents": self.documents,
            "files": self.files,
            "terms": self.terms,
            "size_bytes": self.size_bytes,
            "analyzer": self.analyzer,
            "format": self.format,
            "oimsearch": self.oimsearch,
            "created": self.created,
            "updated": self.updated,
            "roots": self.roots,
            "segments": self.segments,
            "title_ratio": self.title_ratio,
            "top_places": [{"place": p, "documents": n} for p, n in self.top_places],
            "acronyms": self.acronyms,
        }


# --------------------------------------------------------------------------------------
# parsing


def _surface_schema():
    from whoosh.fields import TEXT, Schema

    from oimsearch.analysis import FrenchTokenizer

    an = FrenchTokenizer()
    # a word the tokenizer splits (porte-parole, COVID-19) is searched as a phrase
    mt = "phrase"
    return Schema(
        text=TEXT(analyzer=an, multitoken_query=mt),
        title=TEXT(analyzer=an, multitoken_query=mt),
        body=TEXT(analyzer=an, multitoken_query=mt),
    )


_PARSER_CACHE: dict = {}


def _parser(operator: str):
    key = operator
    p = _PARSER_CACHE.get(key)
    if p is not None:
        return p
    from whoosh.qparser import AndGroup, OrGroup, QueryParser, plugins

    group = AndGroup if operator == "and" else OrGroup
    # Whoosh's default plugins but SingleQuotePlugin (l'OIM is a word, not a quote),
    # RangePlugin and BoostPlugin, listed rather than removed after the fact so that their
    # patterns are not compiled at all: a cold query builds this parser
    p = QueryParser(
        "text",
        _surface_schema(),
        plugins=[
            plugins.FieldsPlugin(),
            plugins.WildcardPlugin(),
            plugins.PhrasePlugin(),
            plugins.GroupPlugin(),
            plugins.OperatorsPlugin(),
            plugins.EveryPlugin(),
            plugins.FuzzyTermPlugin(),
            # -word / +word only at the start of a word: "porte-parole" and " - " stay literal
            plugins.PlusMinusPlugin(
                plusexpr=r"(?<![^\s(])\+(?=[^\s+\-])", minusexpr=r"(?<![^\s(])-(?=[^\s+\-])"
            ),
        ],
        group=group,
    )
    _PARSER_CACHE[key] = p
    return p


_CTRL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")
# a chunk of the query (between spaces) that Whoosh's syntax cannot touch: letters, digits
# and apostrophes only (no field, wildcard, phrase, group, fuzzy, +/- or boost character)
_PLAIN_CHUNK = re.compile(r"(?:[^\W_]|['\u2019])+")
_OPERATOR_WORDS = frozenset({"AND", "OR", "NOT", "ANDNOT", "ANDMAYBE"})


def _plain_words_tree(clean: str, operator: str):
    """The tree Whoosh's parser builds for a query of plain words, without the parser; None
    if any chunk has syntax in it or is not exactly one token of the tokenizer.

    A cold query of plain words then neither imports ``whoosh.qparser`` nor builds the
    parser (their patterns): about 20 million instructions, 3% of a cold ``oimsearch query``.
    The tree is the parser's: one ``Term`` of the surface field ``text`` per distinct word,
    in order, with the word's offsets, under ``Or`` (``And`` for ``--operator and``), or the
    word alone; a test compares both on generated queries.
    """
    from whoosh import query as Q

    from oimsearch.analysis import token_spans

    terms: list = []
    seen: set = set()
    for m in re.finditer(r"\S+", clean):
        word = m.group()
        if word in _OPERATOR_WORDS or not _PLAIN_CHUNK.fullmatch(word):
            return None
        spans = list(token_spans(word))
        if len(spans) != 1 or spans[0][:2] != (0, len(word)):
            return None
        if word not in seen:
            seen.add(word)
            terms.append(Q.Term("text", word))
            terms[-1].startchar, terms[-1].endchar = m.span()
    if len(terms) == 1:
        return terms[0]
    return (Q.And if operator == "and" else Q.Or)(terms)


def parse_user_query(text: str, operator: str = "or"):
    """Parse the user's syntax into a tree over the surface fields text/title/body."""
    if len(text) > MAX_QUERY_CHARS:
        raise QuerySyntaxError(
            f"query is {len(text)} characters long (at most {MAX_QUERY_CHARS})",
            hint="shorten the query",
        )
    # "?" ends questions far more often than it means "one character": never a wildcard
    clean = _CTRL.sub(" ", text).replace("?", " ")
    if not clean.strip():
        raise QuerySyntaxError("empty query", hint='give at least one word, e.g. "titre de séjour"')
    tree = _plain_words_tree(clean, operator)
    if tree is not None:
        return tree
    try:
        return _parser(operator).parse(clean)
    except Exception as e:  # the parser is lenient; anything left is a syntax problem
        raise QuerySyntaxError(
            f"cannot parse query: {e}", hint="check quotes and parentheses"
        ) from e


# --------------------------------------------------------------------------------------
# expansion to index fields


@dataclass
class _Ctx:
    """State shared while one query is expanded into index fields."""

    settings: RankingSettings
    searcher: object
    acronyms: dict
    spec: MatchSpec = field(default_factory=MatchSpec)
    fuzzy: dict = field(default_factory=dict)
    acronym_hits: dict = field(default_factory=dict)
    words: list = field(default_factory=list)  # (surface, stems) of plain words, in order
    text: str = ""  # the query as typed (the parser's character offsets point into it)


def _fields_for(fieldname: str) -> tuple[str, ...]:
    if fieldname == "title":
        return ("title",)
    if fieldname == "body":
        return ("body",)
    return ("title", "body")


def _boost(f: str, s: RankingSettings) -> float:
    return s.title_boost if f == "title" else 1.0


def _in_vocab(searcher, fields: tuple[str, ...], stem: str) -> bool:
    return any(searcher.doc_frequency(f, stem) > 0 for f in fields)


def _fuzzy_variants(searcher, fields, stem: str) -> list[str]:
    """Nearest vocabulary stems: edit distance 1 from 5 letters, 2 from 9, first letter fixed."""
    n = len(stem)
    if n < 5 or not stem.isalpha():
        return []
    maxdist = 2 if n >= 9 else 1
    found: dict[str, int] = {}
    for f in fields:
        reader = searcher.reader()
        for t in reader.terms_within(f, stem, maxdist, prefix=1):
            if isinstance(t, bytes):
                t = t.decode("utf-8")
            if t != stem:
                found[t] = max(found.get(t, 0), searcher.doc_frequency(f, t))
    best = sorted(found.items(), key=lambda kv: (-kv[1], kv[0]))
    return [t for t, _ in best[:3]]


def _word_parts(stem: str, exact: list[str], fields, s: RankingSettings):
    """(field, term, weight) of one query word: its stem, and its exact forms on the twins."""
    parts = [(f, stem, _boost(f, s)) for f in fields]
    parts += [
        (f + "_exact", e, _boost(f, s) * s.exact_boost)
        for e in exact
        for f in fields
        if s.exact_body or f == "title"
    ]
    return parts


def _stem_clauses(stem: str, exact: list[str], fields, s: RankingSettings, boost: float = 1.0):
    """The clauses scoring one stem: one true-BM25F word, or one Whoosh term per field."""
    from whoosh import query as Q

    parts = _word_parts(stem, exact, fields, s)
    if not s.bm25f:
        return [Q.Term(f, t, boost=w * boost) for f, t, w in parts]
    bs = {"title": s.title_b, "title_exact": s.title_b, "body": s.b, "body_exact": s.b}
    idf_terms = [(f, stem) for f in fields]
    if s.title_separate and len(fields) > 1:
        groups = [
            [p for p in parts if p[0].startswith("title")],
            [p for p in parts if not p[0].startswith("title")],
        ]
    else:
        groups = [parts]
    return [WordQuery(g, idf_terms, s.k1, bs, stem, boost=boost) for g in groups]


def _word_query(surface: str, fields: tuple[str, ...], ctx: _Ctx):
    from whoosh import query as Q

    from oimsearch.analysis import terms

    s = ctx.settings
    stems = terms(surface)
    if not stems:
        return None  # a stop word
    exact = terms(surface, exact=True) if (s.exact and s.exact_boost > 0) else []
    ctx.words.append((surface, stems))
    ctx.spec.exact.update(exact)
    clauses = []
    for i, stem in enumerate(stems):
        ctx.spec.stems.add(stem)
        if s.fuzzy and not _in_vocab(ctx.searcher, fields, stem):
            variants = _fuzzy_variants(ctx.searcher, fields, stem)
            if variants:
                ctx.fuzzy[surface] = variants
                for v in variants:
                    ctx.spec.stems.add(v)
                    clauses += _stem_clauses(v, [], fields, s, boost=s.fuzzy_boost)
        # exact forms pair with stems one to one; otherwise they all go with the first stem
        if len(exact) == len(stems):
            ex = exact[i : i + 1]
        else:
            ex = exact if i == 0 else []
        clauses += _stem_clauses(stem, ex, fields, s)
    if s.acronyms and ctx.acronyms:
        forms = ctx.acronyms.get(surface.strip().upper())
        if forms and (surface.isupper() or len(surface) <= 5):
            for form in forms[:2]:
                fstems = terms(form)
                if len(fstems) >= 2:
                    ctx.acronym_hits.setdefault(surface, []).append(form)
                    ctx.spec.stems.update(fstems)
                    for f in fields:
                        pf = positions_field(ctx.searcher.schema, f)
                        clauses.append(Q.Phrase(pf, fstems, boost=_boost(f, s) * s.acronym_boost))
    if not clauses:
        return None
    if len(clauses) == 1:
        return clauses[0]
    return Q.Or(clauses)


def _expand(node, ctx: _Ctx):
    from whoosh import query as Q

    from oimsearch.analysis import fold_fragment, stem_word, terms

    s = ctx.settings
    if node is Q.NullQuery:
        return None
    if isinstance(node, Q.FuzzyTerm):
        fields = _fields_for(node.fieldname)
        stems = terms(node.text)
        if not stems:
            return None
        subs = []
        for stem in stems:
            ctx.spec.stems.add(stem)
            for f in fields:
                subs.append(
                    Q.FuzzyTerm(f, stem, boost=_boost(f, s), maxdist=node.maxdist, prefixlength=1)
                )
        return Q.Or(subs)
    if isinstance(node, Q.Term):
        return _word_query(node.text, _fields_for(node.fieldname), ctx)
    if isinstance(node, Q.Phrase):
        fields = _fields_for(node.fieldname)
        stems = []
        for w in node.words:
            stems.extend(terms(w))
        if not stems:
            return None
        ctx.spec.stems.update(stems)
        if len(stems) == 1:
            return Q.Or([Q.Term(f, stems[0], boost=_boost(f, s)) for f in fields])
        schema = ctx.searcher.schema
        return Q.Or(
            [
                Q.Phrase(positions_field(schema, f), stems, slop=node.slop, boost=_boost(f, s))
                for f in fields
            ]
        )
    if isinstance(node, Q.Prefix):
        frag = fold_fragment(node.text)
        if len(frag) < MIN_PREFIX:
            raise QuerySyntaxError(
                f"prefix {node.text!r}* is too short",
                hint=f"give at least {MIN_PREFIX} letters before *",
            )
        ctx.spec.prefixes.add(frag)
        fields = _fields_for(node.fieldname)
        subs = [Q.Prefix(f, frag, boost=_boost(f, s)) for f in fields]
        # the stemmer may have cut indexed words below the fragment (réfugiés -> refug):
        # also try the stem of the fragment, and the fragment as typed on the exact fields
        stem = stem_word(frag) if frag.isalpha() else frag
        if stem != frag and len(stem) >= max(MIN_PREFIX, 3):
            subs += [Q.Prefix(f, stem, boost=_boost(f, s) * 0.8) for f in fields]
        exact = fold_fragment(node.text, exact=True)
        if exact and s.exact:
            subs += [
                Q.Prefix(f + "_exact", exact, boost=_boost(f, s) * s.exact_boost) for f in fields
            ]
        return Q.Or(subs)
    if isinstance(node, Q.Wildcard):
        raw = node.text
        if raw[:1] in ("*", "?"):
            raise QuerySyntaxError(
                f"wildcard {raw!r} starts with a wildcard",
                hint="put at least two letters before * or ?",
            )
        parts = re.split(r"([*?])", raw)
        frag = "".join(p if p in ("*", "?") else fold_fragment(p) for p in parts)
        lead = re.split(r"[*?]", frag)[0]
        if len(lead) < MIN_PREFIX:
            raise QuerySyntaxError(
                f"wildcard {raw!r} is too broad", hint="put at least two letters before * or ?"
            )
        ctx.spec.prefixes.add(lead)
        return Q.Or([Q.Wildcard(f, frag, boost=_boost(f, s)) for f in _fields_for(node.fieldname)])
    if isinstance(node, Q.Not):
        inner = _expand(node.query, ctx)
        return Q.Not(inner) if inner is not None else None
    if isinstance(node, Q.AndNot):
        a = _expand(node.a, ctx)
        spec_before = MatchSpec(set(ctx.spec.stems), set(ctx.spec.exact), set(ctx.spec.prefixes))
        b = _expand(node.b, ctx)
        ctx.spec = spec_before  # excluded words are not highlighted
        if a is None:
            return None
        return Q.AndNot(a, b) if b is not None else a
    if isinstance(node, Q.AndMaybe):
        a = _expand(node.a, ctx)
        b = _expand(node.b, ctx)
        if a is None:
            return b
        return Q.AndMaybe(a, b) if b is not None else a
    if isinstance(node, (Q.And, Q.Or)):
        positive, negative = [], []
        subs = node.subqueries
        if s.question_words:
            subs = _without_question_words(subs, ctx.text)
        for sub in subs:
            if isinstance(sub, Q.Not):
                saved = MatchSpec(set(ctx.spec.stems), set(ctx.spec.exact), set(ctx.spec.prefixes))
                e = _expand(sub.query, ctx)
                ctx.spec = saved
                if e is not None:
                    negative.append(e)
                continue
            e = _expand(sub, ctx)
            if e is not None:
                positive.append(e)
        if not positive:
            return None
        if isinstance(node, Q.And):
            q = positive[0] if len(positive) == 1 else Q.And(positive)
        else:
            q = (
                positive[0]
                if len(positive) == 1
                else CoordQuery(positive, power=s.coord, idf_power=s.coord_idf)
            )
        if negative:
            q = Q.AndNot(q, negative[0] if len(negative) == 1 else Q.Or(negative))
        return q
    if isinstance(node, Q.Every):
        return Q.Every()  # a lone *: every document
    raise QuerySyntaxError(f"unsupported query element: {node!r}")


def _without_question_words(subs: list, text: str) -> list:
    """``subs`` without the free words that are interrogatives (``quand``, ``combien``...,
    ranking.QUESTION_WORDS), unless nothing else would be searched. A word given a field
    (``title:quand``), quoted (``"quand"``: the parser's term starts after a quote in
    ``text``), or excluded stays."""
    from whoosh import query as Q

    from oimsearch.analysis import fold_fragment, terms
    from oimsearch.ranking import QUESTION_WORDS

    def plain(q) -> bool:
        start = getattr(q, "startchar", None)
        quoted = start is not None and text[start - 1 : start] == '"'
        return type(q) is Q.Term and q.fieldname == "text" and not quoted

    keep = [q for q in subs if not (plain(q) and fold_fragment(q.text) in QUESTION_WORDS)]
    # something left to search: a word that is not a stop word, or any other clause
    if len(keep) < len(subs) and any(
        not isinstance(q, Q.Not) and (not plain(q) or terms(q.text)) for q in keep
    ):
        return keep
    return subs


def _with_bonus(pairs: list, bonus: dict) -> list:
    """(score, docnum) pairs with each document's bonus added, best first (ties by docnum)."""
    if not bonus:
        return pairs
    pairs = [(sc + bonus[d], d) if d in bonus else (sc, d) for sc, d in pairs]
    pairs.sort(key=lambda r: (-r[0], r[1]))
    return pairs


def _proximity_stems(ctx: _Ctx) -> list[str] | None:
    """The query's stems, in order, when the proximity bonus applies (2 to 8 of them)."""
    s = ctx.settings
    stems = []
    for _surface, st in ctx.words:
        for t in st:
            if t not in stems:
                stems.append(t)
    if not s.proximity or len(stems) < 2 or len(stems) > 8:
        return None
    return stems


def _proximity_clause(stems: list[str], s: RankingSettings, schema):
    """``proximity_depth=0``: the bonus as a phrase-with-slop clause over every match."""
    from whoosh import query as Q

    from oimsearch.ranking import proximity_fields

    return Q.Or(
        [
            Q.Phrase(positions_field(schema, f), stems, slop=s.proximity_slop, boost=b)
            for f, b in proximity_fields(s)
        ]
    )


# --------------------------------------------------------------------------------------
# the searcher


class Searcher:
    """An open index, ready for many queries (the CLI opens one per command)."""

    # word queries are scored term at a time (oimsearch.topk); False: Whoosh's collector
    term_at_a_time = True

    def __init__(self, index_dir: str | os.PathLike, settings: RankingSettings | None = None):
        from whoosh import index as windex

        from oimsearch.mmapstore import MappedStorage, memoize_terms

        self.index_dir = Path(index_dir)
        self.settings = settings or RankingSettings()
        # An index run may commit (or a rebuild switch names) while we open: re-read the
        # manifest and retry a few times before calling the index damaged.
        for attempt in range(OPEN_RETRIES):
            self.manifest = read_manifest(self.index_dir)
            check_analyzer(self.manifest, self.index_dir)
            try:
                storage = MappedStorage(str(self.index_dir))
                self.ix = windex.FileIndex(storage, indexname=self.manifest.indexname)
                # the reader re-reads the TOC: a rebuild may remove the old name in between
                self.searcher = self.ix.searcher(weighting=make_weighting(self.settings))
                memoize_terms(self.searcher.reader())
                break
            except Exception as e:
                if attempt + 1 < OPEN_RETRIES:
                    time.sleep(0.05 * (attempt + 1))
                    continue
                raise IndexFormatError(
                    f"cannot open index {self.index_dir}: {type(e).__name__}: {e}",
                    hint="run `oimsearch index --rebuild PATH`",
                ) from e
        self._by_scoring: dict[tuple, object] = {_scoring_key(self.settings): self.searcher}

    def __enter__(self) -> Searcher:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        try:
            for srch in self._by_scoring.values():
                srch.close()
        finally:
            self.ix.close()

    def _searcher_for(self, s: RankingSettings):
        """A Whoosh searcher whose weighting model matches ``s`` (cached)."""
        key = _scoring_key(s)
        srch = self._by_scoring.get(key)
        if srch is None:
            from whoosh.searching import Searcher as WhooshSearcher

            # same reader (same generation, no second TOC read), another weighting model
            srch = WhooshSearcher(
                self.searcher.reader(), weighting=make_weighting(s), closereader=False
            )
            self._by_scoring[key] = srch
        return srch

    @property
    def index_info(self) -> dict:
        return {
            "path": str(self.index_dir),
            "documents": self.searcher.doc_count(),
            "analyzer": self.manifest.analyzer,
        }

    # ---- building the query -------------------------------------------------------

    def effective_settings(self, settings: RankingSettings | None = None) -> RankingSettings:
        """The settings a search uses on this index: with ``title_share``, the title's weight
        scaled by the index's title ratio (see RankingSettings); idempotent."""
        s = settings or self.settings
        ratio = self.manifest.title_ratio
        if not s.title_share or ratio is None:
            return s
        return replace(s, title_boost=s.title_boost * ratio, title_share=False)

    def build_query(self, text: str, settings: RankingSettings | None = None):
        s = self.effective_settings(settings)
        tree = parse_user_query(text, "and" if s.operator == "and" else "or")
        ctx = _Ctx(
            settings=s, searcher=self.searcher, acronyms=self.manifest.acronyms or {}, text=text
        )
        q = _expand(tree, ctx)
        if q is None:
            return None, ctx
        from whoosh import query as Q

        # a long form typed in full also matches its acronym
        if s.acronyms and ctx.acronyms and len(ctx.words) >= 2:
            extra = self._long_form_acronyms(ctx)
            if extra:
                q = Q.Or([q, *extra])
        if s.proximity_depth <= 0:
            stems = _proximity_stems(ctx)
            if stems:
                q = Q.AndMaybe(q, _proximity_clause(stems, s, self.searcher.schema))
        return q, ctx

    def _long_forms(self, stems: set) -> dict:
        """Stemmed long form (tuple) -> [(long form, acronym)], in the manifest's order.

        Only long forms whose first term is in ``stems`` are listed: any other cannot equal
        a run of the query's terms, so every run looks up the same list as in the table of
        all long forms. The indexer stores each long form analysed in the manifest: the
        long forms are then indexed by first term once per searcher. For an older manifest,
        first terms and analysed forms are kept per searcher as they are looked at, so a
        long form is analysed at most once (a fresh process used to analyse all of them,
        ~500 on a large corpus, for its first query).
        """
        from oimsearch.analysis import iter_terms, terms

        by_first = self.__dict__.get("_long_form_index")
        if by_first is None and self.manifest.acronym_terms:  # analysed at index time
            # first term -> [(stemmed long form, long form, acronym)], in the manifest's order
            analysed = self.manifest.acronym_terms
            by_first = self._long_form_index = {}
            for acr, forms in (self.manifest.acronyms or {}).items():
                for form in forms[:2]:
                    fs = analysed.get(form)
                    fs = tuple(terms(form)) if fs is None else tuple(fs)
                    if len(fs) >= 2:
                        by_first.setdefault(fs[0], []).append((fs, form, acr))
        if by_first is not None:
            table: dict = {}
            for first in stems:
                for fs, form, acr in by_first.get(first, ()):
                    table.setdefault(fs, []).append((form, acr))
            return table
        # an older manifest: first terms and analysed forms kept as they are looked at
        firsts = self.__dict__.setdefault("_long_form_first", {})
        full = self.__dict__.setdefault("_long_form_terms", {})
        table = {}
        for acr, forms in (self.manifest.acronyms or {}).items():
            for form in forms[:2]:
                first = firsts.get(form, "")
                if first == "":  # not looked at yet ("" is never a term)
                    first = firsts[form] = next(iter_terms(form), None)
                if first not in stems:
                    continue
                fs = full.get(form)
                if fs is None:
                    fs = full[form] = tuple(terms(form))
                if len(fs) >= 2:
                    table.setdefault(fs, []).append((form, acr))
        return table

    def _long_form_acronyms(self, ctx: _Ctx) -> list:
        from whoosh import query as Q

        from oimsearch.analysis import terms

        seq = [t for _s, st in ctx.words for t in st]
        table = self._long_forms(set(seq))
        found = []
        for i in range(len(seq)):
            for j in range(i + 2, min(len(seq), i + 12) + 1):
                found.extend(table.get(tuple(seq[i:j]), ()))
        out = []
        s = ctx.settings
        for form, acr in found:
            at = terms(acr)
            if not at:
                continue
            ctx.acronym_hits.setdefault(form, []).append(acr)
            ctx.spec.stems.update(at)
            for f in ("title", "body"):
                out.append(Q.Term(f, at[0], boost=_boost(f, s) * s.acronym_boost))
        return out

    def _filter(self, place, since, until, path_glob):
        from whoosh import query as Q

        from oimsearch.analysis import fold_fragment

        parts = []
        if place:
            key = " ".join(fold_fragment(w) for w in place.split()).strip()
            if not key:
                raise UsageError(f"--place {place!r} has no letters")
            parts.append(Q.Or([Q.Term("place_key", key), Q.Prefix("place_key", key + " ")]))
        if since or until:
            for name, v in (("--since", since), ("--until", until)):
                if v and not re.fullmatch(r"\d{4}(-\d{2}(-\d{2})?)?", v):
                    raise UsageError(
                        f"{name} {v!r} is not a date", hint="use YYYY, YYYY-MM or YYYY-MM-DD"
                    )
            lo = since or None
            hi = (until + "\uffff") if until else None
            parts.append(Q.TermRange("date", lo, hi))
        if path_glob:
            parts.append(_path_filter(self.searcher, path_glob))
        if not parts:
            return None
        return parts[0] if len(parts) == 1 else Q.And(parts)

    # ---- search -------------------------------------------------------------------

    def search(
        self,
        text: str,
        limit: int = 10,
        offset: int = 0,
        snippets: bool = True,
        place: str | None = None,
        since: str | None = None,
        until: str | None = None,
        path: str | None = None,
        settings: RankingSettings | None = None,
        retry_fuzzy: bool = True,
    ) -> SearchResult:
        if limit < 0 or offset < 0:
            raise UsageError("--limit and --offset must be zero or more")
        t0 = time.perf_counter()
        s = self.effective_settings(settings)
        q, ctx = self.build_query(text, s)
        flt = self._filter(place, since, until, path)
        srch = self._searcher_for(s)
        hits: list[Hit] = []
        total, relation = 0, "eq"
        parsed = str(q) if q is not None else ""
        if q is not None:
            hits, total, relation = self._run(srch, q, flt, limit, offset, ctx, snippets)
        suggestion = None
        fuzzy = bool(ctx.fuzzy)
        if total == 0:
            suggestion = self.suggest(text)
            if suggestion and retry_fuzzy and s.fuzzy and suggestion != text:
                q2, ctx2 = self.build_query(suggestion, s)
                if q2 is not None:
                    hits, total, relation = self._run(srch, q2, flt, limit, offset, ctx2, snippets)
                    if total:
                        fuzzy = True
                        parsed = str(q2)
                        ctx.fuzzy.update({"(retry)": [suggestion]})
        expansions = {}
        if ctx.fuzzy:
            expansions["fuzzy"] = ctx.fuzzy
        if ctx.acronym_hits:
            expansions["acronyms"] = ctx.acronym_hits
        return SearchResult(
            query=text,
            parsed_query=parsed,
            index=self.index_info,
            offset=offset,
            limit=limit,
            total=total,
            total_relation=relation,
            hits=hits,
            suggestion=suggestion,
            fuzzy=fuzzy,
            expansions=expansions,
            elapsed_ms=(time.perf_counter() - t0) * 1000.0,
        )

    def _run(self, srch, q, flt, limit, offset, ctx: _Ctx, snippets: bool):
        want = offset + limit
        s = ctx.settings
        # the proximity bonus re-scores the top `proximity_depth` documents (see ranking.py)
        stems = _proximity_stems(ctx) if s.proximity_depth > 0 else None
        depth = max(want, s.proximity_depth) if stems else max(want, 1)
        found = None
        if self.term_at_a_time:
            from oimsearch.ranking import exact_bonus, split_exact
            from oimsearch.topk import top_docs

            first, exact_terms = split_exact(q) if s.exact_depth > 0 else (q, [])
            if exact_terms:
                # the body's exact twin re-scores the best documents of the query without it
                found = top_docs(srch, first, max(depth, s.exact_depth), flt, multipliers=True)
                if found is not None:
                    pairs, total, mults = found
                    pairs = _with_bonus(pairs, exact_bonus(srch, pairs, mults, exact_terms))
                    found = pairs[:depth], total
            else:
                found = top_docs(srch, q, depth, flt)
        if found is not None:
            pairs, total = found
            relation = "eq"
        else:
            pairs, total, relation = self._collect(srch, q, flt, depth)
        if stems:
            from oimsearch.ranking import proximity_bonus

            pairs = _with_bonus(pairs, proximity_bonus(srch, [d for _sc, d in pairs], stems, s))
        scored = pairs[offset:want] if limit > 0 else []
        # deterministic order: score desc, then id
        rows = [(sc, srch.stored_fields(d), d) for sc, d in scored]
        rows.sort(key=lambda r: (-r[0], r[1].get("id", "")))
        hits = []
        for i, (score, stored, _docnum) in enumerate(rows):
            hit = Hit(
                rank=offset + i + 1,
                score=float(score),
                id=stored.get("id", ""),
                path=stored.get("path"),
                title=stored.get("title"),
                date=stored.get("date"),
                place=stored.get("place"),
            )
            if snippets:
                _attach_snippets(hit, stored, ctx.spec)
            hits.append(hit)
        return hits, total, relation

    def _collect(self, srch, q, flt, depth: int):
        """Whoosh's collector: the best (score, docnum) pairs, the total, "eq" or "gte"."""
        collector = srch.collector(limit=depth, filter=flt)
        srch.search_with_collector(q, collector)
        results = collector.results()
        # (score, docnum), best first; not list(results): list() asks len(), and a Whoosh
        # Results whose length is not exact counts it by running the whole query again
        pairs = [(sc, d) for sc, d in results.top_n]
        top = collector
        while hasattr(top, "child"):  # the filter wraps the top-k collector
            top = top.child
        # Once the top-k heap is full, the matchers may skip documents that cannot enter it
        # (MaxScore in CoordMatcher, Whoosh's union rewrites): the count is then a lower bound,
        # whatever Whoosh's has_exact_length() says.
        pruned = bool(getattr(top, "minscore", 0))
        if results.has_exact_length() and not pruned:
            return pairs, len(results), "eq"
        if self.searcher.doc_count_all() <= EXACT_TOTAL_MAX_DOCS:
            counted = srch.search(q, limit=None, filter=flt, scored=False)
            return pairs, len(counted), "eq"
        try:
            estimate = results.estimated_min_length()
        except ValueError:
            # Whoosh's prefix/wildcard estimate takes min() over the field's expansions
            # and fails when one field has none (e.g. `réfugi*` in no title)
            estimate = 0
        return pairs, max(estimate, len(pairs)), "gte"

    # ---- did you mean -------------------------------------------------------------

    def suggest(self, text: str) -> str | None:
        """Replace words absent from the index by the nearest indexed word (exact field)."""
        from oimsearch.analysis import terms

        words = re.findall(r"[^\W\d_][^\W_'’-]*", text)
        if not words:
            return None
        corrector = self.searcher.corrector("body_exact")
        changed = False
        out = text
        for w in words:
            exact = terms(w, exact=True)
            stems = terms(w)
            if not exact or not stems:
                continue
            if any(self.searcher.doc_frequency(f, t) for f in ("title", "body") for t in stems):
                continue
            if len(w) < 4:
                continue
            cands = corrector.suggest(exact[0], limit=1, maxdist=2 if len(w) >= 8 else 1, prefix=1)
            if cands:
                c = cands[0]
                if isinstance(c, bytes):
                    c = c.decode("utf-8")
                out = re.sub(rf"(?<!\w){re.escape(w)}(?!\w)", c, out, count=1)
                changed = True
        return out if changed else None

    # ---- documents ----------------------------------------------------------------

    def _docnum(self, doc_id: str) -> int:
        docnum = self.searcher.document_number(id=doc_id)
        if docnum is None:
            raise DocumentNotFoundError(
                f"no document with id {doc_id!r}",
                hint="ids are shown by `oimsearch query` (column 'id' in --json)",
            )
        return docnum

    def document(self, doc_id: str) -> Document:
        import json

        stored = self.searcher.stored_fields(self._docnum(doc_id))
        meta = stored.get("meta")
        try:
            meta = json.loads(meta) if meta else {}
        except ValueError:
            meta = {}
        return Document(
            id=stored.get("id", ""),
            path=stored.get("path"),
            title=stored.get("title", ""),
            body=stored.get("body", ""),
            date=stored.get("date"),
            place=stored.get("place"),
            url=stored.get("url"),
            meta=meta,
        )

    def similar(self, doc_id: str, limit: int = 10) -> SearchResult:
        """More like this: documents sharing the most distinctive terms of ``doc_id``."""
        t0 = time.perf_counter()
        docnum = self._docnum(doc_id)
        stored = self.searcher.stored_fields(docnum)
        text = (stored.get("title", "") + "\n") * 2 + stored.get("body", "")
        kts = list(self.searcher.key_terms_from_text("body", text, numterms=15))
        from whoosh import query as Q

        if not kts:
            q = None
            hits: list[Hit] = []
            total = 0
        else:
            top = kts[0][1] or 1.0
            q = Q.Or([Q.Term(f, t, boost=w / top) for t, w in kts for f in ("title", "body")])
            results = self.searcher.search(q, limit=limit + 1, mask=Q.Term("id", doc_id))
            total = max(0, results.estimated_min_length())
            spec = MatchSpec(stems={t for t, _ in kts})
            hits = []
            for h in results:
                if len(hits) >= limit:
                    break
                f = h.fields()
                hit = Hit(
                    rank=len(hits) + 1,
                    score=float(h.score),
                    id=f.get("id", ""),
                    path=f.get("path"),
                    title=f.get("title"),
                    date=f.get("date"),
                    place=f.get("place"),
                )
                _attach_snippets(hit, f, spec, max_snippets=1)
                hits.append(hit)
        return SearchResult(
            query=f"similar:{doc_id}",
            parsed_query=str(q) if q is not None else "",
            index=self.index_info,
            offset=0,
            limit=limit,
            total=total,
            total_relation="gte",
            hits=hits,
            elapsed_ms=(time.perf_counter() - t0) * 1000.0,
        )

    def stats(self, top: int = 10) -> IndexStats:
        reader = self.searcher.reader()
        n_terms = 0
        for f in ("title", "body"):
            n_terms += sum(1 for _ in reader.lexicon(f))
        places = []
        for term, info in reader.iter_field("place_key"):
            if isinstance(term, bytes):
                term = term.decode("utf-8")
            places.append((term, info.doc_frequency()))
        places.sort(key=lambda kv: (-kv[1], kv[0]))
        top_places = []
        for key, n in places[:top]:
            docnum = self.searcher.document_number(place_key=key)
            shown = key
            if docnum is not None:
                shown = self.searcher.stored_fields(docnum).get("place") or key
            top_places.append((shown, n))
        size = sum(p.stat().st_size for p in self.index_dir.iterdir() if p.is_file())
        m = self.manifest
        return IndexStats(
            path=str(self.index_dir),
            documents=self.searcher.doc_count(),
            files=m.files,
            terms=n_terms,
            size_bytes=size,
            analyzer=m.analyzer,
            format=m.format,
            oimsearch=m.oimsearch,
            created=m.created,
            updated=m.updated,
            roots=list(m.roots),
            segments=len(self.ix._segments()) if hasattr(self.ix, "_segments") else 0,
            top_places=top_places,
            acronyms=dict(m.acronyms or {}),
            title_ratio=m.title_ratio,
        )


def _scoring_key(s: RankingSettings) -> tuple:
    return (s.shared_idf, s.k1, s.b, s.title_b)


def _path_filter(searcher, glob: str):
    """Documents whose path matches a shell glob (``*`` crosses ``/``, as in ripgrep -g)."""
    from whoosh import query as Q

    rx = re.compile(fnmatch.translate(glob))
    reader = searcher.reader()
    terms = []
    for t in reader.lexicon("path"):
        if isinstance(t, bytes):
            t = t.decode("utf-8")
        if rx.match(t) or rx.match(t.rsplit("/", 1)[-1]):
            terms.append(Q.Term("path", t))
    if not terms:
        return Q.NullQuery
    return Q.Or(terms)


def _attach_snippets(hit: Hit, stored: dict, spec: MatchSpec, max_snippets: int = 3) -> None:
    title = stored.get("title") or ""
    body = stored.get("body") or ""
    matched = []
    if title:
        t, title_terms = whole_field("title", title, spec)
        if t.highlights:
            hit.snippets.append(t)
        matched += [{"field": "title", "term": term} for term in sorted(title_terms)]
    body_snips, body_terms = make_snippets("body", body, spec, max_snippets=max_snippets)
    hit.snippets.extend(body_snips)
    for term in sorted(body_terms):
        matched.append({"field": "body", "term": term})
    if not hit.snippets and body:
        # nothing to highlight (e.g. a NOT-only or a filter-only match): show the beginning
        end = min(len(body), 200)
        while end < len(body) and not body[end].isspace():
            end += 1
        hit.snippets.append(Snippet("body", body[:end], 0, False, end < len(body), highlights=[]))
    hit.matched_terms = matched


def open_searcher(index_dir=None, settings: RankingSettings | None = None) -> Searcher:
    return Searcher(resolve_index_dir(index_dir), settings=settings)


__all__ = [
    "Hit",
    "SearchResult",
    "Searcher",
    "open_searcher",
    "Document",
    "IndexStats",
]
