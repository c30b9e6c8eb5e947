"""Acronyms learnt from the corpus.

At index time every document is scanned for the two definition patterns of press releases,
"Long Form (ACR)" and "ACR (Long Form)"; a pair is kept only when the acronym's letters can be
found in order in the long form, the first letter starting its first word (the test of
Schwartz & Hearst, "A simple algorithm for identifying abbreviation definitions in biomedical
text", PSB 2003). The index keeps, per acronym, its most frequent long forms; at query time an
acronym also matches its long form (as a phrase) and a long form its acronym. Nothing is
written per domain: the table is whatever the documents define.
"""

from __future__ import annotations

import re
import unicodedata

# an acronym: 2-10 characters, starting with an uppercase letter, at least two uppercase
_ACR = r"[A-ZÀ-Þ][A-Za-zÀ-ÿ0-9&-]{1,9}"
# "(ACR)": the long form is looked for in the text just before it (linear time: the
# parenthesis is found first, no backtracking over the preceding text)
_PAREN_ACR = re.compile(r"\((" + _ACR + r")\)")
_CLAUSE_END = re.compile(r"[()\n.;:!?]")
_LOOKBACK = 160
_ACR_BEFORE = re.compile(r"\b(" + _ACR + r")\s*\(([^()\n]{3,120})\)")
_WORD = re.compile(r"[^\W_]+", re.UNICODE)
MAX_LONG_FORMS = 3


def _fold(s: str) -> str:
    return "".join(
        c for c in unicodedata.normalize("NFD", s) if unicodedata.category(c) != "Mn"
    ).lower()


def is_acronym(token: str) -> bool:
    return (
        2 <= len(token) <= 10
        and token[0].isupper()
        and sum(1 for c in token if c.isupper()) >= 2
        and any(c.isalpha() for c in token)
    )


def _fits(acr: str, words: list[str]) -> bool:
    """Letters of ``acr`` appear in order in ``words``; the first at the start of words[0]."""
    letters = [c for c in _fold(acr) if c.isalnum()]
    if not letters or not words:
        return False
    text = " ".join(_fold(w) for w in words)
    if not text.startswith(letters[0]):
        return False
    # match right to left, the last letters as late as possible (Schwartz & Hearst)
    i = len(text) - 1
    for c in reversed(letters[1:]):
        while i > 0 and text[i] != c:
            i -= 1
        if i <= 0:
            return False
        i -= 1
    return True


def _shortest_fit(acr: str, words: list[str]) -> list[str] | None:
    """The shortest run of trailing words that the acronym fits, within a size limit."""
    n = len([c for c in acr if c.isalnum()])
    limit = min(len(words), n + 5, 2 * n + 2)
    for k in range(1, limit + 1):
        cand = words[-k:]
        if _fits(acr, cand) and _fold(cand[0])[0] == _fold(acr)[0]:
            # the first word must be a content word (not "de", "la", ...)
            if len(cand[0]) >= 3 or cand[0][0].isupper():
                return cand
    return None


def extract(text: str) -> list[tuple[str, str]]:
    """Acronym definitions found in ``text``: a list of (ACRONYM, long form)."""
    found: list[tuple[str, str]] = []
    seen = set()
    for m in _PAREN_ACR.finditer(text):
        acr = m.group(1)
        if not is_acronym(acr):
            continue
        before = text[max(0, m.start() - _LOOKBACK) : m.start()]
        cut = [c.end() for c in _CLAUSE_END.finditer(before)]
        if cut:
            before = before[cut[-1] :]
        words = _WORD.findall(before)
        fit = _shortest_fit(acr, words)
        if fit and len(fit) >= 2 or (fit and len(fit) == 1 and len(fit[0]) > len(acr) + 2):
            pair = (acr, " ".join(fit))
            if pair not in seen:
                seen.add(pair)
                found.append(pair)
    for m in _ACR_BEFORE.finditer(text):
        acr = m.group(1)
        if not is_acronym(acr):
            continue
        words = _WORD.findall(m.group(2))
        if 2 <= len(words) <= len(acr) + 5 and _fits(acr, words):
            pair = (acr, " ".join(words))
            if pair not in seen:
                seen.add(pair)
                found.append(pair)
    return found


def select(counts: dict[str, dict[str, int]]) -> dict[str, list[str]]:
    """Keep, per acronym, its most frequent long forms (ties by text)."""
    table: dict[str, list[str]] = {}
    for acr in sorted(counts):
        forms = sorted(counts[acr].items(), key=lambda kv: (-kv[1], kv[0]))
        table[acr] = [f for f, _ in forms[:MAX_LONG_FORMS]]
    return table
