"""Plain-torch building blocks shared by the learned detectors (no I/O, no registry).

- :mod:`fakescope.nn.preprocess`: :class:`InputConfig`, the preprocessing a network expects
  (crop size, mean, std), carried by the model so callers never keep mean/std tables.
- :mod:`fakescope.nn.augment`: seeded, replayable training augmentations (blur, JPEG, flips).

Importing this package does not import torch; its modules do.
"""
