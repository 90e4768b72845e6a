"""Forgeries with exact ground truth: spliced, copy-moved, inpainted and warped images.

Each kind is one module with one function ``forge_<kind>(target, rng, *, donor=None, ...)``
returning a :class:`~fakescope.data.forge.base.Forgery` (pixels, exact boolean mask, JSON-ready
parameters, and extra masks or a flow where the kind has them). :data:`FORGERIES` maps the name
used on the command line (``fakescope data forge --kind NAME``) to its entry; nothing dispatches
on names anywhere else.

Adding a kind means writing its module and adding one entry here, with ``ensure_available``
checking its own dependencies (torch, weights) so that a missing one is reported before a batch
starts. ``inpaint-learned`` is one: it fills the region with the generator zoo's ``inpaint-net``,
and its ``ensure_available`` wants torch and a trained model installed with
:func:`~fakescope.data.forge.inpaint_learned.use_inpainter` (the CLI trains or loads it first).

:mod:`fakescope.data.forge.build` turns a folder of real images into a dataset with them.
Importing this package imports neither OpenCV nor torch; the kinds import them when they run.
"""

from __future__ import annotations

from fakescope.data.forge.base import (
    Forgery,
    ForgeryError,
    ForgeryKind,
    MissingDependencyError,
    require_cv2,
)
from fakescope.data.forge.copymove import forge_copymove
from fakescope.data.forge.inpaint import forge_inpaint
from fakescope.data.forge.inpaint_learned import forge_inpaint_learned, require_inpainter
from fakescope.data.forge.splice import forge_splice
from fakescope.data.forge.warp import forge_warp

FORGERIES: dict[str, ForgeryKind] = {
    kind.name: kind
    for kind in (
        ForgeryKind(
            "splice",
            forge_splice,
            "paste a region of another photo, hard, feathered or Poisson-blended",
            needs_donor=True,
        ),
        ForgeryKind(
            "copymove", forge_copymove, "copy a region elsewhere in the image, rotated and scaled"
        ),
        ForgeryKind("inpaint", forge_inpaint, "fill a removed region (OpenCV Telea or NS)"),
        ForgeryKind("warp", forge_warp, "liquify-like smooth local flow (push, swirl, pinch)"),
        ForgeryKind(
            "inpaint-learned",
            forge_inpaint_learned,
            "fill a removed region with a learned inpainter (the zoo's inpaint-net)",
            ensure_available=require_inpainter,
        ),
    )
}


def get_forgery(name: str) -> ForgeryKind:
    """The registered kind ``name``; KeyError naming the registered kinds otherwise."""
    try:
        return FORGERIES[name]
    except KeyError:
        raise KeyError(
            f"unknown forgery kind {name!r}; registered: {', '.join(sorted(FORGERIES))}"
        ) from None


__all__ = [
    "FORGERIES",
    "Forgery",
    "ForgeryError",
    "ForgeryKind",
    "MissingDependencyError",
    "get_forgery",
    "require_cv2",
]
