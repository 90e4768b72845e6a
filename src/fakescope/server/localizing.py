"""Edit localization on demand: where a kept upload was changed, computed when someone asks.

Scanning answers "was this image generated or manipulated?" for every file, fast. Where it
was changed (a splice, a copy-move, an inpainted or warped region) costs a segmentation pass,
seconds per megapixel on a CPU, so the server does not run it on every scanned file: it runs
the configured localizer (``ServerSettings.localizer``, by default the bundled
``segmentation-field``, trained to raise fewer false alarms on photos from the field) on the
files a person opens or a client asks about, one at a time, and keeps the last results in
memory: their summaries and overlay PNGs (at most 1024 px), not the full-resolution maps, so
a 50-megapixel upload does not pin a gigabyte.

The localizer is loaded on first use. A server without the learned extra (torch) or with
``--localizer none`` still serves everything else; asking for edits then answers 503 with the
reason, and the report lists no edits overlay.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from fakescope.io.image import LoadedImage
from fakescope.localizers.base import Localizer
from fakescope.pipeline.localize import localize_loaded
from fakescope.results import Localization
from fakescope.server import views

#: Localized uploads remembered (a summary and a screen-sized PNG each).
CACHE_SIZE = 32


@dataclass(frozen=True)
class LocalizedUpload:
    """What is kept of one upload's localization: its summary and its overlay PNG."""

    summary: dict[str, Any]
    overlay_png: bytes

    @classmethod
    def from_localization(cls, localization: Localization, seconds: float) -> LocalizedUpload:
        height, width = localization.heatmap.shape
        heat = views.LocalizationMap(values=localization.heatmap, kind="heatmap")
        summary = {
            **localization.summary(),
            "manipulated": bool(localization.score >= localization.verdict_threshold),
            "seconds": round(seconds, 3),
        }
        return cls(summary=summary, overlay_png=views.heatmap_png(heat, (width, height)))


class UnavailableError(RuntimeError):
    """The server has no usable localizer; the message says why."""


class OnDemandLocalizer:
    """Loads ``name`` (or uses ``localizer``) lazily and localizes one image at a time.

    ``name`` None and no ``localizer``: edit localization is switched off.
    """

    def __init__(
        self,
        name: str | None,
        localizer: Localizer | None = None,
        cache_size: int = CACHE_SIZE,
    ) -> None:
        self.name = name if localizer is None else str(localizer.name)
        self._localizer = localizer
        self._load_error: str | None = None
        self._loaded = localizer is not None
        self._cache_size = max(1, cache_size)
        self._cache: OrderedDict[str, LocalizedUpload] = OrderedDict()
        # One localization at a time: each uses every core already, and a second in parallel
        # would only double the memory. Loading has a lock of its own, so a report that only
        # asks whether edits are available never waits for another file's localization.
        self._lock = threading.Lock()
        self._load_lock = threading.Lock()

    def _load(self) -> Localizer | None:
        if not self._loaded and self.name is not None:
            self._loaded = True
            from fakescope.errors import FakescopeError
            from fakescope.localizers import load_localizer

            try:
                self._localizer = load_localizer(str(self.name))
            except (FakescopeError, KeyError, ImportError, OSError) as exc:
                self._load_error = f"{type(exc).__name__}: {exc}"
        return self._localizer

    def unavailable_reason(self) -> str | None:
        """None when edits can be localized; else why not (loads the localizer once)."""
        with self._load_lock:
            self._load()
        if self._localizer is not None:
            return None
        if self.name is None:
            return "the server runs no localizer (start it with --localizer NAME)"
        return f"the localizer {self.name!r} cannot be loaded ({self._load_error})"

    def localize(self, key: str, load: Callable[[], LoadedImage]) -> LocalizedUpload:
        """The localization of the file ``load`` decodes, remembered under ``key`` (its
        SHA-256); ``load`` is only called when ``key`` is not remembered."""
        reason = self.unavailable_reason()
        if reason is not None:
            raise UnavailableError(reason)
        with self._lock:
            cached = self._cache.get(key)
            if cached is not None:
                self._cache.move_to_end(key)
                return cached
            assert self._localizer is not None  # unavailable_reason() said so
            loaded = load()
            started = time.perf_counter()
            localization = localize_loaded(self._localizer, loaded)
            result = LocalizedUpload.from_localization(localization, time.perf_counter() - started)
            self._cache[key] = result
            while len(self._cache) > self._cache_size:
                self._cache.popitem(last=False)
            return result
