"""Plain-torch building blocks shared by the learned detectors (no I/O, no registry).

- :mod:`fakescope.nn.preprocess`: :class:`InputConfig`, the preprocessing a network expects
  (crop size, mean, std), carried by the model so callers never keep mean/std tables.
- :mod:`fakescope.nn.augment`: seeded, replayable training augmentations (blur, JPEG, flips).

Importing this package does not import torch; its modules do.
"""

# Architecture limits that hyper-parameter checks need without importing torch (the detector
# registry creates and validates detectors on machines without it).
#: Largest binomial filter BlurPool supports.
MAX_FILTER_SIZE = 7
#: Number of entries of ``MobileNetV2.features`` (stem, 17 inverted residuals, last 1x1 conv).
N_FEATURE_BLOCKS = 19
