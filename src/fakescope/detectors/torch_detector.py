"""The shared base of learned (torch) detectors: training loop, batched inference, persistence.

A subclass says *what* the network is; this base says *how* it is trained and run, so every
learned detector trains, scores, saves and exports the same way:

- :meth:`TorchDetector.build_network` returns a fresh ``torch.nn.Module`` mapping a normalised
  (N, 3, H, W) float batch to (N,) logits of *fake*; :meth:`initialise_network` may load
  pretrained weights into it (e.g. ImageNet for the universal CNN);
- :meth:`TorchDetector.input_config` returns the :class:`~fakescope.nn.preprocess.InputConfig`
  (crop size, mean, std): callers never normalise by hand.

Training (``fit``): seeded (``random_state`` seeds torch, the crops and the augmentation), AdamW
with a cosine learning-rate decay, class-balanced binary cross-entropy, random crops plus
:class:`~fakescope.nn.augment.TrainingAugment` (blur/JPEG probabilities are hyper-parameters).
``fit(..., on_progress=callback)`` reports ``(step, total_steps)``.

Inference: centre crops at native resolution (no resampling, see :mod:`fakescope.nn.preprocess`),
batched by shape, under ``torch.inference_mode``.

Persistence: ``config.json`` (hyper-parameters + input config) and ``weights.safetensors`` (the
state dict; never a pickle). Subclasses must declare the hyper-parameters named in
:data:`TRAINING_PARAMS` in their ``__init__`` (scikit-learn needs explicit arguments).
"""

from __future__ import annotations

import math
import time
from abc import abstractmethod
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Self

import numpy as np

from fakescope.detectors.base import Detector, check_images_labels
from fakescope.errors import ModelError, NotFittedError
from fakescope.nn.augment import TrainingAugment
from fakescope.nn.preprocess import InputConfig, batches_by_shape

if TYPE_CHECKING:
    import torch

ProgressCallback = Callable[[int, int], None]

#: Hyper-parameters every TorchDetector subclass declares (with its own defaults).
TRAINING_PARAMS = (
    "epochs",
    "batch_size",
    "learning_rate",
    "weight_decay",
    "blur_prob",
    "jpeg_prob",
    "random_state",
    "threads",
)


class TorchDetector(Detector):
    """Base class of learned detectors; see the module docstring for the contract."""

    weights_format: ClassVar[str] = "safetensors"
    min_image_side: ClassVar[int] = 16

    # Declared by subclasses' __init__; listed here for type checkers.
    epochs: int
    batch_size: int
    learning_rate: float
    weight_decay: float
    blur_prob: float
    jpeg_prob: float
    random_state: int
    threads: int
    #: Optional (subclasses that declare it in ``__init__``): score the mean logit over a
    #: ``crop_grid`` x ``crop_grid`` grid of crops instead of the centre crop alone.
    crop_grid: int

    # -- what subclasses provide -------------------------------------------------------------
    @abstractmethod
    def build_network(self) -> torch.nn.Module:
        """A fresh network: normalised (N, 3, H, W) float32 -> (N,) logits of *fake*."""

    @abstractmethod
    def input_config(self) -> InputConfig:
        """Crop size and normalisation the network expects."""

    def initialise_network(self, network: torch.nn.Module) -> None:
        """Load pretrained weights before training (default: keep the random initialisation)."""

    def trainable_parameters(self, network: torch.nn.Module) -> Iterable[torch.nn.Parameter]:
        """Parameters the optimiser updates (default: all); override to freeze a backbone."""
        return network.parameters()

    def augmentation(self) -> TrainingAugment:
        return TrainingAugment(blur_prob=float(self.blur_prob), jpeg_prob=float(self.jpeg_prob))

    # -- checks ------------------------------------------------------------------------------
    def check_params(self) -> None:
        if int(self.epochs) < 1:
            raise ValueError(f"epochs must be at least 1, got {self.epochs}")
        if int(self.batch_size) < 1:
            raise ValueError(f"batch_size must be at least 1, got {self.batch_size}")
        if not float(self.learning_rate) > 0:
            raise ValueError(f"learning_rate must be positive, got {self.learning_rate}")
        if float(self.weight_decay) < 0:
            raise ValueError(f"weight_decay must be non-negative, got {self.weight_decay}")
        self.augmentation()  # validates the probabilities
        if int(getattr(self, "crop_grid", 1)) < 1:
            raise ValueError(f"crop_grid must be at least 1, got {self.crop_grid}")

    def _set_threads(self) -> None:
        import torch

        if int(self.threads) > 0:
            torch.set_num_threads(int(self.threads))

    # -- training ----------------------------------------------------------------------------
    def fit(
        self,
        images: Sequence[np.ndarray],
        labels: Sequence[int],
        on_progress: ProgressCallback | None = None,
    ) -> Self:
        import torch

        self.check_params()
        y = check_images_labels(images, labels)
        self._set_threads()
        torch.manual_seed(int(self.random_state))
        config = self.input_config()
        # One crop size for all of training (batches must stack): the configured size, or the
        # smallest side in the training set when some image is smaller.
        crop = min(config.crop_size, *(min(img.shape[:2]) for img in images))
        network = self.build_network()
        self.initialise_network(network)
        augment = self.augmentation()
        optimiser = torch.optim.AdamW(
            list(self.trainable_parameters(network)),
            lr=float(self.learning_rate),
            weight_decay=float(self.weight_decay),
        )
        steps_per_epoch = math.ceil(len(images) / int(self.batch_size))
        total = steps_per_epoch * int(self.epochs)
        schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimiser, T_max=total)
        # Class-balanced loss: the rarer class weighs more, so the prior does not decide.
        n_fake = int(y.sum())
        pos_weight = torch.tensor((len(y) - n_fake) / n_fake, dtype=torch.float32)
        loss_fn = torch.nn.BCEWithLogitsLoss(pos_weight=pos_weight)
        order_rng = np.random.default_rng(int(self.random_state))
        step, started, losses = 0, time.perf_counter(), []
        network.train()
        for epoch in range(int(self.epochs)):
            order = order_rng.permutation(len(images))
            for start in range(0, len(order), int(self.batch_size)):
                chunk = order[start : start + int(self.batch_size)]
                batch = []
                for index in chunk:
                    rng = augment.rng_for(int(self.random_state), epoch, int(index))
                    pixels = config.random_crop(images[index], rng, crop)
                    batch.append(augment(pixels, rng)[0])
                inputs = torch.from_numpy(config.normalise(np.stack(batch)))
                targets = torch.from_numpy(y[chunk].astype(np.float32))
                optimiser.zero_grad(set_to_none=True)
                loss = loss_fn(network(inputs).reshape(-1), targets)
                if not torch.isfinite(loss):
                    raise ModelError(f"training diverged at step {step} (loss {loss.item()})")
                loss.backward()
                optimiser.step()
                schedule.step()
                losses.append(float(loss.item()))
                step += 1
                if on_progress is not None:
                    on_progress(step, total)
        network.eval()
        self.network_ = network
        self.onnx_backend_ = None  # an exported file holds the previous weights
        self.training_log_ = {
            "steps": step,
            "seconds": round(time.perf_counter() - started, 2),
            "train_crop": crop,
            "final_loss": float(np.mean(losses[-steps_per_epoch:])),
        }
        return self

    # -- inference ---------------------------------------------------------------------------
    def _network(self) -> torch.nn.Module:
        network = getattr(self, "network_", None)
        if network is None:
            raise NotFittedError(f"{self.name} detector is not fitted; call fit() or load()")
        return network

    def use_onnx(self, path: str | Path | None) -> Self:
        """Score through onnxruntime with the exported ``path`` (a model folder or .onnx file).

        Same crops, normalisation and batching as torch (see
        :mod:`fakescope.detectors.onnx_export`); ``None`` goes back to torch. ``fit`` and
        ``load`` also go back to torch, since an exported file belongs to one set of weights.
        """
        if path is None:
            self.onnx_backend_ = None
            return self
        from fakescope.detectors.onnx_export import OnnxBackend

        self.onnx_backend_ = OnnxBackend(
            path, self.input_config(), int(self.batch_size), int(self.threads)
        )
        return self

    def forward_batches(
        self,
        images: Sequence[np.ndarray],
        forward: Callable[[torch.Tensor], Sequence[torch.Tensor]],
    ) -> list[np.ndarray]:
        """Run ``forward`` on the centre crops, batched by shape, under inference mode.

        ``forward`` maps a normalised batch to a sequence of per-image tensors (first axis =
        batch); the result holds one float64 array per output, rows in input order. Subclasses
        that report more than the logit (per-stream parts, band energies) use this instead of
        repeating the crop-batch-normalise loop.
        """
        import torch

        self._network()  # fail with NotFittedError before any work
        self._set_threads()
        config = self.input_config()
        crops = [config.centre_crop(img) for img in images]
        outputs: list[np.ndarray] | None = None
        with torch.inference_mode():
            for indices, batch in batches_by_shape(crops, int(self.batch_size)):
                results = forward(torch.from_numpy(config.normalise(batch)))
                if outputs is None:
                    outputs = [
                        np.empty((len(crops), *r.shape[1:]), dtype=np.float64) for r in results
                    ]
                for output, result in zip(outputs, results, strict=True):
                    output[indices] = result.double().numpy()
        return outputs if outputs is not None else []

    def predict_logits(self, images: Sequence[np.ndarray]) -> np.ndarray:
        """Logits of *fake*, shape (n,): centre crops (or the mean over a grid), batched."""
        grid = int(getattr(self, "crop_grid", 1))
        if grid <= 1:
            return self._crop_logits(images)
        config = self.input_config()
        owners: list[int] = []
        crops: list[np.ndarray] = []
        for index, image in enumerate(images):
            image_crops = config.grid_crops(image, grid)
            owners += [index] * len(image_crops)
            crops += image_crops
        if not crops:
            return self._crop_logits([])
        # Each grid crop is at most crop_size, so the per-crop centre crop below keeps it whole.
        logits = self._crop_logits(crops)
        counts = np.bincount(owners, minlength=len(images))
        return np.bincount(owners, weights=logits, minlength=len(images)) / counts

    def _crop_logits(self, images: Sequence[np.ndarray]) -> np.ndarray:
        backend = getattr(self, "onnx_backend_", None)
        if backend is not None:
            return backend.predict_logits(images)
        if not len(images):
            self._network()
            return np.empty(0, dtype=np.float64)
        network = self._network()
        return self.forward_batches(images, lambda batch: [network(batch).reshape(-1)])[0]

    def predict_proba(self, images: Sequence[np.ndarray]) -> np.ndarray:
        from scipy.special import expit

        return expit(self.predict_logits(images))

    # -- persistence -------------------------------------------------------------------------
    @classmethod
    def load(cls, directory: str | Path) -> Self:
        """Rebuild a saved detector; without torch or weights, run its exported ``model.onnx``.

        Scanning needs only onnxruntime once a model is exported (``fakescope export-onnx``):
        a deployment, or a bundled model that ships only its ONNX graph, carries no torch and
        no training weights. Without either way to run, the error names both ways out.
        """
        from fakescope.detectors.base import read_config
        from fakescope.detectors.onnx_export import onnx_path

        config = read_config(directory)
        weights = Path(directory) / str(config.get("weights", f"weights.{cls.weights_format}"))
        if _torch_available() and weights.is_file():
            return super().load(directory)
        if not onnx_path(directory).is_file():
            missing = "torch (pip install -e '.[torch]')" if weights.is_file() else weights.name
            raise ModelError(
                f"{directory}: the {cls.name!r} detector needs {missing}, or an exported "
                "model.onnx (`fakescope export-onnx MODEL_DIR`) and onnxruntime"
            )
        try:
            detector = cls(**config.get("params", {}))
            detector.check_params()
        except (TypeError, ValueError) as exc:
            raise ModelError(f"{directory}: invalid detector parameters: {exc}") from exc
        detector.training_log_ = dict(config.get("state", {}).get("training_log", {}))
        return detector.use_onnx(directory)

    def _weights(self) -> dict[str, np.ndarray]:
        return {
            key: value.detach().cpu().numpy().copy()
            for key, value in self._network().state_dict().items()
        }

    def _state(self) -> dict[str, Any]:
        return {
            "input_config": self.input_config().to_dict(),
            "training_log": getattr(self, "training_log_", {}),
        }

    def _set_weights(self, weights: dict[str, np.ndarray], state: dict[str, Any]) -> None:
        import torch

        network = self.build_network()
        try:
            network.load_state_dict({k: torch.from_numpy(v) for k, v in weights.items()})
        except RuntimeError as exc:  # missing/unexpected keys or shape mismatches
            raise ModelError(f"{self.name}: weights do not fit the network: {exc}") from exc
        for key, value in weights.items():
            if np.issubdtype(value.dtype, np.floating) and not np.isfinite(value).all():
                raise ModelError(f"{self.name}: weight {key!r} has non-finite values")
        network.eval()
        self.network_ = network
        self.onnx_backend_ = None
        self.training_log_ = dict(state.get("training_log", {}))


def _torch_available() -> bool:
    from importlib.util import find_spec

    return find_spec("torch") is not None
