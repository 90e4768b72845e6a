"""Uploads on disk: stored under their SHA-256 in the server's working folder, never under a
name a client chose, and evicted oldest first beyond a byte budget.

A client's file name is only ever data: it becomes the result's ``path`` after
:func:`display_name` has cut it to its last component. What a file *is* comes from its bytes:
videos by their container's magic bytes here, images by the decoder's own sniffing.
"""

from __future__ import annotations

import hashlib
import os
import threading
import unicodedata
import uuid
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import BinaryIO, Literal

from fakescope.errors import EmptyFileError, FileTooLargeError, InputError
from fakescope.video.decode import HEAD_BYTES, sniff_video_container

MediaKind = Literal["image", "video"]
_CHUNK = 1024 * 1024


def sniff_media_kind(head: bytes) -> MediaKind:
    """``video`` when the leading bytes are a video container's (MP4/MOV, WebM/MKV, AVI), else
    ``image``.

    Everything that is not a known video container goes to the image decoder, which sniffs
    image formats itself and rejects anything else as ``unsupported_format``.
    """
    return "image" if sniff_video_container(head) is None else "video"


def display_name(client_name: str | None, fallback: str) -> str:
    """The last component of a client's file name, printable, at most 200 characters.

    ``../../etc/passwd`` becomes ``passwd`` and ``C:\\x\\y.png`` becomes ``y.png``: the name
    labels the result and is never joined to a folder.
    """
    name = (client_name or "").replace("\\", "/")
    name = PurePosixPath(name).name
    name = "".join(ch for ch in name if unicodedata.category(ch)[0] != "C").strip()
    if name in {"", ".", ".."}:
        return fallback
    return name[:200]


@dataclass(frozen=True)
class StoredUpload:
    """One uploaded file: its SHA-256, size, kind, and where its bytes are (None when refused)."""

    name: str
    sha256: str
    size: int
    kind: MediaKind
    path: Path | None
    error: InputError | None = None


class UploadStore:
    """``<workdir>/uploads/<sha256>`` files with a total byte budget."""

    def __init__(self, workdir: Path, max_bytes: int) -> None:
        self.folder = workdir / "uploads"
        self.folder.mkdir(parents=True, exist_ok=True)
        self.max_bytes = max_bytes
        self._lock = threading.Lock()
        self._total = sum(entry.stat().st_size for entry in self._entries())

    def _entries(self) -> list[os.DirEntry[str]]:
        with os.scandir(self.folder) as scanner:
            return [entry for entry in scanner if entry.is_file() and len(entry.name) == 64]

    def path_of(self, sha256: str) -> Path | None:
        """The kept file of this content, or None (never uploaded, or evicted)."""
        if len(sha256) != 64 or not all(ch in "0123456789abcdef" for ch in sha256):
            return None
        path = self.folder / sha256
        return path if path.is_file() else None

    def save(self, stream: BinaryIO, client_name: str | None, max_file_bytes: int) -> StoredUpload:
        """Copy an upload in, hashing as it goes; a file over the limit is hashed, not kept."""
        temporary = self.folder / f".incoming-{uuid.uuid4().hex}"
        digest = hashlib.sha256()
        size = 0
        head = b""
        too_large = False
        try:
            with open(temporary, "wb") as out:
                while chunk := stream.read(_CHUNK):
                    if len(head) < HEAD_BYTES:
                        head += chunk[: HEAD_BYTES - len(head)]
                    digest.update(chunk)
                    size += len(chunk)
                    if size > max_file_bytes:
                        too_large = True  # keep hashing so the error row has a key
                        continue
                    out.write(chunk)
            sha256 = digest.hexdigest()
            name = display_name(client_name, fallback=f"upload-{sha256[:12]}")
            kind = sniff_media_kind(head)
            if too_large:
                error: InputError = FileTooLargeError(
                    f"file is {size} bytes, over the server's limit of {max_file_bytes} bytes"
                )
                return StoredUpload(name, sha256, size, kind, None, error)
            if size == 0:
                return StoredUpload(name, sha256, 0, kind, None, EmptyFileError("file is empty"))
            final = self.folder / sha256
            with self._lock:
                if final.exists():
                    os.utime(final)  # recently used: evicted last
                else:
                    os.replace(temporary, final)
                    self._total += size
            self._evict(keep=final)
            return StoredUpload(name, sha256, size, kind, final)
        finally:
            temporary.unlink(missing_ok=True)

    def _evict(self, keep: Path) -> None:
        with self._lock:
            if self._total <= self.max_bytes:
                return
            entries = sorted(self._entries(), key=lambda entry: entry.stat().st_mtime_ns)
            for entry in entries:
                if self._total <= self.max_bytes:
                    break
                if entry.path == str(keep):
                    continue
                try:
                    size = entry.stat().st_size
                    os.unlink(entry.path)
                except OSError:
                    continue
                self._total -= size
