"""Segmentation localizer: a small U-Net on RGB, noise residuals and JPEG cues (see README.md)."""

from fakescope.localizers.segmentation.localizer import SegmentationLocalizer

__all__ = ["SegmentationLocalizer"]
