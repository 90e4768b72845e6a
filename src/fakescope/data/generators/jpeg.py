"""In-memory JPEG round trips, to match a fake's compression history to its real source.

Real tiles cut from JPEG photographs carry that JPEG's blocking and quantisation; fakes written
straight to PNG would not, and a detector would learn "JPEG or not" instead of "generated or
not" (Grommelt et al. 2024, "Fake or JPEG?"). Each fake made from a JPEG photo's tile is therefore
encoded and decoded at the photo's estimated quality (and chroma subsampling) before being saved
losslessly like the reals.
"""

from __future__ import annotations

import io

import numpy as np
from PIL import Image


def jpeg_round_trip(pixels: np.ndarray, quality: int, subsampling: str | None = None) -> np.ndarray:
    """Encode RGB ``uint8`` pixels as JPEG at ``quality`` in memory and decode them again.

    ``subsampling`` is Pillow's ``"4:4:4"``, ``"4:2:2"`` or ``"4:2:0"``; None or ``""`` keeps
    Pillow's default for the quality. Pillow uses the IJG tables scaled to ``quality``, the same
    family that :func:`fakescope.io.jpeg.estimate_quality` matches against.
    """
    if not 1 <= quality <= 100:
        raise ValueError(f"JPEG quality must be in 1..100, got {quality}")
    options: dict[str, object] = {"quality": int(quality)}
    if subsampling:
        options["subsampling"] = subsampling
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="JPEG", **options)
    buffer.seek(0)
    with Image.open(buffer) as decoded:
        return np.asarray(decoded.convert("RGB"))
