"""Patch scanning: any image-level detector on a sliding window (see README.md)."""

from fakescope.localizers.patch_scan.localizer import PatchScanLocalizer

__all__ = ["PatchScanLocalizer"]
