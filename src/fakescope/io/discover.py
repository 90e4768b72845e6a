"""Turning command-line inputs into a lazy stream of files, one entry per file or failure.

Folders are walked recursively in sorted order without building the full list, so memory stays
constant however many files there are. Inside folders only files with image extensions are
picked up; a file named explicitly is always attempted (its content decides). Symlinked folders
are not followed, which rules out cycles. A path that does not exist or a folder that cannot be
listed becomes an entry with an error, and the walk goes on.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from fakescope.errors import InputError, UnreadableInputError
from fakescope.io.image import is_image_path


@dataclass(frozen=True)
class InputEntry:
    path: str
    error: InputError | None = None


def iter_input_files(inputs: Iterable[str]) -> Iterator[InputEntry]:
    """Yield every file reachable from ``inputs`` (files or folders), depth first, sorted."""
    for raw in inputs:
        path = raw.rstrip("\n")
        if not path:
            continue
        if os.path.isdir(path):
            yield from _walk(path)
        elif os.path.lexists(path):
            yield InputEntry(path)
        else:
            yield InputEntry(path, UnreadableInputError("no such file or folder", path))


def _walk(folder: str) -> Iterator[InputEntry]:
    try:
        with os.scandir(folder) as scanner:
            entries = sorted(scanner, key=lambda entry: entry.name)
    except OSError as exc:
        yield InputEntry(
            folder, UnreadableInputError(f"cannot list folder: {exc.strerror}", folder)
        )
        return
    for entry in entries:
        try:
            is_dir = entry.is_dir(follow_symlinks=False)
        except OSError:
            is_dir = False
        if is_dir:
            yield from _walk(entry.path)
        elif is_image_path(entry.name):
            yield InputEntry(entry.path)
