"""What every evidence reader gets: the file's bytes, its decoded image, and lazy shared parses.

The file is already decoded (so it is a supported, sane image) when readers run; each parse
they share (Pillow's header, the raw EXIF block, the XMP packet) is done once, on first use.
"""

from __future__ import annotations

import io
import re
from dataclasses import dataclass
from functools import cached_property
from typing import Any

import numpy as np
from PIL import ExifTags, Image

from fakescope.io.image import ImageMetadata, LoadedImage

#: Larger XMP packets are not parsed: real ones are a few kB, Photoshop's long histories
#: reach hundreds of kB, and a parser should not be handed megabytes of untrusted XML.
MAX_XMP_BYTES = 2 * 1024 * 1024
_XMP_PNG_KEYS = ("XML:com.adobe.xmp",)
_XMP_TIFF_TAG = 700  # XMLPacket
# Adobe's XMP specification (part 3, "packet scanning") allows finding a packet by its
# wrapper in formats whose container is not parsed; used for those Pillow does not expose.
_XMP_PACKET = re.compile(rb"<x:xmpmeta[\s>].*?</x:xmpmeta>", re.DOTALL)


@dataclass
class EvidenceSource:
    """One decoded file as the readers see it. ``data`` is the whole file as read."""

    data: bytes
    image: LoadedImage

    @property
    def metadata(self) -> ImageMetadata:
        return self.image.metadata

    @property
    def format(self) -> str:
        return self.image.metadata.format

    @cached_property
    def pil(self) -> Image.Image:
        """The file opened again by Pillow: header and metadata parsed, no pixels decoded."""
        return Image.open(io.BytesIO(self.data))

    @cached_property
    def exif(self) -> Image.Exif:
        """Pillow's EXIF view (empty when the file has none)."""
        if self.format == "PNG" and not self.metadata.exif:
            # Pillow decodes a whole PNG to look for an eXIf chunk after the pixels; decoding
            # already looked (``metadata.exif``), so a file without EXIF is not decoded again.
            return Image.Exif()
        return self.pil.getexif()

    @cached_property
    def exif_tiff(self) -> bytes | None:
        """The raw EXIF block as a TIFF structure (thumbnail offsets are relative to it)."""
        raw = self.pil.info.get("exif")
        if not isinstance(raw, bytes | bytearray) or not raw:
            return None
        raw = bytes(raw)
        while raw.startswith(b"Exif\x00\x00"):  # some writers repeat the APP1 identifier
            raw = raw[6:]
        return raw if raw[:2] in (b"II", b"MM") else None

    @cached_property
    def orientation(self) -> int:
        """EXIF orientation (1-8) as io.image applied it to the pixels; 1 when absent."""
        value = self.exif.get(ExifTags.Base.Orientation, 1)
        return value if isinstance(value, int) and 1 <= value <= 8 else 1

    @cached_property
    def xmp_packet(self) -> bytes | None:
        """The file's XMP packet, or None. Raises ValueError when it is over the size limit."""
        packet = self.pil.info.get("xmp")
        if not packet:
            for key in _XMP_PNG_KEYS:
                text = self.pil.info.get(key)
                if text:
                    packet = text
                    break
        if not packet and self.format == "TIFF":
            tags = getattr(self.pil, "tag_v2", None)
            packet = tags.get(_XMP_TIFF_TAG) if tags is not None else None
        if not packet and self.format in {"GIF", "BMP"}:
            match = _XMP_PACKET.search(self.data)
            packet = match.group(0) if match else None
        if not packet:
            return None
        if isinstance(packet, str):
            packet = packet.encode("utf-8")
        packet = bytes(packet)
        if len(packet) > MAX_XMP_BYTES:
            raise ValueError(f"XMP packet of {len(packet)} bytes is over {MAX_XMP_BYTES} bytes")
        return packet

    def stored_pixels(self) -> np.ndarray:
        """The decoded pixels in the orientation the file stores them (before EXIF rotation).

        JPEG blocks and EXIF thumbnails live in that orientation; the loaded pixels are upright,
        so the transpose io.image applied is undone here (a view, nothing is copied).
        """
        return undo_orientation(self.image.pixels, self.orientation)


def undo_orientation(pixels: np.ndarray, orientation: int) -> np.ndarray:
    """The inverse of the EXIF orientation transform that made ``pixels`` upright."""
    if orientation == 2:
        return pixels[:, ::-1]
    if orientation == 3:
        return pixels[::-1, ::-1]
    if orientation == 4:
        return pixels[::-1]
    if orientation == 5:
        return pixels.swapaxes(0, 1)
    if orientation == 6:
        return np.rot90(pixels, 1)
    if orientation == 7:
        return pixels[::-1, ::-1].swapaxes(0, 1)
    if orientation == 8:
        return np.rot90(pixels, -1)
    return pixels


def printable(value: Any, limit: int = 300) -> str:
    """A metadata value as short, clean text (NULs and surrounding blanks removed)."""
    if isinstance(value, bytes | bytearray):
        text = bytes(value).rstrip(b"\x00").decode("utf-8", errors="replace")
    else:
        text = str(value)
    text = text.replace("\x00", "").strip()
    return text if len(text) <= limit else text[: limit - 1] + "…"
