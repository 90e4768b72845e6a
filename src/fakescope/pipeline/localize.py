"""Localizing one decoded file: the step ``fakescope localize``, the false-alarm evaluation and
the server's edits share, so each passes the file's JPEG tables and fails the same way."""

from __future__ import annotations

from fakescope.errors import InputError, ScoringError
from fakescope.io.image import LoadedImage
from fakescope.localizers.base import Localizer
from fakescope.results import Localization


def localize_loaded(localizer: Localizer, loaded: LoadedImage) -> Localization:
    """``loaded`` localized with its JPEG quantization tables (the segmentation method reads
    them). An :class:`InputError` (e.g. smaller than the method can read) and an ImportError (a
    missing package fails every file alike) pass through; any other failure of the method
    becomes a :class:`ScoringError`, so it costs one file, never a batch."""
    try:
        return localizer.localize(
            loaded.pixels, jpeg_quantization=loaded.metadata.jpeg_quantization
        )
    except (InputError, ImportError):
        raise
    except Exception as exc:
        raise ScoringError(f"the localizer failed on this image: {exc}") from exc
