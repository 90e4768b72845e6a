"""Turning command-line inputs into a lazy stream of files, one entry per file or failure.

Folders are walked recursively in sorted order without building the full list, so memory stays
constant however many files there are. Inside folders only files with image or video extensions
are picked up; a file named explicitly is always attempted (its content decides, whatever its
name: a video is recognised by its bytes, not by its extension). Symlinked folders
are not followed, which rules out cycles. A path that does not exist or a folder that cannot be
listed becomes an entry with an error, and the walk goes on.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from fakescope.errors import InputError, UnreadableInputError
from fakescope.io.image import is_image_path

#: Video file names picked up inside folders (MP4/MOV family, Matroska/WebM, AVI).
VIDEO_EXTENSIONS: frozenset[str] = frozenset(
    {".mp4", ".m4v", ".mov", ".qt", ".3gp", ".mkv", ".webm", ".avi"}
)


@dataclass(frozen=True)
class InputEntry:
    path: str
    error: InputError | None = None


def iter_input_files(inputs: Iterable[str]) -> Iterator[InputEntry]:
    """Yield every file reachable from ``inputs`` (files or folders), depth first, sorted."""
    for path in inputs:
        if not path:
            continue
        if os.path.isdir(path):
            yield from _walk(path)
        elif os.path.lexists(path):
            yield InputEntry(path)
        else:
            yield InputEntry(path, UnreadableInputError("no such file or folder", path))


def _sorted_entries(folder: str) -> list[os.DirEntry[str]]:
    with os.scandir(folder) as scanner:
        return sorted(scanner, key=lambda entry: entry.name)


def _walk(root: str) -> Iterator[InputEntry]:
    """Depth-first in name order, with an explicit stack: no recursion limit on deep trees.

    Only the listings of the folders on the current path are held, never the whole tree.
    """
    try:
        stack = [iter(_sorted_entries(root))]
    except OSError as exc:
        yield InputEntry(root, UnreadableInputError(f"cannot list folder: {exc.strerror}", root))
        return
    while stack:
        entry = next(stack[-1], None)
        if entry is None:
            stack.pop()
            continue
        try:
            is_dir = entry.is_dir(follow_symlinks=False)
        except OSError:
            is_dir = False
        if not is_dir:
            if is_image_path(entry.name) or _is_video_name(entry.name):
                yield InputEntry(entry.path)
            continue
        try:
            stack.append(iter(_sorted_entries(entry.path)))
        except OSError as exc:
            message = f"cannot list folder: {exc.strerror}"
            yield InputEntry(entry.path, UnreadableInputError(message, entry.path))


def _is_video_name(name: str) -> bool:
    return os.path.splitext(name)[1].lower() in VIDEO_EXTENSIONS
