"""Small, seeded image generators that make training images from real tiles: the generator zoo.

The zoo (:mod:`~fakescope.data.generators.registry`, one table in ``README.md`` here) maps a
name to a lazily imported class: ``ae-transposed``, ``ae-nearest``, ``ae-bilinear``,
``ae-pixelshuffle`` (autoencoders differing only in their last upsampling layer), ``sr-gan``
(4x super-resolution GAN), ``dcgan`` (unconditional DCGAN) and ``processed-real`` (real photos
that were only resized, recompressed, blurred or screenshotted: a real, label-0 control).
``fakescope data synth`` (:mod:`~fakescope.data.generators.synth`) runs any of them over a
folder of real photos.

- :mod:`~fakescope.data.generators.autoencoder`: the tiny convolutional autoencoder behind the
  ``ae-*`` family and the default model's fakes. Needs the ``torch`` extra
  (``pip install -e .[torch]``), as do all network generators.
- :mod:`~fakescope.data.generators.jpeg` and :mod:`~fakescope.data.generators.fakes`: JPEG round
  trips that give fakes the same compression history as the real tiles they are compared with
  (Grommelt et al. 2024), no torch needed.

Nothing here imports torch at package import time, so ``fakescope.data`` works without it.
"""

from __future__ import annotations

from fakescope.data.generators.jpeg import jpeg_round_trip
from fakescope.data.generators.registry import (
    GENERATORS,
    create_generator,
    get_generator_class,
    list_generators,
    load_generator,
)

__all__ = [
    "GENERATORS",
    "create_generator",
    "get_generator_class",
    "jpeg_round_trip",
    "list_generators",
    "load_generator",
]
