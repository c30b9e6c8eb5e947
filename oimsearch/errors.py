"""The one exception tree of the library.

Every error a user can cause carries a one-line message and, where useful, a hint telling
what to do. The CLI turns any :class:`OimsearchError` into ``oimsearch: error: …`` on stderr
and exit code 2 (never a traceback unless ``--debug``).
"""

from __future__ import annotations


class OimsearchError(Exception):
    """Base class: ``message`` (one line) + optional ``hint``."""

    exit_code = 2

    def __init__(self, message: str, hint: str | None = None):
        super().__init__(message)
        self.message = message
        self.hint = hint

    def one_line(self) -> str:
        text = self.message.replace("\n", " ").strip()
        if self.hint:
            text += f" ({self.hint.strip()})"
        return text


class UsageError(OimsearchError):
    """A bad argument or option value."""


class IndexNotFoundError(OimsearchError):
    """The index directory does not exist or holds no oimsearch index."""


class IndexFormatError(OimsearchError):
    """The index was built by another format or analyzer version, or is damaged."""


class IndexLockedError(OimsearchError):
    """Another process is updating the index."""


class IndexWriteError(OimsearchError):
    """The index could not be written (read-only directory, full disk, ...)."""


class QuerySyntaxError(OimsearchError):
    """The query text cannot be parsed."""


class DocumentNotFoundError(OimsearchError):
    """No document with the given id."""


class SourceError(OimsearchError):
    """A path given to ``index`` cannot be used."""
