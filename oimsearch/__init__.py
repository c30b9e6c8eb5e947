"""oimsearch: French full-text search over archives of press releases and news.

Library first: :mod:`oimsearch.indexer` builds and updates an index, :mod:`oimsearch.searcher`
runs ranked queries; both return dataclasses that the CLI renders. This module stays light
(no Whoosh, Rich or unidecode import) so that ``oimsearch --help`` starts fast.
"""

import sys as _sys
import types as _types

__version__ = "0.1.0"

__all__ = ["__version__"]

_MORPH_EN = "whoosh.lang.morph_en"


def _defer_whoosh_morph_en() -> None:
    """Import Whoosh's English morphology module only when something uses it.

    ``whoosh.query`` imports ``whoosh.lang.morph_en`` for its ``Variations`` query (English
    word forms), and that module compiles some 50 regular expressions as it is imported:
    about 5 ms of every cold ``oimsearch query`` (measured 2026-11-24), for a feature
    oimsearch never uses. A stand-in module takes its place in ``sys.modules``; the first
    use of any of its names (``variations`` or another) imports the real module."""
    if _MORPH_EN in _sys.modules:
        return
    stub = _types.ModuleType(_MORPH_EN, "Stand-in: imports the real module on first use.")

    def real():
        if _sys.modules.get(_MORPH_EN) is stub:
            del _sys.modules[_MORPH_EN]
        import importlib

        return importlib.import_module(_MORPH_EN)

    def variations(word):
        return real().variations(word)

    def __getattr__(attr):
        if attr.startswith("__"):  # the import system's probes (__path__, ...) stay cheap
            raise AttributeError(attr)
        return getattr(real(), attr)

    stub.variations = variations
    stub.__getattr__ = __getattr__
    _sys.modules[_MORPH_EN] = stub


_defer_whoosh_morph_en()
