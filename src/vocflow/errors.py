"""Exceptions raised for problems the user can fix (bad data, bad config, missing files).

Every message is one line that names the file or value at fault and what to do about it, so
Snakemake's log shows the cause without a traceback hunt (vocflow.logs writes that line to the
rule's log and stderr, and exits non-zero).
"""

from __future__ import annotations

import contextlib
import os
import pickle
import zipfile
from collections.abc import Iterator


class VocflowError(Exception):
    """Base class for errors the user can act on."""


class DataError(VocflowError):
    """The input data (a file, an array, a label) is missing or malformed."""


class ConfigError(VocflowError):
    """The configuration names something that does not exist or is inconsistent."""


# What readers raise on a missing, zero-byte, truncated or garbage file: numpy (OSError,
# ValueError, EOFError), pandas (its parser errors are ValueErrors), PIL (OSError), zip
# containers (.npz, torch checkpoints) and pickle-based formats.
READ_ERRORS: tuple[type[BaseException], ...] = (OSError, ValueError, EOFError,
                                                pickle.UnpicklingError, zipfile.BadZipFile)


def one_line(text: object, limit: int = 160) -> str:
    """``text`` on one line, whitespace collapsed, cut at ``limit`` characters."""
    flat = " ".join(str(text).split())
    return flat if len(flat) <= limit else flat[: limit - 3] + "..."


def why_unreadable(path: str | os.PathLike[str], exc: BaseException, what: str) -> str:
    """Why ``path`` (meant to be ``what``) could not be read, in words a user can act on.

    The reader's own advice is not passed on where it is wrong for us: numpy and torch suggest
    loading a pickle "unsafely", which vocflow never does.
    """
    try:
        size = os.stat(path).st_size
    except OSError:
        return "the file does not exist or cannot be opened"
    if size == 0:
        return "the file is empty (0 bytes)"
    text = str(exc)
    # torch (weights_only=True) names the class it would have to import; numpy refuses object
    # arrays. Both then advise loading "unsafely", which we never pass on.
    if "Unsupported global" in text or "Object arrays cannot be loaded" in text:
        return (f"the {what} holds Python objects besides plain arrays, which vocflow refuses "
                "to unpickle")
    if "Weights only load failed" in text:  # torch, on bytes that are no checkpoint
        return f"not a complete {what} ({size} bytes; no torch data)"
    if "pickled (object) data" in text:  # numpy, on anything without an .npy header
        return f"not a plain {what} (no header; vocflow refuses to unpickle files)"
    detail = one_line(text, 120) or type(exc).__name__
    return f"not a complete {what} ({size} bytes; {detail})"


@contextlib.contextmanager
def reading(path: str | os.PathLike[str], what: str, fix: str,
            errors: tuple[type[BaseException], ...] = READ_ERRORS) -> Iterator[None]:
    """Turn a failed read of ``path`` inside the block into one DataError line: the file, why
    it cannot be read, and ``fix`` (the command or action that rebuilds or replaces it).

    ``what`` names the expected content (".npy array", "torch checkpoint", ...); ``errors``:
    the exceptions that mean "unreadable" for this reader (a VocflowError always passes).
    """
    try:
        yield
    except VocflowError:
        raise
    except errors as exc:
        raise DataError(f"cannot read {path}: {why_unreadable(path, exc, what)}; {fix}") from exc


def rebuild(path: str | os.PathLike[str]) -> str:
    """What re-creates an output of an earlier rule."""
    return f"re-create it with: snakemake --forcerun {path}"
