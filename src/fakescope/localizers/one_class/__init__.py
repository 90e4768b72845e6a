"""One-class localization: anomalies against a model of pristine noise residuals (README.md)."""

from fakescope.localizers.one_class.localizer import OneClassLocalizer

__all__ = ["OneClassLocalizer"]
