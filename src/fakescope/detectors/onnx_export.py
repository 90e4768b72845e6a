"""ONNX export of learned (torch) detectors, and an onnxruntime backend to score with it.

Lives next to :mod:`fakescope.detectors.torch_detector` because it is that class's bridge: the
export reads a :class:`~fakescope.detectors.torch_detector.TorchDetector`'s network and input
config, and the backend plugs back into it (:meth:`TorchDetector.use_onnx`), so the
preprocessing (:class:`~fakescope.nn.preprocess.InputConfig` centre crops, normalisation,
batching by shape) is the very code the torch path runs; only the network call differs.

Export (:func:`export_onnx`): ``torch.onnx.export(..., dynamo=False, opset_version=17)`` (the
TorchScript exporter: it needs no ``onnxscript`` and traces any network the detectors build),
input ``input`` (N, 3, H, W) float32, output ``logits``. Batch, height and width are dynamic
when the network allows it: after exporting, onnxruntime runs the file at the crop size and at
a second, smaller size, and compares with torch. A network whose trace bakes in its input size
(adaptive pooling to a grid, shape arithmetic in Python) fails the second check and is
exported again with a fixed height and width; the backend then refuses crops of another size
instead of returning wrong numbers. The file is written as ``model.onnx`` next to the model's
``config.json``, with ``model.onnx.json`` saying how it was exported and how close it came.

Needs the ``onnx`` package for exporting (torch's exporter writes through it) and
``onnxruntime`` (extra ``onnx``) for checking and running.
"""

from __future__ import annotations

import json
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from fakescope.errors import ModelError
from fakescope.nn.preprocess import InputConfig, batches_by_shape

if TYPE_CHECKING:
    from fakescope.detectors.base import Detector
    from fakescope.detectors.torch_detector import TorchDetector

ONNX_FILE = "model.onnx"
SIDECAR_SUFFIX = ".json"  # model.onnx.json
OPSET = 17
INPUT_NAME = "input"
OUTPUT_NAME = "logits"
#: Largest |onnxruntime logit - torch logit| the export check accepts. Float32 kernels differ in
#: summation order; 1e-4 on logits is far below anything that moves a verdict.
DEFAULT_TOLERANCE = 1e-4


def onnx_path(path: str | Path) -> Path:
    """A ``.onnx`` file as given, or ``model.onnx`` inside a model folder."""
    path = Path(path)
    return path if path.suffix == ".onnx" else path / ONNX_FILE


def _have_onnxruntime() -> bool:
    try:
        import onnxruntime  # noqa: F401
    except ImportError:
        return False
    return True


def _check_sizes(config: InputConfig, min_side: int) -> list[tuple[int, int]]:
    """The crop size, and a second, smaller and non-square size to test dynamic axes with."""
    size = int(config.crop_size)
    other = (max(min_side, (size * 3) // 4), max(min_side, size // 2))
    return [(size, size)] if other == (size, size) else [(size, size), other]


def export_onnx(
    detector: TorchDetector,
    path: str | Path,
    *,
    check: bool = True,
    tolerance: float = DEFAULT_TOLERANCE,
    dynamic_spatial: bool | None = None,
) -> Path:
    """Export ``detector.network_`` to ``path`` (a ``.onnx`` file or a model folder).

    ``dynamic_spatial=None`` tries dynamic height and width and falls back to fixed ones if the
    check shows the network cannot take other sizes; ``True``/``False`` force a choice. With
    ``check`` (and onnxruntime installed), onnxruntime's logits must match torch's within
    ``tolerance`` or :class:`~fakescope.errors.ModelError` is raised. Returns the file's path.
    """
    import torch

    network = detector._network()
    config = detector.input_config()
    target = onnx_path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    sizes = _check_sizes(config, int(detector.min_image_side))
    rng = np.random.default_rng(0)
    # Two images per batch: a batch of one lets the tracer fold the batch axis into constants.
    samples = {size: rng.integers(0, 256, size=(2, *size, 3), dtype=np.uint8) for size in sizes}
    checking = check and _have_onnxruntime()

    def export(spatial: bool) -> None:
        axes: dict[str, dict[int, str]] = {INPUT_NAME: {0: "batch"}, OUTPUT_NAME: {0: "batch"}}
        if spatial:
            axes[INPUT_NAME].update({2: "height", 3: "width"})
        dummy = torch.from_numpy(config.normalise(samples[sizes[0]]))
        network.eval()
        try:
            with warnings.catch_warnings():
                # dynamo=False is a deliberate choice (see the module docstring), not news to users.
                warnings.simplefilter("ignore", DeprecationWarning)
                torch.onnx.export(
                    network,
                    (dummy,),
                    str(target),
                    dynamo=False,
                    opset_version=OPSET,
                    input_names=[INPUT_NAME],
                    output_names=[OUTPUT_NAME],
                    dynamic_axes=axes,
                )
        except Exception as exc:  # exporter errors come in many types; one message for all
            raise ModelError(f"{detector.name}: ONNX export failed: {exc}") from exc

    def differences(spatial: bool) -> dict[str, float]:
        """Max |ort - torch| per checked size; NaN where either side cannot run that size."""
        import onnxruntime as ort

        session = ort.InferenceSession(str(target), providers=["CPUExecutionProvider"])
        result = {}
        for size in sizes if spatial else sizes[:1]:
            batch = config.normalise(samples[size])
            try:
                with torch.inference_mode():
                    expected = network(torch.from_numpy(batch)).reshape(-1).double().numpy()
                got = session.run([OUTPUT_NAME], {INPUT_NAME: batch})[0].reshape(-1)
                result[f"{size[0]}x{size[1]}"] = float(np.max(np.abs(got - expected)))
            except Exception:  # the other size is a probe: failing it means "fixed size"
                result[f"{size[0]}x{size[1]}"] = float("nan")
        return result

    spatial = dynamic_spatial is not False
    try:
        export(spatial)
    except ModelError:
        # Some operators cannot be exported with a symbolic input size at all (adaptive
        # pooling to a grid): in auto mode that means "fixed size", not failure.
        if dynamic_spatial is not None:
            raise
        spatial = False
        export(spatial)
    diffs = differences(spatial) if checking else {}
    if checking and spatial and dynamic_spatial is None and len(diffs) > 1:
        probe = list(diffs.values())[1]
        if not probe <= tolerance:  # also catches NaN
            spatial = False
            export(spatial)
            diffs = differences(spatial)
    if checking:
        worst = max(diffs.values())
        if not worst <= tolerance:
            raise ModelError(
                f"{detector.name}: ONNX logits differ from torch by {worst:.3g} "
                f"(tolerance {tolerance:g}) at {diffs}"
            )
    sidecar = {
        "detector": detector.name,
        "opset": OPSET,
        "dynamic_axes": ["batch", "height", "width"] if spatial else ["batch"],
        "input_size": None if spatial else list(sizes[0]),
        "input_config": config.to_dict(),
        "checked": checking,
        "max_abs_logit_difference": diffs,
        "torch_version": torch.__version__,
    }
    Path(f"{target}{SIDECAR_SUFFIX}").write_text(json.dumps(sidecar, indent=2) + "\n")
    return target


class OnnxBackend:
    """Scores with an exported network through onnxruntime, preprocessing as torch does.

    ``predict_logits`` centre-crops with the model's :class:`InputConfig`, batches crops of
    equal shape (``batch_size`` at most) and runs the session; a model exported with a fixed
    input size refuses crops of another size.
    """

    def __init__(
        self,
        path: str | Path,
        input_config: InputConfig,
        batch_size: int = 32,
        threads: int = 0,
        providers: Sequence[str] | None = None,
    ) -> None:
        try:
            import onnxruntime as ort
        except ImportError as exc:
            raise ModelError(
                "ONNX inference needs onnxruntime: pip install 'fakescope[onnx]'"
            ) from exc
        self.path = onnx_path(path)
        if not self.path.is_file():
            raise ModelError(f"no ONNX model at {self.path}; run `fakescope export-onnx` first")
        self.input_config = input_config
        self.batch_size = max(1, int(batch_size))
        options = ort.SessionOptions()
        if int(threads) > 0:
            options.intra_op_num_threads = int(threads)
        try:
            self.session = ort.InferenceSession(
                str(self.path), options, providers=list(providers or ["CPUExecutionProvider"])
            )
        except Exception as exc:  # onnxruntime raises its own exception types
            raise ModelError(f"cannot load {self.path}: {exc}") from exc
        (model_input,) = self.session.get_inputs()
        self.input_name = model_input.name
        # Fixed (int) height/width when exported without dynamic spatial axes, else None.
        self.fixed_size = tuple(d if isinstance(d, int) else None for d in model_input.shape[2:])

    @classmethod
    def from_directory(
        cls, directory: str | Path, batch_size: int = 32, threads: int = 0
    ) -> OnnxBackend:
        """The backend of a saved torch detector's folder (its ``config.json`` + model.onnx)."""
        from fakescope.detectors.base import read_config

        state = read_config(directory).get("state", {})
        try:
            config = InputConfig.from_dict(state["input_config"])
        except (KeyError, TypeError, ValueError) as exc:
            raise ModelError(f"{directory}: config.json has no valid input_config") from exc
        return cls(Path(directory) / ONNX_FILE, config, batch_size, threads)

    def predict_logits(self, images: Sequence[np.ndarray]) -> np.ndarray:
        crops = [self.input_config.centre_crop(img) for img in images]
        logits = np.empty(len(crops), dtype=np.float64)
        for indices, batch in batches_by_shape(crops, self.batch_size):
            size = tuple(batch.shape[1:3])
            if any(f is not None and f != s for f, s in zip(self.fixed_size, size, strict=True)):
                raise ModelError(
                    f"{self.path} was exported for {self.fixed_size} inputs only, got a "
                    f"{size[0]}x{size[1]} crop"
                )
            out = self.session.run(None, {self.input_name: self.input_config.normalise(batch)})
            logits[indices] = np.asarray(out[0], dtype=np.float64).reshape(-1)
        return logits

    def predict_proba(self, images: Sequence[np.ndarray]) -> np.ndarray:
        from scipy.special import expit

        return expit(self.predict_logits(images))


def torch_members(detector: Detector, directory: str | Path) -> list[tuple[str, Any, Path]]:
    """(name, torch detector, its folder) for a torch detector or a fusion's torch members."""
    from fakescope.detectors.torch_detector import TorchDetector

    directory = Path(directory)
    if isinstance(detector, TorchDetector):
        return [(detector.name, detector, directory)]
    found = []
    members = getattr(detector, "member_detectors_", None) or {}
    for label, member in members.items():
        if isinstance(member, TorchDetector):
            found.append((label, member, directory / "members" / label))
    return found


def use_exported_onnx(detector: Detector, directory: str | Path) -> list[str]:
    """Switch every torch network in ``detector`` (loaded from ``directory``) to its model.onnx.

    Returns the names switched; a torch network without an exported file is an error, so a
    user asking for ONNX never gets torch silently.
    """
    switched = []
    for name, member, folder in torch_members(detector, directory):
        member.use_onnx(folder)
        switched.append(name)
    return switched
