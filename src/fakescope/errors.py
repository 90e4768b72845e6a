"""Typed errors. Every error fakescope raises on bad input derives from :class:`FakescopeError`."""

from __future__ import annotations

from typing import Any


class FakescopeError(Exception):
    """Base class for all errors raised by fakescope."""


class InputError(FakescopeError, ValueError):
    """A file could not be turned into pixels. ``kind`` is a short machine-readable tag."""

    kind = "input_error"

    def __init__(self, message: str, path: str | None = None) -> None:
        self.message = message
        self.path = path
        super().__init__(f"{path}: {message}" if path else message)

    def __reduce__(self) -> tuple[Any, ...]:
        # The default reduce re-calls __init__ with the formatted text only, which loses ``path``
        # (and prefixes it twice once re-raised); errors cross process boundaries in batch scans.
        return (type(self), (self.message, self.path))


class EmptyFileError(InputError):
    kind = "empty_file"


class FileTooLargeError(InputError):
    kind = "file_too_large"


class UnsupportedFormatError(InputError):
    """The bytes are not an image in a format fakescope reads (sniffed, not from the extension)."""

    kind = "unsupported_format"


class CorruptImageError(InputError):
    kind = "corrupt_image"


class TruncatedImageError(CorruptImageError):
    kind = "truncated_image"


class ImageTooLargeError(InputError):
    """More pixels than the configured limit: a guard against decompression bombs."""

    kind = "image_too_large"


class ImageTooSmallError(InputError):
    """Decoded fine, but smaller than the detector can analyse (e.g. a spectrum needs rings)."""

    kind = "image_too_small"


class UnreadableInputError(InputError):
    """The path is missing or cannot be read as a file (permissions, a folder, a device, ...)."""

    kind = "unreadable"


class ModelError(FakescopeError):
    """A model or detector directory is missing, incomplete or inconsistent."""


class ScoringError(FakescopeError):
    """The model raised on an image that decoded fine; the scan reports it as that file's row."""

    kind = "scoring_error"


class NotFittedError(FakescopeError, RuntimeError):
    """A detector was asked to predict before ``fit`` or ``load``."""


class WeightsMissingError(ModelError):
    """Pretrained weights are not in the local cache (or fail their SHA-256 check).

    The message names the exact ``fakescope weights fetch NAME`` command that installs them;
    fakescope never downloads weights on its own during a scan or a fit.
    """


class WeightsFetchError(ModelError):
    """``fakescope weights fetch`` could not download, find or verify the weights file."""
