"""The exception classes of audio2vec: one root, one class per kind of failure."""

from __future__ import annotations


class Audio2VecError(Exception):
    """Root of every error audio2vec raises on purpose."""


class DecodeError(Audio2VecError):
    """A file or waveform cannot be used as audio (empty, truncated, not audio, silent, ...).

    The message always starts with the file name (or ``<waveform>``) and then the reason, on one
    line: control characters in either (a newline in a file name) are shown as Python escapes
    (``\\n``). ``source`` and ``reason`` keep the raw text.
    """

    def __init__(self, source: object, reason: str):
        self.source = str(source)
        self.reason = reason
        super().__init__(f"{one_line(self.source)}: {one_line(reason)}")

    def __reduce__(self):  # picklable, so that it crosses from an indexing worker process
        return type(self), (self.source, self.reason)


def one_line(text: str) -> str:
    """``text`` with every non-printable character (newline, tab, ESC, U+2028, undecodable
    file-name bytes) written as its Python escape, so that it prints as one safe line."""
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() else c.encode("unicode_escape", "backslashreplace").decode("ascii") for c in text)


class ParameterError(Audio2VecError):
    """A setting or argument is out of range or inconsistent with another."""


class IndexMismatchError(Audio2VecError):
    """An index was built with other model or feature settings than the ones asked for."""


class IndexNotFoundError(Audio2VecError):
    """No index exists at the given location."""


class IndexLockedError(Audio2VecError):
    """Another process is writing to the index (only one writer at a time; readers are never blocked)."""


def result_or_raise(result):
    """``result``, or raise it when it is an exception: the per-item error of a batched call
    (e.g. :meth:`~search_engine.audio2vec.Encoder.embed_spectrograms`)."""
    if isinstance(result, BaseException):
        raise result
    return result
