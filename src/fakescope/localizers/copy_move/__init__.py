"""Copy-move matcher: duplicated regions within one image, source and target (README.md)."""

from fakescope.localizers.copy_move.localizer import CopyMoveLocalizer

__all__ = ["CopyMoveLocalizer"]
