"""oimsearch: French full-text search over archives of press releases and news.

Library first: :mod:`oimsearch.indexer` builds and updates an index, :mod:`oimsearch.searcher`
runs ranked queries; both return dataclasses that the CLI renders. This module stays light
(no Whoosh, Rich or unidecode import) so that ``oimsearch --help`` starts fast.
"""

__version__ = "0.1.0"

__all__ = ["__version__"]
