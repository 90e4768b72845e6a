"""The CLIP probe detector: UnivFD (Ojha, Li, Lee, CVPR 2023), a probe on frozen CLIP features.

Images go through the frozen CLIP ViT-B/16 image encoder (:mod:`.encoder`, INT8 ONNX run with
onnxruntime) to L2-normalised 512-d embeddings; a head from :mod:`.heads` turns them into the
probability of *fake*: ``logistic`` (the paper's linear probe, default) or ``knn`` (the paper's
nearest-neighbour variant, cosine similarity).

The encoder is never trained, so embedding is the whole cost of fitting and scoring;
:meth:`ClipProbeDetector.transform` and :meth:`ClipProbeDetector.fit_features` let a pipeline
compute embeddings once, and ``cache_embeddings=True`` keeps them on disk between runs.

A fitted probe is only meaningful on the encoder file it was fitted with: the saved config
records that file's name, SHA-256 and onnxruntime version; another file is refused at load, and
another onnxruntime version (INT8 kernels differ slightly between builds) draws a warning.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, ClassVar, Self

import numpy as np

from fakescope.detectors.base import Detector, check_images_labels
from fakescope.detectors.clip_probe.encoder import CachedEncoder, ClipEncoder, Encoder, l2_normalise
from fakescope.detectors.clip_probe.heads import HEADS, Head
from fakescope.errors import ModelError, NotFittedError


class EncoderVersionWarning(UserWarning):
    """A probe fitted with one onnxruntime version is used with another."""


class ClipProbeDetector(Detector):
    """Frozen CLIP ViT-B/16 embeddings → logistic probe or k-NN (UnivFD)."""

    name = "clip-probe"
    # The encoder resizes every image to 224; below this there is too little to see.
    min_image_side: ClassVar[int] = 32

    def __init__(
        self,
        head: str = "logistic",
        C: float = 1.0,
        k: int = 10,
        temperature: float = 0.05,
        threads: int = 0,
        batch_size: int = 16,
        cache_embeddings: bool = False,
    ) -> None:
        self.head = head
        self.C = C
        self.k = k
        self.temperature = temperature
        self.threads = threads
        self.batch_size = batch_size
        self.cache_embeddings = cache_embeddings

    def check_params(self) -> None:
        if self.head not in HEADS:
            raise ValueError(f"head must be one of {sorted(HEADS)}, got {self.head!r}")
        if not float(self.C) > 0:
            raise ValueError(f"C must be positive, got {self.C}")
        if int(self.k) < 1:
            raise ValueError(f"k must be at least 1, got {self.k}")
        if not float(self.temperature) > 0:
            raise ValueError(f"temperature must be positive, got {self.temperature}")
        if int(self.threads) < 0:
            raise ValueError(
                f"threads must be 0 (onnxruntime's default) or more, got {self.threads}"
            )
        if int(self.batch_size) < 1:
            raise ValueError(f"batch_size must be at least 1, got {self.batch_size}")

    # -- the encoder -------------------------------------------------------------------------
    def set_encoder(self, encoder: Encoder) -> Self:
        """Use ``encoder`` instead of the default (the resolved ``clip-vit-b16-int8`` file).

        A fitted detector refuses an encoder whose SHA-256 differs from the one it was fitted
        with. The encoder is not a hyper-parameter: it is not saved, and ``clone`` drops it.
        """
        self._encoder: Encoder | None = self._checked(encoder)
        return self

    def encoder(self) -> Encoder:
        """The encoder in use (built on first call), wrapped in the disk cache if enabled."""
        encoder = getattr(self, "_encoder", None)
        if encoder is None:
            encoder = ClipEncoder(threads=int(self.threads), batch_size=int(self.batch_size))
            self._encoder = encoder = self._checked(encoder)
        return CachedEncoder(encoder) if self.cache_embeddings else encoder

    def _checked(self, encoder: Encoder) -> Encoder:
        fitted_with = getattr(self, "encoder_", None)
        if fitted_with is None:  # unfitted: any encoder goes, and fit records it
            return encoder
        if encoder.sha256 != fitted_with["sha256"]:
            raise ModelError(
                f"this clip-probe was fitted on encoder {fitted_with['name']!r} with sha256 "
                f"{fitted_with['sha256']}, but the encoder file "
                f"({getattr(encoder, 'model_path', encoder.name)}) has sha256 "
                f"{encoder.sha256}; its scores would be meaningless. Fetch the matching "
                "encoder or refit the probe"
            )
        if encoder.runtime != fitted_with["runtime"]:
            warnings.warn(
                f"this clip-probe was fitted with {fitted_with['runtime']} and now runs on "
                f"{encoder.runtime}; INT8 embeddings shift slightly between versions, so "
                "scores may drift (pip install -e .[onnx] installs the pinned version)",
                EncoderVersionWarning,
                stacklevel=3,
            )
        return encoder

    # -- features ----------------------------------------------------------------------------
    def transform(
        self,
        images: Sequence[np.ndarray],
        on_progress: Callable[[int, int], None] | None = None,
    ) -> np.ndarray:
        """L2-normalised CLIP embeddings, shape (n, 512): the input of :meth:`fit_features`."""
        self.check_params()
        return self.encoder().embed(images, on_progress)

    # -- fitting -----------------------------------------------------------------------------
    def fit(
        self,
        images: Sequence[np.ndarray],
        labels: Sequence[int],
        on_progress: Callable[[int, int], None] | None = None,
    ) -> Self:
        """Embed ``images`` (``on_progress(done, total)`` per batch) and fit the head."""
        self.check_params()
        y = check_images_labels(images, labels)
        self._forget_fit()  # refitting may use another encoder; the old record must not refuse it
        return self.fit_features(self.transform(images, on_progress), y)

    def fit_features(self, embeddings: np.ndarray, labels: Sequence[int] | np.ndarray) -> Self:
        """Fit on embeddings from :meth:`transform`, computed with this detector's encoder.

        The encoder in use is recorded as the one the probe belongs to, so the embeddings must
        come from it. Rows are L2-normalised again (a no-op for :meth:`transform` output).
        """
        self.check_params()
        y = np.asarray(labels, dtype=np.int64).ravel()
        if not np.isin(y, (0, 1)).all() or np.unique(y).size < 2:
            raise ValueError("labels must be 0 (real) or 1 (fake), with both present")
        self._forget_fit()
        encoder = self.encoder()
        x = self._check_features(embeddings, encoder.dim, len(y))
        head = self._new_head()
        head.fit(x, y)
        self.head_ = head
        self.encoder_ = {
            "name": encoder.name,
            "sha256": encoder.sha256,
            "runtime": encoder.runtime,
            "dim": int(encoder.dim),
        }
        return self

    def _new_head(self) -> Head:
        cls = HEADS[self.head]
        return cls(**{name: getattr(self, name) for name in cls.param_names})

    def _forget_fit(self) -> None:
        for attribute in ("head_", "encoder_"):
            self.__dict__.pop(attribute, None)

    @staticmethod
    def _check_features(embeddings: np.ndarray, dim: int, n: int | None = None) -> np.ndarray:
        x = np.asarray(embeddings, dtype=np.float32)
        if x.ndim != 2 or x.shape[1] != dim or (n is not None and x.shape[0] != n):
            expected = f"({n if n is not None else 'n'}, {dim})"
            raise ValueError(f"expected embeddings of shape {expected}, got {x.shape}")
        if not np.isfinite(x).all():
            raise ValueError("embeddings hold non-finite values")
        return l2_normalise(x)

    # -- prediction --------------------------------------------------------------------------
    def _fitted_head(self) -> Head:
        head = getattr(self, "head_", None)
        if head is None:
            raise NotFittedError(f"{type(self).__name__} is not fitted; call fit() or load()")
        return head

    def predict_proba(self, images: Sequence[np.ndarray]) -> np.ndarray:
        return self.predict_with_evidence(images)[0]

    def predict_proba_features(self, embeddings: np.ndarray) -> np.ndarray:
        """Probabilities from embeddings computed by :meth:`transform`."""
        return self.score_features(embeddings)[0]

    def score_features(self, embeddings: np.ndarray) -> tuple[np.ndarray, list[dict[str, Any]]]:
        """Probabilities and evidence from precomputed embeddings."""
        head = self._fitted_head()
        return head.score(self._check_features(embeddings, int(self.encoder_["dim"])))

    def explain(self, images: Sequence[np.ndarray]) -> list[dict[str, Any]]:
        return self.predict_with_evidence(images)[1]

    def predict_with_evidence(
        self, images: Sequence[np.ndarray]
    ) -> tuple[np.ndarray, list[dict[str, Any]]]:
        """Scores plus evidence: the probe's logit (``clip_logit``); for k-NN also the cosine
        similarity to the nearest real and nearest fake training image and the neighbour vote.
        """
        self._fitted_head()  # fail before the slow embedding, not after
        return self.score_features(self.transform(images))

    # -- persistence -------------------------------------------------------------------------
    def _weights(self) -> dict[str, np.ndarray]:
        return self._fitted_head().arrays()

    def _state(self) -> dict[str, Any]:
        self._fitted_head()
        return {"encoder": dict(self.encoder_), **self._fitted_head().scalars()}

    def _set_weights(self, weights: dict[str, np.ndarray], state: dict[str, Any]) -> None:
        self.check_params()
        record = state.get("encoder")
        if not isinstance(record, dict) or not all(
            isinstance(record.get(key), str) for key in ("name", "sha256", "runtime")
        ):
            raise ModelError("clip-probe state lacks the encoder record (name, sha256, runtime)")
        try:
            dim = int(record["dim"])
        except (KeyError, TypeError, ValueError) as exc:
            raise ModelError("clip-probe state lacks the embedding dim") from exc
        cls = HEADS[self.head]
        params = {name: getattr(self, name) for name in cls.param_names}
        self.head_ = cls.restore(params, weights, state, dim)
        self.encoder_ = {**record, "dim": dim}

    @classmethod
    def load(cls, directory: str | Path, encoder: Encoder | None = None) -> Self:
        """Load a saved probe and check its encoder now, so a mismatch fails here.

        Without ``encoder`` the default file is resolved (``fakescope weights fetch`` names it
        when missing); a different SHA-256 raises :class:`~fakescope.errors.ModelError`.
        """
        detector = super().load(directory)
        if encoder is not None:
            detector.set_encoder(encoder)
        else:
            detector.encoder()
        return detector
