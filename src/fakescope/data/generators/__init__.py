"""Small, seeded image generators that make "fake" training images from real tiles.

- :mod:`~fakescope.data.generators.autoencoder`: a tiny convolutional autoencoder whose decoder
  upsamples with a chosen layer type (``upsampling="transposed"`` by default: transposed
  convolutions, the classic source of periodic spectral artefacts, Durall et al. CVPR 2020;
  Chandrasegaran et al. CVPR 2021). Needs the ``torch`` extra (``pip install -e .[torch]``).
- :mod:`~fakescope.data.generators.jpeg`: JPEG round trips that give fakes the same compression
  history as the real tiles they are compared with (Grommelt et al. 2024), no torch needed.

Nothing here imports torch at package import time, so ``fakescope.data`` works without it.
"""

from __future__ import annotations

from fakescope.data.generators.jpeg import jpeg_round_trip

__all__ = ["jpeg_round_trip"]
