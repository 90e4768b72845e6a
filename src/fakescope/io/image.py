"""Safe image decoding: untrusted bytes in, RGB ``uint8`` pixels plus forensic metadata out.

How modes become RGB ``uint8`` (H, W, 3):

- ``RGB``: unchanged. ``L`` and ``1`` (grey, bilevel): the grey value copied to all channels.
- ``RGBA``, ``LA``, ``PA``: the alpha channel is **dropped**, the stored colours are kept.
  Compositing over a background would paint a synthetic flat region that detectors learn.
- ``P`` (palette): expanded through the palette (to RGBA when it has transparency, then as above).
- ``CMYK``: Pillow's conversion (Adobe-inverted JPEGs are handled by its decoder); ICC profiles
  are not applied, their presence is recorded in the metadata.
- 16-bit and 32-bit integer (``I;16*``, ``I``): rescaled from the full 16-bit range with rounding.
- ``F`` (float): values in [0, 1] are scaled by 255, anything else is clipped to [0, 255].
- ``YCbCr``, ``LAB``, ``HSV``: Pillow's conversion to RGB.

EXIF orientation is applied, so pixels are upright as a viewer shows them. Animated GIF, WebP and
multi-page TIFF files give their first frame. The pixel limit is checked from the header before
any pixel is decoded, so a decompression bomb costs nothing.
"""

from __future__ import annotations

import hashlib
import io
import os
import stat
import struct
import warnings
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from PIL import ExifTags, Image, UnidentifiedImageError

from fakescope.errors import (
    CorruptImageError,
    EmptyFileError,
    FileTooLargeError,
    ImageTooLargeError,
    ImageTooSmallError,
    TruncatedImageError,
    UnreadableInputError,
    UnsupportedFormatError,
)
from fakescope.io.jpeg import estimate_quality

# MPO (multi-picture JPEG) is read through the JPEG plugin and reported as format "MPO".
SUPPORTED_FORMATS: tuple[str, ...] = ("JPEG", "PNG", "WEBP", "TIFF", "BMP", "GIF")
IMAGE_EXTENSIONS: frozenset[str] = frozenset(
    {".jpg", ".jpeg", ".jpe", ".jfif", ".png", ".webp", ".tif", ".tiff", ".bmp", ".gif"}
)
DEFAULT_MAX_PIXELS = 100_000_000  # 100 MP: a 12000x8000 photo passes, a bomb does not
DEFAULT_MAX_BYTES = 256 * 1024 * 1024


@dataclass(frozen=True)
class ImageMetadata:
    """What later evidence needs, read before any conversion.

    ``mode``, ``width`` and ``height`` describe the first frame as stored in the file, before
    EXIF orientation; the pixels of :class:`LoadedImage` are upright, so with orientation 5-8
    their shape is (width, height). ``frames`` is 1 when later frames are too damaged to count.
    """

    format: str
    mode: str
    width: int
    height: int
    frames: int = 1
    exif: dict[str, str] = field(default_factory=dict)
    jpeg_quantization: dict[int, list[int]] | None = None
    jpeg_quality: int | None = None
    jpeg_quality_exact: bool | None = None
    png_text: dict[str, str] = field(default_factory=dict)
    has_icc_profile: bool = False
    has_alpha: bool = False

    def to_evidence(self) -> dict[str, Any]:
        """A compact JSON-ready summary for scan results (full EXIF and tables stay here)."""
        evidence: dict[str, Any] = {
            "format": self.format,
            "mode": self.mode,
            "width": self.width,
            "height": self.height,
        }
        if self.jpeg_quality is not None:
            evidence["jpeg_quality"] = self.jpeg_quality
            evidence["jpeg_quality_exact"] = self.jpeg_quality_exact
        if self.exif:
            evidence["exif_software"] = self.exif.get("Software")
            evidence["exif_camera"] = (
                " ".join(v for v in (self.exif.get("Make"), self.exif.get("Model")) if v) or None
            )
        if self.png_text:
            evidence["png_text_keys"] = sorted(self.png_text)
        return evidence


@dataclass(frozen=True)
class LoadedImage:
    """Decoded pixels (H, W, 3) ``uint8`` RGB, their metadata and the file's SHA-256.

    ``evidence`` holds the evidence readers' reports by reader name (``fakescope.evidence``);
    the scan fills it at decode time, while the file's bytes are in memory.
    """

    pixels: np.ndarray
    metadata: ImageMetadata
    sha256: str
    path: str | None = None
    evidence: dict[str, Any] = field(default_factory=dict)


def read_file_bytes(path: str | os.PathLike[str], max_bytes: int = DEFAULT_MAX_BYTES) -> bytes:
    """Read a whole file, refusing folders, special files and files over ``max_bytes``."""
    path_str = os.fspath(path)
    try:
        info = os.stat(path_str)
    except FileNotFoundError as exc:
        raise UnreadableInputError("no such file", path_str) from exc
    except OSError as exc:
        raise UnreadableInputError(f"cannot stat: {exc.strerror or exc}", path_str) from exc
    except ValueError as exc:  # e.g. an embedded NUL byte, which no file name can hold
        raise UnreadableInputError(f"invalid path: {exc}", path_str) from exc
    if not stat.S_ISREG(info.st_mode):
        kind = "a directory" if stat.S_ISDIR(info.st_mode) else "not a regular file"
        raise UnreadableInputError(kind, path_str)
    if info.st_size == 0:
        raise EmptyFileError("file is empty (0 bytes)", path_str)
    if info.st_size > max_bytes:
        raise FileTooLargeError(
            f"file is {info.st_size} bytes, over the limit of {max_bytes} bytes", path_str
        )
    try:
        with open(path_str, "rb") as handle:
            data = handle.read(max_bytes + 1)
    except OSError as exc:
        raise UnreadableInputError(f"cannot read: {exc.strerror or exc}", path_str) from exc
    # The file may have changed between stat and read; the limit holds for what was read.
    if len(data) > max_bytes:
        raise FileTooLargeError(f"file is over the limit of {max_bytes} bytes", path_str)
    if not data:
        raise EmptyFileError("file is empty (0 bytes)", path_str)
    return data


def load_image(
    path: str | os.PathLike[str],
    *,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    max_bytes: int = DEFAULT_MAX_BYTES,
) -> LoadedImage:
    """Decode the image at ``path``. Raises a subclass of :class:`~fakescope.errors.InputError`."""
    path_str = os.fspath(path)
    data = read_file_bytes(path_str, max_bytes=max_bytes)
    return decode_image_bytes(data, path=path_str, max_pixels=max_pixels)


def decode_image_bytes(
    data: bytes,
    *,
    path: str | None = None,
    max_pixels: int = DEFAULT_MAX_PIXELS,
) -> LoadedImage:
    """Decode an in-memory file. The format is sniffed from the bytes, never from a name."""
    if not data:
        raise EmptyFileError("file is empty (0 bytes)", path)
    data = bytes(data)
    digest = hashlib.sha256(data).hexdigest()
    with warnings.catch_warnings():
        # Our own limit below replaces Pillow's global decompression-bomb warning, and Pillow's
        # "corrupt EXIF" style warnings are noise: bad metadata is handled by fallbacks here.
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        warnings.filterwarnings("ignore", category=UserWarning, module=r"PIL\.")
        image = _open(data, path)
        with image:
            width, height = image.size
            if width <= 0 or height <= 0:
                raise CorruptImageError(f"invalid dimensions {width}x{height}", path)
            if width * height > max_pixels:
                raise ImageTooLargeError(
                    f"{width}x{height} = {width * height} pixels is over the limit of "
                    f"{max_pixels} pixels (decompression-bomb guard; raise max_pixels to allow)",
                    path,
                )
            _decode_first_frame(image, data, path)
            # Pixels before metadata: counting frames seeks away from the first frame.
            pixels = _to_rgb_uint8(_apply_orientation(image), path)
            metadata = _read_metadata(image)
    return LoadedImage(pixels=pixels, metadata=metadata, sha256=digest, path=path)


# Pillow raises all of these on malformed input, from plugins and decoders alike; none of them
# is a bug in the caller, so each becomes a typed InputError.
PILLOW_DECODE_ERRORS: tuple[type[BaseException], ...] = (
    OSError,
    SyntaxError,
    ValueError,
    TypeError,
    EOFError,
    LookupError,
    ArithmeticError,
    NotImplementedError,
    struct.error,
    zlib.error,
)

# MPO files are opened by the JPEG plugin (it picks MpoImageFile itself); Pillow registers no
# opener named "MPO", and naming it in ``formats`` raises KeyError for every non-JPEG input.
_OPEN_FORMATS: tuple[str, ...] = tuple(fmt for fmt in SUPPORTED_FORMATS if fmt != "MPO")

_MAGIC: tuple[tuple[bytes, str], ...] = (
    (b"\xff\xd8\xff", "JPEG"),
    (b"\x89PNG\r\n\x1a\n", "PNG"),
    (b"GIF87a", "GIF"),
    (b"GIF89a", "GIF"),
    (b"II*\x00", "TIFF"),
    (b"MM\x00*", "TIFF"),
    (b"II+\x00", "TIFF"),
    (b"MM\x00+", "TIFF"),
    (b"MM*\x00", "TIFF"),  # byte order and magic disagree; Pillow reads these anyway
    (b"II\x00*", "TIFF"),
)
_BMP_HEADER_SIZES = frozenset({12, 16, 40, 52, 56, 64, 108, 124})


def _sniff_format(data: bytes) -> str | None:
    """The supported format the leading bytes claim, including a prefix cut short."""
    for magic, fmt in _MAGIC:
        if data.startswith(magic) or (len(data) >= 2 and magic.startswith(data)):
            return fmt
    if data.startswith(b"RIFF") and (data[8:12] == b"WEBP" or len(data) < 12):
        return "WEBP"
    if data.startswith(b"BM") and (
        len(data) < 18 or int.from_bytes(data[14:18], "little") in _BMP_HEADER_SIZES
    ):
        return "BMP"
    return None


def _open(data: bytes, path: str | None) -> Image.Image:
    claimed = _sniff_format(data)
    try:
        return Image.open(io.BytesIO(data), formats=_OPEN_FORMATS)
    except Image.DecompressionBombError as exc:
        # Pillow's own hard limit (twice PIL.Image.MAX_IMAGE_PIXELS) fires inside open, before
        # our check; it is global state, so it is reported rather than lifted per call.
        raise ImageTooLargeError(
            f"{exc} (Pillow's limit, independent of max_pixels)", path
        ) from exc
    except PILLOW_DECODE_ERRORS as exc:
        if claimed is None:
            # Also when a plugin with a looser signature check (BMP takes any "BM") failed.
            raise UnsupportedFormatError(
                f"not a supported image (formats: {', '.join(SUPPORTED_FORMATS)})", path
            ) from exc
        if isinstance(exc, UnidentifiedImageError):
            # Pillow reports a header it could not parse as "unidentified"; the magic says
            # the file is one of ours, so it is damaged rather than of another kind.
            detail = "the decoder rejected the header"
        else:
            detail = _describe(exc)
        raise _decode_failure(detail, data, claimed, "cannot parse header", path) from exc


def _decode_first_frame(image: Image.Image, data: bytes, path: str | None) -> None:
    try:
        image.seek(0)
        image.load()
    except PILLOW_DECODE_ERRORS as exc:
        claimed = _sniff_format(data) or image.format
        raise _decode_failure(_describe(exc), data, claimed, "cannot decode", path) from exc


def _describe(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__


def _decode_failure(
    detail: str, data: bytes, fmt: str | None, stage: str, path: str | None
) -> CorruptImageError:
    """Truncated when the file's own structure runs past its end, else corrupt."""
    truncated = _structure_truncated(data, fmt)
    if truncated is None:
        # No structural check for this format: fall back on what the decoder said.
        lowered = detail.lower()
        truncated = "truncated" in lowered or "broken data stream" in lowered
    if truncated:
        return TruncatedImageError(
            f"truncated {fmt or 'image'} file ({len(data)} bytes; {stage}: {detail})", path
        )
    return CorruptImageError(f"corrupt {fmt or 'image'} file ({stage}: {detail})", path)


def _structure_truncated(data: bytes, fmt: str | None) -> bool | None:
    """True if the container's structure needs bytes past the end, None if it cannot tell."""
    try:
        if fmt in {"JPEG", "MPO"}:
            return _jpeg_truncated(data)
        if fmt == "PNG":
            return _png_truncated(data)
        if fmt == "GIF":
            return _gif_truncated(data)
        if fmt == "WEBP":
            return len(data) < 12 or int.from_bytes(data[4:8], "little") + 8 > len(data)
        if fmt == "BMP":
            if len(data) < 14:
                return True
            declared = int.from_bytes(data[2:6], "little")
            return declared > len(data) if declared else None
        if fmt == "TIFF":
            return _tiff_truncated(data)
    except IndexError:
        return True
    return None


def _jpeg_truncated(data: bytes) -> bool:
    pos, size = 2, len(data)
    while pos + 2 <= size:
        if data[pos] != 0xFF:
            return False  # garbage where a marker must be: corrupt, not cut short
        marker = data[pos + 1]
        if marker == 0xFF:  # fill byte before a marker
            pos += 1
            continue
        if marker == 0xD9:
            return False
        if marker in {0x01, 0xD8} or 0xD0 <= marker <= 0xD7:  # markers without a length
            pos += 2
            continue
        if pos + 4 > size:
            return True
        end = pos + 2 + int.from_bytes(data[pos + 2 : pos + 4], "big")
        if end > size:
            return True
        if marker == 0xDA:
            # Entropy-coded data follows; byte stuffing keeps FFD9 out of it, so a missing
            # end-of-image marker means the scans were cut.
            return data.find(b"\xff\xd9", end) < 0
        pos = end
    return True


def _png_truncated(data: bytes) -> bool:
    pos, size = 8, len(data)
    while True:
        if pos + 8 > size:
            return True
        length = int.from_bytes(data[pos : pos + 4], "big")
        chunk_type = data[pos + 4 : pos + 8]
        if not chunk_type.isalpha() or length > 0x7FFFFFFF:
            return False
        end = pos + 12 + length
        if end > size:
            return True
        if chunk_type == b"IEND":
            return False
        pos = end


def _tiff_truncated(data: bytes) -> bool | None:
    """Only the first directory is checked; strips past the end show in the decoder's message."""
    if len(data) < 8:
        return True
    order = "little" if data[:2] == b"II" else "big"
    if data[2:4] in {b"+\x00", b"\x00+"}:  # BigTIFF: not worth a second parser here
        return None
    offset = int.from_bytes(data[4:8], order)
    if offset + 2 > len(data):
        return True
    entries = int.from_bytes(data[offset : offset + 2], order)
    return True if offset + 2 + 12 * entries > len(data) else None


def _gif_truncated(data: bytes) -> bool:
    size = len(data)
    if size < 13:
        return True
    pos = 13
    if data[10] & 0x80:
        pos += 3 << ((data[10] & 7) + 1)
    while True:
        if pos >= size:
            return True
        block = data[pos]
        if block == 0x3B:  # trailer
            return False
        if block == 0x21:  # extension: introducer and label, then sub-blocks
            pos += 2
        elif block == 0x2C:  # image descriptor, optional local palette, LZW code size
            if pos + 10 > size:
                return True
            flags = data[pos + 9]
            pos += 10
            if flags & 0x80:
                pos += 3 << ((flags & 7) + 1)
            pos += 1
        else:
            return False
        while True:
            if pos >= size:
                return True
            length = data[pos]
            pos += 1 + length
            if length == 0:
                break


_TRANSPOSE_FOR_ORIENTATION: dict[int, Image.Transpose] = {
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}


def _apply_orientation(image: Image.Image) -> Image.Image:
    """The image upright as a viewer shows it; malformed EXIF leaves it as stored.

    Not ``ImageOps.exif_transpose``: that copies every image and rewrites the EXIF block, which
    can itself fail on malformed EXIF, and neither is needed for the pixels.
    """
    try:
        orientation = image.getexif().get(ExifTags.Base.Orientation, 1)
        if not isinstance(orientation, int) or orientation not in _TRANSPOSE_FOR_ORIENTATION:
            return image
        return image.transpose(_TRANSPOSE_FOR_ORIENTATION[orientation])
    except PILLOW_DECODE_ERRORS:
        return image


def _read_metadata(image: Image.Image) -> ImageMetadata:
    fmt = image.format or "UNKNOWN"
    quantization: dict[int, list[int]] | None = None
    quality = exact = None
    tables = getattr(image, "quantization", None)
    if fmt in {"JPEG", "MPO"} and tables:
        quantization = {int(k): list(map(int, v)) for k, v in tables.items()}
        estimate = estimate_quality(quantization)
        if estimate is not None:
            quality, exact = estimate.quality, estimate.exact
    png_text: dict[str, str] = {}
    if fmt == "PNG":
        png_text = _read_png_text(image)
    mode, (width, height) = image.mode, image.size
    return ImageMetadata(
        format=fmt,
        mode=mode,
        width=width,
        height=height,
        exif=_read_exif(image),
        jpeg_quantization=quantization,
        jpeg_quality=quality,
        jpeg_quality_exact=exact,
        png_text=png_text,
        has_icc_profile=bool(image.info.get("icc_profile")),
        has_alpha=mode in {"RGBA", "RGBa", "LA", "La", "PA"} or "transparency" in image.info,
        # Last: counting frames seeks through the file and leaves the image state undefined.
        frames=_count_frames(image),
    )


def _read_png_text(image: Image.Image) -> dict[str, str]:
    if getattr(image, "is_animated", False):
        # Pillow's ``text`` decodes every APNG frame to reach trailing chunks; the chunks
        # before the image data (where writers put them) are already in ``info`` as strings.
        return {str(k): str(v) for k, v in image.info.items() if isinstance(v, str)}
    try:
        text = getattr(image, "text", None) or {}
    except PILLOW_DECODE_ERRORS:
        return {}
    return {str(k): str(v) for k, v in text.items()}


def _count_frames(image: Image.Image) -> int:
    """Frames (pages) in the file; 1 when a later frame is too damaged to count."""
    try:
        return max(1, int(getattr(image, "n_frames", 1) or 1))
    except PILLOW_DECODE_ERRORS:
        return 1


def _read_exif(image: Image.Image) -> dict[str, str]:
    """EXIF tags by name, including the Exif and GPS sub-IFDs, as printable strings."""
    try:
        exif = image.getexif()
        blocks: list[dict[int, Any]] = [dict(exif)]
    except PILLOW_DECODE_ERRORS:  # malformed EXIF must not make an image unreadable
        return {}
    for ifd in (ExifTags.IFD.Exif, ExifTags.IFD.GPSInfo):
        try:
            blocks.append(dict(exif.get_ifd(ifd)))
        except PILLOW_DECODE_ERRORS:
            continue
    tags: dict[str, str] = {}
    for block in blocks:
        for tag_id, value in block.items():
            if tag_id in (ExifTags.IFD.Exif, ExifTags.IFD.GPSInfo, ExifTags.Base.MakerNote):
                continue
            name = ExifTags.TAGS.get(tag_id, f"0x{tag_id:04x}")
            tags[name] = _printable(value)
    return tags


def _printable(value: Any, limit: int = 256) -> str:
    if isinstance(value, bytes):
        text = value.rstrip(b"\x00").decode("utf-8", errors="replace")
    else:
        text = str(value)
    return text.strip("\x00 ")[:limit]


def _to_rgb_uint8(image: Image.Image, path: str | None = None) -> np.ndarray:
    """RGB ``uint8`` (H, W, 3), C-contiguous, following the rules in the module docstring."""
    mode = image.mode
    try:
        array = _convert_mode(image)
    except PILLOW_DECODE_ERRORS as exc:
        raise UnsupportedFormatError(
            f"cannot convert pixel mode {mode!r} to RGB: {exc}", path
        ) from exc
    if array.ndim != 3 or array.shape[2] != 3:  # a conversion rule above is wrong: fail loudly
        raise AssertionError(f"mode {mode!r} converted to shape {array.shape}")
    return np.ascontiguousarray(array, dtype=np.uint8)


def _grey_to_rgb(grey: np.ndarray) -> np.ndarray:
    return np.repeat(grey[..., None], 3, axis=2)


def _convert_mode(image: Image.Image) -> np.ndarray:
    mode = image.mode
    if mode == "P":
        image = image.convert("RGBA" if "transparency" in image.info else "RGB")
        mode = image.mode
    if mode.startswith("I;16") or mode == "I":
        values = np.asarray(image).astype(np.float64)
        return _grey_to_rgb(np.clip(np.rint(values / 257.0), 0, 255).astype(np.uint8))
    if mode == "F":
        # Corrupt float data holds NaNs (even signalling ones) and infinities; they are mapped
        # below, so numpy's floating-point warnings about them would only be noise.
        with np.errstate(invalid="ignore", over="ignore"):
            values = np.asarray(image).astype(np.float64)
            finite = values[np.isfinite(values)]
            if finite.size and finite.min() >= 0.0 and finite.max() <= 1.0:
                values = values * 255.0
            grey = np.clip(np.rint(np.nan_to_num(values)), 0, 255).astype(np.uint8)
        return _grey_to_rgb(grey)
    if mode == "RGBa":  # premultiplied: Pillow's conversion restores the straight colours
        image, mode = image.convert("RGBA"), "RGBA"
    if mode in {"RGBA", "RGBX"}:
        return np.asarray(image)[..., :3]
    if mode in {"LA", "La"}:
        return _grey_to_rgb(np.asarray(image)[..., 0])
    if mode == "PA":
        return np.asarray(image.convert("RGBA"))[..., :3]
    if mode == "L":
        return _grey_to_rgb(np.asarray(image))
    if mode != "RGB":
        image = image.convert("RGB")
    return np.asarray(image, dtype=np.uint8)


def is_image_path(path: str | Path) -> bool:
    """True when the extension is one fakescope picks up while walking folders."""
    return Path(path).suffix.lower() in IMAGE_EXTENSIONS


def require_min_side(image: LoadedImage, min_side: int) -> None:
    """Refuse, before any model work, an image smaller than the detector can analyse."""
    height, width = image.pixels.shape[:2]
    if min(height, width) < min_side:
        raise ImageTooSmallError(
            f"{width}x{height} pixels is smaller than the {min_side}x{min_side} the model needs",
            image.path,
        )
