"""Tests for the safe image loader (fakescope.io.image).

Every test image is generated here with numpy and Pillow, under ``tmp_path`` or in memory.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import pickle
import struct
import time
import zlib
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, PngImagePlugin

import fakescope.io.image as image_module
from fakescope.errors import (
    CorruptImageError,
    EmptyFileError,
    FakescopeError,
    FileTooLargeError,
    ImageTooLargeError,
    InputError,
    TruncatedImageError,
    UnreadableInputError,
    UnsupportedFormatError,
)
from fakescope.io.image import (
    ImageMetadata,
    LoadedImage,
    decode_image_bytes,
    is_image_path,
    load_image,
    read_file_bytes,
)
from fakescope.io.jpeg import _IJG_CHROMINANCE, _IJG_LUMINANCE, estimate_quality, ijg_table

try:
    import resource
except ImportError:  # not on Windows; only the memory assertion needs it
    resource = None

EXIF_ORIENTATION = 0x0112
EXIF_MAKE, EXIF_MODEL, EXIF_SOFTWARE = 0x010F, 0x0110, 0x0131
EXIF_IFD, EXIF_DATETIME_ORIGINAL = 0x8769, 0x9003
FORMATS = ("JPEG", "PNG", "GIF", "WEBP", "TIFF", "BMP")


# --------------------------------------------------------------------------- helpers


def noise(height: int = 24, width: int = 32, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8)


def smooth(height: int = 48, width: int = 64) -> np.ndarray:
    """A gradient: lossy codecs reproduce it closely, unlike noise."""
    y, x = np.mgrid[0:height, 0:width]
    return np.stack(
        [x * 255 // (width - 1), y * 255 // (height - 1), (x + y) * 255 // (width + height - 2)],
        axis=2,
    ).astype(np.uint8)


def quadrants(height: int = 32, width: int = 48) -> np.ndarray:
    """Four flat colours: an orientation stays recognisable after lossy coding."""
    out = np.empty((height, width, 3), dtype=np.uint8)
    h, w = height // 2, width // 2
    out[:h, :w] = (255, 0, 0)
    out[:h, w:] = (0, 255, 0)
    out[h:, :w] = (0, 0, 255)
    out[h:, w:] = (255, 255, 255)
    return out


def palette_frames(count: int = 3, height: int = 12, width: int = 16) -> list[np.ndarray]:
    """Frames in four colours, so that GIF's palette reproduces them exactly."""
    colours = np.array([[255, 0, 0], [0, 255, 0], [0, 0, 255], [255, 255, 0]], dtype=np.uint8)
    rng = np.random.default_rng(7)
    return [colours[rng.integers(0, 4, (height, width))] for _ in range(count)]


def encode(image: Image.Image | np.ndarray, fmt: str, **kwargs: object) -> bytes:
    if isinstance(image, np.ndarray):
        image = Image.fromarray(image)
    buffer = io.BytesIO()
    image.save(buffer, fmt, **kwargs)
    return buffer.getvalue()


def encode_animation(frames: list[np.ndarray], fmt: str, **kwargs: object) -> bytes:
    images = [Image.fromarray(frame) for frame in frames]
    buffer = io.BytesIO()
    images[0].save(buffer, fmt, save_all=True, append_images=images[1:], **kwargs)
    return buffer.getvalue()


def write(tmp_path: Path, name: str, data: bytes) -> Path:
    path = tmp_path / name
    path.write_bytes(data)
    return path


def assert_pixel_contract(loaded: LoadedImage) -> None:
    pixels = loaded.pixels
    assert isinstance(pixels, np.ndarray)
    assert pixels.ndim == 3 and pixels.shape[2] == 3
    assert pixels.dtype == np.uint8
    assert pixels.flags.c_contiguous


def mean_abs_error(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.abs(a.astype(np.int16) - b.astype(np.int16)).mean())


def png_chunk(kind: bytes, payload: bytes) -> bytes:
    return (
        struct.pack(">I", len(payload))
        + kind
        + payload
        + struct.pack(">I", zlib.crc32(kind + payload) & 0xFFFFFFFF)
    )


def crafted_png(width: int, height: int) -> bytes:
    """A valid PNG whose IHDR declares ``width`` x ``height`` but holds a few bytes of data."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + png_chunk(b"IHDR", ihdr)
        + png_chunk(b"IDAT", zlib.compress(b"\x00" * min((3 * width + 1) * height, 64)))
        + png_chunk(b"IEND", b"")
    )


# --------------------------------------------------------------------------- formats


@pytest.mark.parametrize(
    ("fmt", "kwargs"),
    [
        ("PNG", {}),
        ("BMP", {}),
        ("TIFF", {}),
        ("TIFF", {"compression": "tiff_lzw"}),
        ("TIFF", {"compression": "tiff_adobe_deflate"}),
        ("WEBP", {"lossless": True}),
    ],
    ids=["png", "bmp", "tiff", "tiff-lzw", "tiff-deflate", "webp-lossless"],
)
def test_lossless_formats_decode_exactly(tmp_path, fmt, kwargs):
    original = noise()
    path = write(tmp_path, f"image.{fmt.lower()}", encode(original, fmt, **kwargs))
    loaded = load_image(path)
    assert_pixel_contract(loaded)
    np.testing.assert_array_equal(loaded.pixels, original)
    assert loaded.metadata.format == fmt
    assert (loaded.metadata.width, loaded.metadata.height) == (32, 24)
    assert loaded.metadata.frames == 1
    assert loaded.path == str(path)


@pytest.mark.parametrize(
    ("fmt", "kwargs", "tolerance"),
    [
        ("JPEG", {"quality": 95}, 3.0),
        ("JPEG", {"quality": 95, "progressive": True}, 3.0),
        ("WEBP", {"quality": 90}, 4.0),
    ],
    ids=["jpeg", "jpeg-progressive", "webp-lossy"],
)
def test_lossy_formats_decode_approximately(tmp_path, fmt, kwargs, tolerance):
    original = smooth()
    loaded = load_image(write(tmp_path, "image.bin", encode(original, fmt, **kwargs)))
    assert_pixel_contract(loaded)
    assert loaded.pixels.shape == original.shape
    assert mean_abs_error(loaded.pixels, original) < tolerance
    assert loaded.metadata.format == fmt


def test_gif_decodes_exactly_when_colours_fit_the_palette(tmp_path):
    original = palette_frames(1)[0]
    loaded = load_image(write(tmp_path, "image.gif", encode(original, "GIF")))
    assert_pixel_contract(loaded)
    np.testing.assert_array_equal(loaded.pixels, original)
    assert loaded.metadata.format == "GIF"
    assert loaded.metadata.mode == "P"


@pytest.mark.parametrize(
    ("fmt", "kwargs"),
    [("GIF", {}), ("WEBP", {"lossless": True}), ("TIFF", {}), ("PNG", {})],
    ids=["animated-gif", "animated-webp", "multipage-tiff", "apng"],
)
def test_animations_and_multipage_files_give_their_first_frame(tmp_path, fmt, kwargs):
    frames = palette_frames(3)
    loaded = load_image(write(tmp_path, "anim.bin", encode_animation(frames, fmt, **kwargs)))
    assert_pixel_contract(loaded)
    np.testing.assert_array_equal(loaded.pixels, frames[0])
    assert loaded.metadata.frames == 3
    assert loaded.metadata.format == fmt


def test_mpo_gives_its_first_picture_with_jpeg_metadata(tmp_path):
    first, second = quadrants(), quadrants()[::-1].copy()
    buffer = io.BytesIO()
    Image.fromarray(first).save(
        buffer, "MPO", save_all=True, append_images=[Image.fromarray(second)], quality=90
    )
    loaded = load_image(write(tmp_path, "stereo.jpg", buffer.getvalue()))
    assert loaded.metadata.format == "MPO"
    assert loaded.metadata.frames == 2
    assert (loaded.metadata.jpeg_quality, loaded.metadata.jpeg_quality_exact) == (90, True)
    assert mean_abs_error(loaded.pixels, first) < 4.0


def _last_tiff_directory(data: bytes) -> int:
    offset = struct.unpack("<I", data[4:8])[0]
    while True:
        entries = struct.unpack("<H", data[offset : offset + 2])[0]
        following = struct.unpack("<I", data[offset + 2 + 12 * entries : offset + 6 + 12 * entries])
        if following[0] == 0:
            return offset
        offset = following[0]


def _cut_in_last_frame(fmt: str, data: bytes) -> bytes:
    if fmt == "GIF":  # inside the last frame's graphic control extension
        return data[: data.rfind(b"\x21\xf9") + 3]
    return data[: _last_tiff_directory(data) + 6]  # inside the last page's directory


@pytest.mark.parametrize("fmt", ["GIF", "TIFF"])
def test_damage_after_the_first_frame_still_gives_the_first_frame(fmt):
    # Counting frames walks the whole file; a broken later frame used to escape as
    # IndexError (GIF) or TypeError/SyntaxError (TIFF) after the first frame had decoded.
    frames = palette_frames(3, 32, 32)
    data = _cut_in_last_frame(fmt, encode_animation(frames, fmt))
    loaded = decode_image_bytes(data)
    np.testing.assert_array_equal(loaded.pixels, frames[0])
    assert loaded.metadata.frames == 1  # cannot be counted, documented as 1


def test_multipage_tiff_pixel_limit_counts_only_the_first_page():
    small = noise(8, 8, seed=1)
    buffer = io.BytesIO()
    later_page = Image.new("RGB", (64, 64))  # over the limit below, but never decoded
    Image.fromarray(small).save(buffer, "TIFF", save_all=True, append_images=[later_page])
    loaded = decode_image_bytes(buffer.getvalue(), max_pixels=8 * 8)
    np.testing.assert_array_equal(loaded.pixels, small)
    assert loaded.metadata.frames == 2


# --------------------------------------------------------------------------- orientation


def _expected_orientation(array: np.ndarray, orientation: int) -> np.ndarray:
    """Independent of Pillow: the EXIF 2.3 definitions of each orientation value."""
    return {
        1: lambda a: a,
        2: lambda a: a[:, ::-1],
        3: lambda a: a[::-1, ::-1],
        4: lambda a: a[::-1],
        5: lambda a: a.transpose(1, 0, 2),
        6: lambda a: np.rot90(a, -1),  # stored rotated 90 ccw: turn clockwise to view
        7: lambda a: a[::-1, ::-1].transpose(1, 0, 2),
        8: lambda a: np.rot90(a, 1),
    }[orientation](array)


@pytest.mark.parametrize("orientation", range(1, 9))
def test_exif_orientation_is_applied_exactly_on_png(tmp_path, orientation):
    original = noise(6, 10, seed=orientation)
    exif = Image.Exif()
    exif[EXIF_ORIENTATION] = orientation
    loaded = load_image(write(tmp_path, "o.png", encode(original, "PNG", exif=exif)))
    assert_pixel_contract(loaded)
    np.testing.assert_array_equal(loaded.pixels, _expected_orientation(original, orientation))
    # Metadata keeps the stored size; the pixels are upright.
    assert (loaded.metadata.width, loaded.metadata.height) == (10, 6)
    expected_shape = (10, 6, 3) if orientation >= 5 else (6, 10, 3)
    assert loaded.pixels.shape == expected_shape
    assert loaded.metadata.exif["Orientation"] == str(orientation)


@pytest.mark.parametrize("orientation", [3, 6, 8])
def test_exif_orientation_is_applied_on_jpeg(tmp_path, orientation):
    original = quadrants()
    exif = Image.Exif()
    exif[EXIF_ORIENTATION] = orientation
    data = encode(original, "JPEG", quality=95, exif=exif)
    loaded = load_image(write(tmp_path, "o.jpg", data))
    expected = _expected_orientation(original, orientation)
    assert loaded.pixels.shape == expected.shape
    assert mean_abs_error(loaded.pixels, expected) < 4.0
    if orientation == 6:
        # Stored bottom-left (blue) comes to the top-left once turned clockwise.
        assert loaded.pixels[2, 2].tolist() == pytest.approx([0, 0, 255], abs=12)
        assert loaded.pixels.shape == (48, 32, 3)


def test_tiff_orientation_tag_is_applied(tmp_path):
    original = noise(6, 10)
    data = encode(original, "TIFF", tiffinfo={EXIF_ORIENTATION: 8})
    loaded = load_image(write(tmp_path, "o.tif", data))
    np.testing.assert_array_equal(loaded.pixels, _expected_orientation(original, 8))


def raw_orientation_exif(type_code: int, count: int, value: bytes) -> bytes:
    """An EXIF block with one Orientation entry of any TIFF type, even a wrong one."""
    entry = struct.pack("<HHI", EXIF_ORIENTATION, type_code, count) + value.ljust(4, b"\x00")
    return b"Exif\x00\x00II*\x00" + struct.pack("<IH", 8, 1) + entry + struct.pack("<I", 0)


@pytest.mark.parametrize(
    "exif",
    [
        raw_orientation_exif(3, 1, struct.pack("<H", 0)),
        raw_orientation_exif(3, 1, struct.pack("<H", 9)),
        raw_orientation_exif(3, 1, struct.pack("<H", 65535)),
        raw_orientation_exif(2, 2, b"6\x00"),  # ASCII "6" instead of a SHORT
    ],
    ids=["zero", "nine", "max", "ascii"],
)
def test_invalid_orientation_values_leave_pixels_as_stored(tmp_path, exif):
    original = noise(6, 10)
    loaded = load_image(write(tmp_path, "o.png", encode(original, "PNG", exif=exif)))
    np.testing.assert_array_equal(loaded.pixels, original)


def test_malformed_exif_does_not_make_a_jpeg_unreadable(tmp_path):
    original = quadrants()
    data = encode(original, "JPEG", quality=95)
    garbage = b"Exif\x00\x00MM\x00*\x00\x00\x00\x08\xff\xff" + bytes(range(40))
    app1 = b"\xff\xe1" + struct.pack(">H", len(garbage) + 2) + garbage
    loaded = load_image(write(tmp_path, "bad-exif.jpg", data[:2] + app1 + data[2:]))
    assert_pixel_contract(loaded)
    assert loaded.pixels.shape == original.shape
    assert mean_abs_error(loaded.pixels, original) < 4.0


# --------------------------------------------------------------------------- modes


def _grey_rgb(grey: np.ndarray) -> np.ndarray:
    return np.repeat(grey[..., None], 3, axis=2).astype(np.uint8)


def _case_l() -> tuple[Image.Image, np.ndarray]:
    grey = noise()[..., 0]
    return Image.fromarray(grey, "L"), _grey_rgb(grey)


def _case_bilevel() -> tuple[Image.Image, np.ndarray]:
    bits = noise()[..., 0] > 127
    return Image.fromarray(bits).convert("1"), _grey_rgb(bits.astype(np.uint8) * 255)


def _case_la() -> tuple[Image.Image, np.ndarray]:
    grey = noise()[..., 0]
    alpha = noise(seed=1)[..., 0]
    alpha[0, 0] = 0  # fully transparent: its stored grey must survive
    return Image.fromarray(np.dstack([grey, alpha]), "LA"), _grey_rgb(grey)


def _case_rgba() -> tuple[Image.Image, np.ndarray]:
    rgb = noise()
    alpha = np.full(rgb.shape[:2], 255, dtype=np.uint8)
    alpha[:, :8] = 0  # transparent columns keep their colours
    alpha[5, 20] = 77
    return Image.fromarray(np.dstack([rgb, alpha]), "RGBA"), rgb


def _palette_image(transparency: int | None) -> tuple[Image.Image, np.ndarray]:
    palette = np.random.default_rng(3).integers(0, 256, (256, 3), dtype=np.uint8)
    indices = np.random.default_rng(4).integers(0, 256, (24, 32), dtype=np.uint8)
    if transparency is not None:
        indices[:4, :4] = transparency  # the transparent entry is used, and must keep its colour
    image = Image.fromarray(indices, "P")
    image.putpalette(palette.tobytes())
    if transparency is not None:
        image.info["transparency"] = transparency
    return image, palette[indices]


def _case_i16() -> tuple[Image.Image, np.ndarray]:
    values = np.array([[0, 128, 129, 257], [1000, 32768, 65534, 65535]], dtype=np.uint16)
    expected = np.clip(np.rint(values / 257.0), 0, 255).astype(np.uint8)
    return Image.fromarray(values), _grey_rgb(expected)


def _case_i32() -> tuple[Image.Image, np.ndarray]:
    values = np.array([[-5, 0, 257, 1285], [65535, 70000, 2**30, 514]], dtype=np.int32)
    expected = np.clip(np.rint(values / 257.0), 0, 255).astype(np.uint8)
    return Image.fromarray(values, "I"), _grey_rgb(expected)


def _case_float_unit() -> tuple[Image.Image, np.ndarray]:
    values = np.array([[0.0, 0.25, 0.5], [0.75, 0.999, 1.0]], dtype=np.float32)
    return Image.fromarray(values, "F"), _grey_rgb(np.rint(values * 255.0))


def _case_float_wide() -> tuple[Image.Image, np.ndarray]:
    values = np.array([[-3.0, 0.0, 2.0], [100.4, 254.6, 1e9], [np.nan, np.inf, -np.inf]])
    expected = np.array([[0, 0, 2], [100, 255, 255], [0, 255, 0]])
    return Image.fromarray(values.astype(np.float32), "F"), _grey_rgb(expected)


def _case_cmyk() -> tuple[Image.Image, np.ndarray]:
    inks = [(0, 0, 0, 0), (0, 0, 0, 255), (255, 0, 0, 0), (0, 255, 255, 0)]
    colours = [(255, 255, 255), (0, 0, 0), (0, 255, 255), (255, 0, 0)]
    cmyk = np.zeros((16, 64, 4), dtype=np.uint8)
    rgb = np.zeros((16, 64, 3), dtype=np.uint8)
    for i, (ink, colour) in enumerate(zip(inks, colours, strict=True)):
        cmyk[:, i * 16 : (i + 1) * 16] = ink
        rgb[:, i * 16 : (i + 1) * 16] = colour
    return Image.fromarray(cmyk, "CMYK"), rgb


def _case_pa() -> tuple[Image.Image, np.ndarray]:
    image, expected = _palette_image(None)
    alpha = np.zeros((24, 32), dtype=np.uint8)
    image = image.convert("PA")
    image.putalpha(Image.fromarray(alpha, "L"))
    return image, expected


MODE_CASES: dict[str, tuple[Callable[[], tuple[Image.Image, np.ndarray]], str, dict]] = {
    "L-png": (_case_l, "PNG", {}),
    "L-tiff": (_case_l, "TIFF", {}),
    "1-png": (_case_bilevel, "PNG", {}),
    "1-bmp": (_case_bilevel, "BMP", {}),
    "1-tiff": (_case_bilevel, "TIFF", {}),
    "LA-png": (_case_la, "PNG", {}),
    "LA-tiff": (_case_la, "TIFF", {}),
    "RGBA-png": (_case_rgba, "PNG", {}),
    "RGBA-tiff": (_case_rgba, "TIFF", {}),
    "RGBA-webp-lossless": (_case_rgba, "WEBP", {"lossless": True, "exact": True}),
    "P-png": (lambda: _palette_image(None), "PNG", {}),
    "P-bmp": (lambda: _palette_image(None), "BMP", {}),
    "P-gif": (lambda: _palette_image(None), "GIF", {}),
    "P-transparent-png": (lambda: _palette_image(5), "PNG", {}),
    "P-transparent-gif": (lambda: _palette_image(5), "GIF", {}),
    "PA-tiff": (_case_pa, "TIFF", {}),
    "I;16-png": (_case_i16, "PNG", {}),
    "I;16-tiff": (_case_i16, "TIFF", {}),
    "I-tiff": (_case_i32, "TIFF", {}),
    "F-unit-tiff": (_case_float_unit, "TIFF", {}),
    "F-wide-tiff": (_case_float_wide, "TIFF", {}),
    "CMYK-tiff": (_case_cmyk, "TIFF", {}),
}


@pytest.mark.parametrize("case", MODE_CASES, ids=list(MODE_CASES))
def test_modes_normalise_to_rgb_uint8_exactly(tmp_path, case):
    factory, fmt, kwargs = MODE_CASES[case]
    image, expected = factory()
    loaded = load_image(write(tmp_path, "mode.bin", encode(image, fmt, **kwargs)))
    assert_pixel_contract(loaded)
    assert loaded.metadata.mode == image.mode  # each case round-trips its mode
    np.testing.assert_array_equal(loaded.pixels, expected)


@pytest.mark.parametrize(
    ("case", "fmt", "kwargs", "tolerance"),
    [
        ("CMYK", "JPEG", {"quality": 95}, 3.0),
        ("L", "JPEG", {"quality": 95}, 3.0),
        ("YCbCr", "TIFF", {}, 3.0),
    ],
    ids=["CMYK-jpeg", "L-jpeg", "YCbCr-tiff"],
)
def test_lossy_or_converted_modes_normalise_approximately(tmp_path, case, fmt, kwargs, tolerance):
    if case == "CMYK":
        image, expected = _case_cmyk()
    elif case == "L":
        grey = smooth()[..., 0]
        image, expected = Image.fromarray(grey, "L"), _grey_rgb(grey)
    else:
        expected = smooth()
        image = Image.fromarray(expected).convert(case)
    path = write(tmp_path, "mode.bin", encode(image, fmt, **kwargs))
    loaded = load_image(path)
    assert_pixel_contract(loaded)
    assert loaded.metadata.mode == case
    assert loaded.pixels.shape == expected.shape
    assert mean_abs_error(loaded.pixels, expected) < tolerance


def test_alpha_is_dropped_and_the_colour_under_a_transparent_pixel_survives(tmp_path):
    rgba = np.zeros((4, 4, 4), dtype=np.uint8)
    rgba[..., :3] = (12, 200, 99)
    rgba[..., 3] = 0  # everything transparent: compositing would have painted it flat
    loaded = load_image(write(tmp_path, "clear.png", encode(Image.fromarray(rgba, "RGBA"), "PNG")))
    assert (loaded.pixels == np.array([12, 200, 99], dtype=np.uint8)).all()
    assert loaded.metadata.has_alpha


@pytest.mark.parametrize(
    ("fmt", "image", "has_alpha"),
    [
        ("PNG", Image.new("RGB", (4, 4)), False),
        ("PNG", Image.new("RGBA", (4, 4)), True),
        ("PNG", Image.new("LA", (4, 4)), True),
        ("GIF", Image.new("P", (4, 4)), False),
    ],
    ids=["rgb", "rgba", "la", "p-opaque"],
)
def test_has_alpha_flag(fmt, image, has_alpha):
    assert decode_image_bytes(encode(image, fmt)).metadata.has_alpha is has_alpha


def test_palette_transparency_sets_has_alpha():
    image, _ = _palette_image(5)
    assert decode_image_bytes(encode(image, "PNG")).metadata.has_alpha


# --------------------------------------------------------------------------- JPEG metadata


@pytest.mark.parametrize("quality", [1, 5, 10, 25, 50, 75, 90, 95, 100])
def test_jpeg_quality_is_estimated_exactly_for_ijg_tables(quality):
    loaded = decode_image_bytes(encode(smooth(), "JPEG", quality=quality))
    meta = loaded.metadata
    assert meta.jpeg_quality == quality
    assert meta.jpeg_quality_exact is True
    assert meta.jpeg_quantization is not None
    assert sorted(meta.jpeg_quantization) == [0, 1]
    assert all(len(table) == 64 for table in meta.jpeg_quantization.values())
    assert meta.jpeg_quantization[0] == ijg_table(_IJG_LUMINANCE, quality).astype(int).tolist()


def test_greyscale_jpeg_has_one_table_and_an_exact_quality():
    grey = Image.fromarray(smooth()[..., 0], "L")
    meta = decode_image_bytes(encode(grey, "JPEG", quality=60)).metadata
    assert meta.jpeg_quantization is not None and list(meta.jpeg_quantization) == [0]
    assert (meta.jpeg_quality, meta.jpeg_quality_exact) == (60, True)


def test_custom_quantization_tables_are_not_exact():
    flat = [3] * 64
    meta = decode_image_bytes(encode(smooth(), "JPEG", qtables=[flat, flat])).metadata
    assert meta.jpeg_quantization == {0: flat, 1: flat}
    assert meta.jpeg_quality_exact is False
    assert meta.jpeg_quality is not None and 1 <= meta.jpeg_quality <= 100


def test_non_baseline_ijg_tables_are_recognised():
    # cjpeg without -baseline keeps 16-bit entries (up to 32767) at low quality.
    luma = np.clip(np.floor((_IJG_LUMINANCE * 500 + 50) / 100), 1, 32767).astype(int).tolist()
    chroma = np.clip(np.floor((_IJG_CHROMINANCE * 500 + 50) / 100), 1, 32767).astype(int)
    meta = decode_image_bytes(encode(smooth(), "JPEG", qtables=[luma, chroma.tolist()])).metadata
    assert max(meta.jpeg_quantization[0]) > 255
    assert (meta.jpeg_quality, meta.jpeg_quality_exact) == (10, True)


def test_estimate_quality_reads_dict_tables_by_id_not_by_order():
    luma = ijg_table(_IJG_LUMINANCE, 40).astype(int).tolist()
    chroma = ijg_table(_IJG_CHROMINANCE, 40).astype(int).tolist()
    estimate = estimate_quality({1: chroma, 0: luma})
    assert estimate is not None
    assert (estimate.quality, estimate.exact, estimate.mean_abs_error) == (40, True, 0.0)


@pytest.mark.parametrize(
    "tables", [{}, [], {0: [1] * 10}], ids=["empty-dict", "empty-list", "short"]
)
def test_estimate_quality_without_usable_tables_is_none(tables):
    assert estimate_quality(tables) is None


def test_non_jpeg_formats_have_no_jpeg_metadata():
    meta = decode_image_bytes(encode(noise(), "PNG")).metadata
    assert meta.jpeg_quantization is None
    assert meta.jpeg_quality is None and meta.jpeg_quality_exact is None


# --------------------------------------------------------------------------- EXIF, text, evidence


@pytest.mark.parametrize("fmt", ["JPEG", "PNG", "WEBP", "TIFF"])
def test_exif_make_model_software_are_read_back(tmp_path, fmt):
    exif = Image.Exif()
    exif[EXIF_MAKE] = "Canon"
    exif[EXIF_MODEL] = "EOS R5"
    exif[EXIF_SOFTWARE] = "Adobe Photoshop 25.0"
    loaded = load_image(write(tmp_path, "exif.bin", encode(noise(), fmt, exif=exif)))
    assert loaded.metadata.exif["Make"] == "Canon"
    assert loaded.metadata.exif["Model"] == "EOS R5"
    assert loaded.metadata.exif["Software"] == "Adobe Photoshop 25.0"


def test_exif_sub_ifd_tags_are_read():
    exif = Image.Exif()
    exif[EXIF_MAKE] = "Nikon"
    exif.get_ifd(EXIF_IFD)[EXIF_DATETIME_ORIGINAL] = "2024:05:01 10:20:30"
    meta = decode_image_bytes(encode(noise(), "JPEG", exif=exif)).metadata
    assert meta.exif["DateTimeOriginal"] == "2024:05:01 10:20:30"
    assert "ExifOffset" not in meta.exif  # the pointer itself is not a tag worth reporting


def test_png_text_chunks_are_read(tmp_path):
    info = PngImagePlugin.PngInfo()
    parameters = "a cat in space\nSteps: 20, Sampler: Euler a, CFG scale: 7, Seed: 42"
    info.add_text("parameters", parameters)
    info.add_text("Comment", "compressed " * 20, zip=True)
    info.add_itxt("Description", "caf\u00e9 \u2615", lang="fr")
    loaded = load_image(write(tmp_path, "sd.png", encode(noise(), "PNG", pnginfo=info)))
    assert loaded.metadata.png_text == {
        "parameters": parameters,
        "Comment": "compressed " * 20,
        "Description": "caf\u00e9 \u2615",
    }


def test_apng_text_chunks_are_read_and_first_frame_kept(tmp_path):
    info = PngImagePlugin.PngInfo()
    info.add_text("parameters", "animated prompt")
    frames = palette_frames(3)
    data = encode_animation(frames, "PNG", pnginfo=info)
    loaded = load_image(write(tmp_path, "anim.png", data))
    assert loaded.metadata.png_text == {"parameters": "animated prompt"}
    np.testing.assert_array_equal(loaded.pixels, frames[0])


def test_icc_profile_presence_is_recorded():
    with_icc = decode_image_bytes(encode(noise(), "JPEG", icc_profile=b"\x00" * 128))
    without = decode_image_bytes(encode(noise(), "JPEG"))
    assert with_icc.metadata.has_icc_profile and not without.metadata.has_icc_profile


def test_to_evidence_for_a_camera_jpeg(tmp_path):
    exif = Image.Exif()
    exif[EXIF_MAKE] = "Canon"
    exif[EXIF_MODEL] = "EOS R5"
    exif[EXIF_SOFTWARE] = "Firmware 1.0"
    loaded = load_image(write(tmp_path, "cam.jpg", encode(smooth(), "JPEG", quality=75, exif=exif)))
    evidence = loaded.metadata.to_evidence()
    assert evidence == {
        "format": "JPEG",
        "mode": "RGB",
        "width": 64,
        "height": 48,
        "jpeg_quality": 75,
        "jpeg_quality_exact": True,
        "exif_software": "Firmware 1.0",
        "exif_camera": "Canon EOS R5",
    }
    json.dumps(evidence)  # JSON-ready


def test_to_evidence_for_a_generated_png(tmp_path):
    info = PngImagePlugin.PngInfo()
    info.add_text("parameters", "prompt")
    info.add_text("workflow", "{}")
    loaded = load_image(write(tmp_path, "gen.png", encode(noise(), "PNG", pnginfo=info)))
    evidence = loaded.metadata.to_evidence()
    assert evidence == {
        "format": "PNG",
        "mode": "RGB",
        "width": 32,
        "height": 24,
        "png_text_keys": ["parameters", "workflow"],
    }
    json.dumps(evidence)


def test_to_evidence_without_camera_tags_reports_none():
    meta = ImageMetadata(format="JPEG", mode="RGB", width=2, height=1, exif={"Artist": "x"})
    evidence = meta.to_evidence()
    assert evidence["exif_camera"] is None and evidence["exif_software"] is None


# --------------------------------------------------------------------------- pixel limit


@pytest.fixture
def no_decoding(monkeypatch):
    """Fail the test if the loader gets as far as decoding pixels."""

    def refuse(*args: object) -> None:
        raise AssertionError("pixels were decoded before the size check")

    monkeypatch.setattr(image_module, "_decode_first_frame", refuse)


@pytest.mark.parametrize("fmt", FORMATS)
def test_max_pixels_below_the_image_size_is_rejected_before_decoding(tmp_path, fmt, no_decoding):
    path = write(tmp_path, "image.bin", encode(palette_frames(1)[0], fmt))  # 16x12 = 192 pixels
    with pytest.raises(ImageTooLargeError) as info:
        load_image(path, max_pixels=191)
    assert "16x12" in str(info.value) and "191" in str(info.value)
    assert str(path) in str(info.value)


def test_max_pixels_equal_to_the_image_size_is_allowed(tmp_path):
    loaded = load_image(write(tmp_path, "a.png", encode(noise(), "PNG")), max_pixels=32 * 24)
    assert loaded.pixels.shape == (24, 32, 3)


def _crafted_bmp(width: int, height: int) -> bytes:
    data = bytearray(encode(noise(4, 4), "BMP"))
    data[18:26] = struct.pack("<ii", width, height)
    return bytes(data)


def _crafted_gif(width: int, height: int) -> bytes:
    data = bytearray(encode(palette_frames(1)[0], "GIF"))
    data[6:10] = struct.pack("<HH", width, height)
    return bytes(data)


def _crafted_jpeg(width: int, height: int) -> bytes:
    data = bytearray(encode(noise(8, 8), "JPEG"))
    sof = data.find(b"\xff\xc0")
    data[sof + 5 : sof + 9] = struct.pack(">HH", height, width)
    return bytes(data)


def _crafted_webp(width: int, height: int) -> bytes:
    simple = encode(noise(8, 8), "WEBP")
    flags = bytes([0, 0, 0, 0])
    vp8x = b"VP8X" + struct.pack("<I", 10) + flags
    vp8x += (width - 1).to_bytes(3, "little") + (height - 1).to_bytes(3, "little")
    body = b"WEBP" + vp8x + simple[12:]
    return b"RIFF" + struct.pack("<I", len(body)) + body


CRAFTED_BOMBS = {
    "png-100000x100000": lambda: crafted_png(100_000, 100_000),
    "png-20000x6000": lambda: crafted_png(20_000, 6_000),  # over ours, under Pillow's limit
    "bmp-60000x60000": lambda: _crafted_bmp(60_000, 60_000),
    "gif-65535x65535": lambda: _crafted_gif(65_535, 65_535),
    "jpeg-65000x65000": lambda: _crafted_jpeg(65_000, 65_000),
    "webp-16384x16384": lambda: _crafted_webp(16_384, 16_384),
}


def _peak_rss_kib() -> int:
    return 0 if resource is None else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


@pytest.mark.parametrize("name", CRAFTED_BOMBS, ids=list(CRAFTED_BOMBS))
def test_decompression_bombs_are_rejected_fast_without_allocating(tmp_path, name, no_decoding):
    data = CRAFTED_BOMBS[name]()
    assert len(data) < 10_000
    path = write(tmp_path, "bomb.bin", data)
    peak_before = _peak_rss_kib()
    start = time.perf_counter()
    with pytest.raises(ImageTooLargeError) as info:
        load_image(path)
    assert time.perf_counter() - start < 1.0
    assert _peak_rss_kib() - peak_before < 100 * 1024  # the pixels alone would be gigabytes
    assert info.value.kind == "image_too_large"
    assert str(path) in str(info.value)


def test_crafted_png_is_otherwise_well_formed():
    # Guards the bomb test: the file must fail on size, not on a bad CRC or header.
    loaded = decode_image_bytes(crafted_png(4, 2))
    assert loaded.pixels.shape == (2, 4, 3)


def test_our_limit_reports_the_declared_size():
    with pytest.raises(ImageTooLargeError, match="20000x6000"):
        decode_image_bytes(crafted_png(20_000, 6_000))


# --------------------------------------------------------------------------- typed errors


def _half(fmt: str) -> bytes:
    data = encode(noise(64, 64), fmt)
    return data[: len(data) // 2]


@pytest.mark.parametrize("fmt", FORMATS)
def test_files_cut_in_half_are_truncated(tmp_path, fmt):
    path = write(tmp_path, f"half.{fmt.lower()}", _half(fmt))
    with pytest.raises(TruncatedImageError) as info:
        load_image(path)
    assert info.value.kind == "truncated_image"
    assert "truncated" in str(info.value)
    assert str(path) in str(info.value)


@pytest.mark.parametrize("fmt", ["JPEG", "PNG"])
@pytest.mark.parametrize("keep", [3, 10, 30, 100])
def test_short_prefixes_are_truncated(fmt, keep):
    with pytest.raises(TruncatedImageError):
        decode_image_bytes(encode(noise(64, 64), fmt)[:keep], path="cut")


def _random_after_header(fmt: str) -> bytes:
    data = encode(noise(), fmt)
    header = {"PNG": 33, "JPEG": data.find(b"\xff\xdb")}[fmt]  # IHDR / up to the first DQT
    return data[:header] + np.random.default_rng(11).integers(0, 256, 600, np.uint8).tobytes()


@pytest.mark.parametrize("fmt", ["PNG", "JPEG"])
def test_random_bytes_after_a_valid_header_are_corrupt_not_truncated(tmp_path, fmt):
    path = write(tmp_path, "corrupt.bin", _random_after_header(fmt))
    with pytest.raises(CorruptImageError) as info:
        load_image(path)
    assert type(info.value) is CorruptImageError
    assert info.value.kind == "corrupt_image"
    assert fmt in str(info.value)


def test_corrupt_entropy_data_with_intact_structure_is_corrupt():
    data = bytearray(encode(noise(64, 64), "PNG"))
    idat = data.find(b"IDAT")
    length = struct.unpack(">I", data[idat - 4 : idat])[0]
    garbage = np.random.default_rng(5).integers(0, 256, length, np.uint8).tobytes()
    data[idat + 4 : idat + 4 + length] = garbage
    with pytest.raises(CorruptImageError) as info:
        decode_image_bytes(bytes(data))
    assert type(info.value) is CorruptImageError


@pytest.mark.parametrize(
    "content",
    [
        b"hello, this is a text file\n",
        b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj\n<< /Type /Catalog >>\nendobj\n",
        b"<svg xmlns='http://www.w3.org/2000/svg'/>",
        b"BMW is a car, not a bitmap",
        b"\x00" * 64,
    ],
    ids=["text", "pdf", "svg", "bm-text", "zeros"],
)
def test_non_images_are_unsupported(tmp_path, content):
    path = write(tmp_path, "thing.jpg", content)
    with pytest.raises(UnsupportedFormatError) as info:
        load_image(path)
    assert info.value.kind == "unsupported_format"
    assert str(path) in str(info.value)


@pytest.mark.parametrize("fmt", ["PPM", "ICO", "TGA", "PCX"])
def test_images_in_formats_outside_the_supported_set_are_unsupported(tmp_path, fmt):
    path = write(tmp_path, "image.png", encode(noise(16, 16), fmt))
    with pytest.raises(UnsupportedFormatError):
        load_image(path)


def test_empty_file(tmp_path):
    path = write(tmp_path, "empty.png", b"")
    with pytest.raises(EmptyFileError) as info:
        load_image(path)
    assert info.value.kind == "empty_file"
    assert str(path) in str(info.value)
    with pytest.raises(EmptyFileError):
        decode_image_bytes(b"")


def test_missing_path(tmp_path):
    path = tmp_path / "nope.png"
    with pytest.raises(UnreadableInputError, match="no such file") as info:
        load_image(path)
    assert str(path) in str(info.value)


def test_directory_path(tmp_path):
    with pytest.raises(UnreadableInputError, match="directory") as info:
        load_image(tmp_path)
    assert info.value.kind == "unreadable"
    assert str(tmp_path) in str(info.value)


def test_fifo_is_refused_without_blocking(tmp_path):
    if not hasattr(os, "mkfifo"):
        pytest.skip("no FIFOs on this platform")
    path = tmp_path / "pipe.png"
    os.mkfifo(path)
    with pytest.raises(UnreadableInputError, match="not a regular file"):
        load_image(path)


def test_path_with_nul_byte(tmp_path):
    with pytest.raises(UnreadableInputError, match="invalid path"):
        load_image(str(tmp_path / "a\x00b.png"))


def test_file_over_max_bytes(tmp_path):
    data = encode(noise(), "PNG")
    path = write(tmp_path, "big.png", data)
    with pytest.raises(FileTooLargeError) as info:
        load_image(path, max_bytes=len(data) - 1)
    assert info.value.kind == "file_too_large"
    assert str(len(data)) in str(info.value) and str(path) in str(info.value)
    assert load_image(path, max_bytes=len(data)).pixels.shape == (24, 32, 3)


def test_file_growing_after_stat_still_respects_max_bytes(tmp_path, monkeypatch):
    data = encode(noise(), "PNG")
    path = write(tmp_path, "grow.png", data)
    real_open = open

    def open_after_growth(file: str, mode: str = "r") -> io.BufferedReader:
        Path(file).write_bytes(data + b"\x00" * 100)
        return real_open(file, mode)

    monkeypatch.setattr(image_module, "open", open_after_growth, raising=False)
    with pytest.raises(FileTooLargeError):
        read_file_bytes(path, max_bytes=len(data) + 10)


@pytest.mark.skipif(
    hasattr(os, "geteuid") and os.geteuid() == 0, reason="root can read files without permission"
)
def test_file_without_read_permission(tmp_path):
    path = write(tmp_path, "secret.png", encode(noise(), "PNG"))
    path.chmod(0)
    try:
        with pytest.raises(UnreadableInputError) as info:
            load_image(path)
    finally:
        path.chmod(0o600)
    assert str(path) in str(info.value)


def test_permission_error_while_reading_is_unreadable(tmp_path, monkeypatch):
    # Runs as root too, where chmod 000 cannot produce the error.
    path = write(tmp_path, "secret.png", encode(noise(), "PNG"))

    def denied(*args: object, **kwargs: object) -> None:
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(image_module, "open", denied, raising=False)
    with pytest.raises(UnreadableInputError, match="Permission denied") as info:
        load_image(path)
    assert str(path) in str(info.value)


ERROR_SCENARIOS: dict[str, tuple[Callable[[Path], tuple[Path, dict]], type[InputError], str]] = {
    "empty": (lambda d: (write(d, "e.png", b""), {}), EmptyFileError, "empty_file"),
    "missing": (lambda d: (d / "missing.png", {}), UnreadableInputError, "unreadable"),
    "directory": (lambda d: (d, {}), UnreadableInputError, "unreadable"),
    "too-many-bytes": (
        lambda d: (write(d, "b.png", encode(noise(), "PNG")), {"max_bytes": 10}),
        FileTooLargeError,
        "file_too_large",
    ),
    "too-many-pixels": (
        lambda d: (write(d, "p.png", encode(noise(), "PNG")), {"max_pixels": 10}),
        ImageTooLargeError,
        "image_too_large",
    ),
    "text": (
        lambda d: (write(d, "t.png", b"just text"), {}),
        UnsupportedFormatError,
        "unsupported_format",
    ),
    "truncated": (
        lambda d: (write(d, "h.png", _half("PNG")), {}),
        TruncatedImageError,
        "truncated_image",
    ),
    "corrupt": (
        lambda d: (write(d, "c.png", _random_after_header("PNG")), {}),
        CorruptImageError,
        "corrupt_image",
    ),
}


@pytest.mark.parametrize("scenario", ERROR_SCENARIOS, ids=list(ERROR_SCENARIOS))
def test_every_error_is_a_typed_input_error_with_path_and_kind(tmp_path, scenario):
    make, error_type, kind = ERROR_SCENARIOS[scenario]
    path, kwargs = make(tmp_path)
    with pytest.raises(InputError) as info:
        load_image(path, **kwargs)
    error = info.value
    assert type(error) is error_type
    assert isinstance(error, ValueError) and isinstance(error, FakescopeError)
    assert error.kind == kind
    assert error.path == str(path)
    assert str(error).startswith(f"{path}: ")
    assert len(str(error)) > len(f"{path}: ") + 5  # a message, not just the path


def test_errors_survive_pickling_with_their_path():
    error = TruncatedImageError("cut short", "/data/a.png")
    copy = pickle.loads(pickle.dumps(error))
    assert type(copy) is TruncatedImageError
    assert (str(copy), copy.path, copy.kind) == (str(error), "/data/a.png", "truncated_image")


def test_errors_without_a_path_have_the_bare_message():
    assert str(CorruptImageError("bad")) == "bad"
    with pytest.raises(CorruptImageError) as info:
        decode_image_bytes(_random_after_header("PNG"))
    assert info.value.path is None


# --------------------------------------------------------------------------- fuzzing


def _fuzz_samples() -> dict[str, bytes]:
    exif = Image.Exif()
    exif[EXIF_ORIENTATION] = 6
    exif[EXIF_MAKE] = "Fuzz"
    info = PngImagePlugin.PngInfo()
    info.add_text("parameters", "prompt")
    frames = palette_frames(3)
    return {
        "JPEG": encode(noise(), "JPEG", exif=exif),
        "JPEG-progressive": encode(noise(), "JPEG", progressive=True),
        "PNG": encode(noise(), "PNG", pnginfo=info, exif=exif),
        "PNG-16bit": encode(_case_i16()[0], "PNG"),
        "APNG": encode_animation(frames, "PNG"),
        "GIF": encode_animation(frames, "GIF"),
        "WEBP": encode(noise(), "WEBP", exif=exif),
        "WEBP-animated": encode_animation(frames, "WEBP", lossless=True),
        "TIFF": encode_animation(frames, "TIFF"),
        "TIFF-lzw": encode(noise(), "TIFF", compression="tiff_lzw", exif=exif),
        "TIFF-float": encode(_case_float_unit()[0], "TIFF"),
        "BMP": encode(noise(), "BMP"),
        "BMP-palette": encode(_palette_image(None)[0], "BMP"),
    }


FUZZ_SAMPLES = _fuzz_samples()


def _mutations(data: bytes, seed: int, count: int) -> list[bytes]:
    rng = np.random.default_rng(seed)
    out = []
    for i in range(count):
        mutated = bytearray(data)
        kind = i % 5
        if kind == 0:  # truncate anywhere
            mutated = mutated[: int(rng.integers(1, len(data)))]
        elif kind == 1:  # flip a few bytes
            for _ in range(int(rng.integers(1, 8))):
                mutated[int(rng.integers(0, len(mutated)))] = int(rng.integers(0, 256))
        elif kind == 2:  # overwrite a block
            start = int(rng.integers(0, len(mutated)))
            mutated[start : start + 16] = rng.integers(0, 256, 16, np.uint8).tobytes()
        elif kind == 3:  # cut and append garbage
            start = int(rng.integers(8, len(mutated)))
            tail = rng.integers(0, 256, int(rng.integers(1, 64)), np.uint8).tobytes()
            mutated = mutated[:start] + tail
        else:  # plant a huge length or size field
            start = int(rng.integers(0, len(mutated) - 4))
            mutated[start : start + 4] = b"\xff\xff\xff\x7f"
        out.append(bytes(mutated))
    return out


@pytest.mark.parametrize("name", FUZZ_SAMPLES, ids=list(FUZZ_SAMPLES))
def test_fuzzed_files_raise_only_input_errors(name):
    for index, mutated in enumerate(_mutations(FUZZ_SAMPLES[name], seed=len(name), count=60)):
        label = f"{name}-{index}"
        try:
            loaded = decode_image_bytes(mutated, path=label)
        except InputError as error:
            assert error.path == label
            assert str(error).startswith(f"{label}: ")
            assert error.kind != InputError.kind  # always a specific subclass
        except Exception as error:  # the contract under test: nothing else may escape
            pytest.fail(f"{label}: {type(error).__name__} escaped the loader: {error}")
        else:
            assert_pixel_contract(loaded)
            assert loaded.sha256 == hashlib.sha256(mutated).hexdigest()


def test_unmutated_fuzz_samples_load():
    for name, data in FUZZ_SAMPLES.items():
        assert_pixel_contract(decode_image_bytes(data, path=name))


# --------------------------------------------------------------------------- identity, sniffing


def test_sha256_is_the_digest_of_the_file_bytes(tmp_path):
    data = encode(noise(), "PNG")
    path = write(tmp_path, "a.png", data)
    expected = hashlib.sha256(data).hexdigest()
    assert load_image(path).sha256 == expected
    assert decode_image_bytes(data).sha256 == expected
    assert read_file_bytes(path) == data


@pytest.mark.parametrize(
    ("name", "fmt"),
    [
        ("png-named.jpg", "PNG"),
        ("jpeg-named.png", "JPEG"),
        ("no-extension", "GIF"),
        ("x.txt", "WEBP"),
    ],
)
def test_format_is_sniffed_from_content_not_extension(tmp_path, name, fmt):
    path = write(tmp_path, name, encode(palette_frames(1)[0], fmt))
    assert load_image(path).metadata.format == fmt


def test_decode_accepts_bytearray_and_memoryview():
    data = encode(noise(), "PNG")
    for view in (bytearray(data), memoryview(data)):
        loaded = decode_image_bytes(view)
        np.testing.assert_array_equal(loaded.pixels, noise())
        assert loaded.path is None


def test_pillow_global_state_is_untouched(tmp_path):
    limit = Image.MAX_IMAGE_PIXELS
    with pytest.raises(ImageTooLargeError):
        decode_image_bytes(crafted_png(100_000, 100_000))
    load_image(write(tmp_path, "a.png", encode(noise(), "PNG")))
    assert limit == Image.MAX_IMAGE_PIXELS


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("a.jpg", True),
        ("a.JPEG", True),
        ("dir/a.jpe", True),
        ("a.jfif", True),
        ("a.png", True),
        ("a.WebP", True),
        ("a.tif", True),
        ("a.tiff", True),
        ("a.bmp", True),
        ("a.gif", True),
        (Path("x") / "y.PNG", True),
        ("a.txt", False),
        ("a.pdf", False),
        ("a", False),
        ("png", False),
        (".png", False),  # a hidden file named ".png" has no extension
        ("a.png.bak", False),
    ],
)
def test_is_image_path(path, expected):
    assert is_image_path(path) is expected
