"""False alarms of a localizer on a user's own untouched photos, and the threshold that bounds them.

A benchmark's pristine tiles come from the same kinds of sources as its training photos, so the
false-alarm rate measured there under-states the rate on photos from other cameras, processing
or subjects (the localization model card measures 41 % for ``segmentation-default`` on 27
untouched images outside its benchmark). Only the user's own untouched photos say what happens
on their material. :func:`false_alarm_report` localizes each of them and reports how many the
localizer flags at its calibrated image threshold, and which ``--image-threshold`` would keep
the flagged share at or under each target rate *on these photos*: an empirical quantile, so
with a few dozen photos it is a rough guide, and the photos used to choose a threshold
under-state the rate it will have on new ones.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from typing import Any

import numpy as np

from fakescope.errors import FakescopeError
from fakescope.io.discover import InputEntry
from fakescope.io.image import DEFAULT_MAX_BYTES, DEFAULT_MAX_PIXELS, load_image
from fakescope.localizers.base import Localizer
from fakescope.pipeline.localize import localize_loaded

#: Target false-alarm rates reported by default.
DEFAULT_RATES = (0.01, 0.05, 0.10)


def threshold_for_rate(scores: np.ndarray, rate: float) -> float:
    """The smallest image threshold that flags at most ``rate`` of ``scores`` (score >= t).

    Flagging is ``score >= threshold``: with ``k = floor(rate * n)`` images allowed to stay
    flagged, the answer is just above the ``(k + 1)``-th largest score, rounded up to 6
    decimals so that the printed value can be passed to ``--image-threshold`` as is; 0.0 when
    the rate allows every image to be flagged.
    """
    if not 0.0 <= rate <= 1.0:
        raise ValueError(f"rate must be in [0, 1], got {rate}")
    ordered = np.sort(np.asarray(scores, dtype=np.float64))[::-1]
    allowed = int(np.floor(rate * len(ordered) + 1e-9))
    if allowed >= len(ordered):
        return 0.0
    return math.ceil(float(np.nextafter(ordered[allowed], np.inf)) * 1e6) / 1e6


def false_alarm_report(
    localizer: Localizer,
    entries: Iterable[InputEntry],
    *,
    name: str,
    rates: tuple[float, ...] = DEFAULT_RATES,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    max_bytes: int = DEFAULT_MAX_BYTES,
    on_progress: Callable[[], None] | None = None,
) -> dict[str, Any]:
    """Localize every untouched image in ``entries``; a JSON-ready report.

    Bad files (unreadable, truncated, too large, too small for the method) become rows with
    an ``error`` and are left out of the rates; they never abort the run.
    """
    rows: list[dict[str, Any]] = []
    for entry in entries:
        row: dict[str, Any] = {"path": entry.path}
        try:
            if entry.error is not None:
                raise entry.error
            loaded = load_image(entry.path, max_pixels=max_pixels, max_bytes=max_bytes)
            localization = localize_loaded(localizer, loaded)
        except FakescopeError as exc:
            row["error"] = str(exc)
        else:
            row.update(
                score=float(localization.score),
                flagged=bool(localization.score >= localization.verdict_threshold),
                tampered_fraction=round(localization.tampered_fraction, 6),
                width=int(loaded.pixels.shape[1]),
                height=int(loaded.pixels.shape[0]),
            )
        rows.append(row)
        if on_progress is not None:
            on_progress()
    scored = [row for row in rows if "error" not in row]
    scores = np.asarray([row["score"] for row in scored], dtype=np.float64)
    flagged = sum(row["flagged"] for row in scored)
    return {
        "task": "false-alarms",
        "localizer": {
            "name": name,
            "method": localizer.name,
            "threshold": float(localizer.threshold),
            "image_threshold": float(localizer.image_threshold),
        },
        "n_images": len(scored),
        "n_errors": len(rows) - len(scored),
        "n_flagged": int(flagged),
        "flagged_share": round(flagged / len(scored), 6) if scored else None,
        "score_quantiles": (
            {str(q): round(float(np.quantile(scores, q)), 6) for q in (0.5, 0.9, 0.95, 0.99)}
            if scored
            else {}
        ),
        "image_threshold_for_rate": (
            {str(rate): threshold_for_rate(scores, rate) for rate in rates} if scored else {}
        ),
        "images": rows,
    }
