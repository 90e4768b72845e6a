"""What the segmentation network reads, built in numpy: RGB plus the JPEG cue channels.

The noise-residual channels (fixed SRM kernels and learned Bayar filters) are computed inside
the network from the RGB channels, so a heat map needs only these arrays. Also here: padding to
the U-Net's stride and the JPEG round trip used to teach the network the JPEG cues.
"""

from __future__ import annotations

import io

import numpy as np

from fakescope.features.jpeg_cues import JPEG_CUE_CHANNELS, jpeg_cue_channels

#: RGB channels followed by the JPEG cue channels.
INPUT_CHANNELS = 3 + JPEG_CUE_CHANNELS
#: RGB is mapped from [0, 255] to about [-2, 2]: ``(x / 255 - MEAN) / SCALE``.
RGB_MEAN = 0.5
RGB_SCALE = 0.25


def network_input(
    image: np.ndarray, jpeg_quantization: dict[int, list[int]] | None = None
) -> np.ndarray:
    """Float32 (INPUT_CHANNELS, H, W): normalised RGB, then the JPEG cues (zeros if no tables)."""
    rgb = (image.astype(np.float32) / 255.0 - RGB_MEAN) / RGB_SCALE
    cues = jpeg_cue_channels(image, jpeg_quantization)
    return np.concatenate([rgb, cues], axis=-1).transpose(2, 0, 1).copy()


def pad_to_multiple(array: np.ndarray, multiple: int) -> np.ndarray:
    """Pad (C, H, W) at the bottom and right, reflecting, to sides divisible by ``multiple``.

    Padding at the far sides only keeps the JPEG grid where it was.
    """
    pad_y, pad_x = (-array.shape[1]) % multiple, (-array.shape[2]) % multiple
    if pad_y == 0 and pad_x == 0:
        return array
    # Reflection needs a side longer than the pad; edge replication covers tiny inputs.
    mode = "reflect" if min(array.shape[1:]) > max(pad_y, pad_x) else "edge"
    return np.pad(array, ((0, 0), (0, pad_y), (0, pad_x)), mode=mode)


def jpeg_round_trip(image: np.ndarray, quality: int) -> tuple[np.ndarray, dict[int, list[int]]]:
    """``image`` saved as a JPEG at ``quality`` and decoded: (pixels, Pillow's tables)."""
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format="JPEG", quality=int(quality))
    buffer.seek(0)
    with Image.open(buffer) as decoded:
        tables = {int(k): list(v) for k, v in decoded.quantization.items()}
        pixels = np.asarray(decoded.convert("RGB"))
    return pixels, tables
