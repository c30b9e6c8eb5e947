"""oimsearch: French full-text search over archives of press releases and news.

Library first: :mod:`oimsearch.indexer` builds and updates an index, :mod:`oimsearch.searcher`
runs ranked queries; both return dataclasses that the CLI renders. This module stays light
(no Whoosh, Rich or unidecode import) so that ``oimsearch --help`` starts fast.
"""

import sys as _sys
import types as _types

__version__ = "0.1.0"

__all__ = ["__version__"]


def _defer_module(name: str, *functions: str) -> None:
    """Run module ``name`` only when one of its names is first used.

    Whoosh imports two English-language modules oimsearch never uses, and both compile
    regular expressions as they are imported: ``whoosh.lang.morph_en`` (word variations, for
    the ``Variations`` query; about 50 patterns, 5 ms of every cold ``oimsearch query``,
    measured 2026-11-24) and ``whoosh.lang.porter`` (the Porter stemmer, about 1 ms). A
    stand-in module takes the name in ``sys.modules``: ``functions`` are small functions
    that call the real ones (Whoosh imports them by name at its own import), any other name
    is looked up in the real module, run on first use. The stand-in stays in place, so
    every name keeps pointing to one object (pickle finds a function where it looks)."""
    if name in _sys.modules:
        return
    stub = _types.ModuleType(name, f"Stand-in for {name}, which runs on first use.")
    loaded: list = []

    def real():
        if not loaded:
            import importlib
            import importlib.machinery
            import importlib.util

            parent = importlib.import_module(name.rpartition(".")[0])
            spec = importlib.machinery.PathFinder.find_spec(name, parent.__path__)
            module = importlib.util.module_from_spec(spec)
            spec.loader.exec_module(module)
            loaded.append(module)
        return loaded[0]

    def __getattr__(attr):
        if attr.startswith("__"):  # the import system's probes (__path__, ...) stay cheap
            raise AttributeError(attr)
        return getattr(real(), attr)

    for fname in functions:

        def call(*args, _fname=fname, **kwargs):
            return getattr(real(), _fname)(*args, **kwargs)

        call.__module__, call.__name__, call.__qualname__ = name, fname, fname
        setattr(stub, fname, call)
    stub.__getattr__ = __getattr__
    stub._oimsearch_loaded = loaded  # [the real module] once it has run (tests look)
    _sys.modules[name] = stub


_defer_module("whoosh.lang.morph_en", "variations")
_defer_module("whoosh.lang.porter", "stem")
