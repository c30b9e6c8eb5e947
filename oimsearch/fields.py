"""Field types of the body: scored on term frequencies, positions in a twin field.

Scoring a query reads whole posting lists of the body; with positions in them, a block took
about ten times as long to decode (the positions are one pickled list per posting). So
``body`` holds term frequencies only, and ``body_pos`` the same terms with their positions,
for phrases and proximity. The body is analysed once: :class:`BodyText` keeps the analysis
with positions, and :class:`BodyPositions` (indexed next: Whoosh indexes a document's fields
in name order, and the indexer gives both the same string object) takes it.

The class names and this module's path are frozen: Whoosh pickles the schema into the index.
"""

from __future__ import annotations

from whoosh.fields import TEXT
from whoosh.formats import Positions
from whoosh.system import pack_uint

# (the body string, its analysis with positions), between the two fields of one document
_LAST_BODY: list = []


class BodyText(TEXT):
    """The body as scored: Whoosh's Frequency postings (build it with ``phrase=False``)."""

    def index(self, value, **kwargs):
        if not isinstance(value, str):
            return super().index(value, **kwargs)
        kwargs.setdefault("mode", "index")
        positions = Positions(field_boost=self.format.field_boost)
        # FieldType.index of a Positions field: (term UTF-8, frequency, weight, positions)
        items = [
            (w.encode("utf-8"), freq, weight, v)
            for w, freq, weight, v in positions.word_values(value, self.analyzer, **kwargs)
        ]
        _LAST_BODY[:] = [value, items]
        # what Whoosh's Frequency format gives for the same tokens
        return [(w, freq, weight, pack_uint(freq)) for w, freq, weight, _v in items]


class BodyPositions(TEXT):
    """The body's word positions (Whoosh's Positions postings)."""

    def index(self, value, **kwargs):
        if _LAST_BODY and _LAST_BODY[0] is value:
            items = _LAST_BODY[1]
            _LAST_BODY.clear()
            return items
        return super().index(value, **kwargs)
