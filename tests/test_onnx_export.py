"""ONNX export of torch detectors: parity with torch, dynamic sizes, the backend and the CLI."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from typer.testing import CliRunner

pytest.importorskip("torch")
pytest.importorskip("onnx")  # torch's exporter writes through it
pytest.importorskip("onnxruntime")

import torch

from fakescope import detectors as registry
from fakescope.cli.main import app
from fakescope.detectors import load_detector
from fakescope.detectors.onnx_export import ONNX_FILE, OnnxBackend, export_onnx
from fakescope.detectors.torch_detector import TorchDetector
from fakescope.errors import ModelError
from fakescope.nn.preprocess import InputConfig
from tests.conftest import make_images


class TinyTorchDetector(TorchDetector):
    """Two convolutions and global pooling: any input size, trains in well under a second."""

    name = "tiny-torch"

    def __init__(
        self,
        epochs: int = 1,
        batch_size: int = 8,
        learning_rate: float = 1e-2,
        weight_decay: float = 0.0,
        blur_prob: float = 0.0,
        jpeg_prob: float = 0.0,
        random_state: int = 0,
        threads: int = 1,
        width: int = 4,
        grid_pool: bool = False,
    ) -> None:
        self.epochs = epochs
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.weight_decay = weight_decay
        self.blur_prob = blur_prob
        self.jpeg_prob = jpeg_prob
        self.random_state = random_state
        self.threads = threads
        self.width = width
        self.grid_pool = grid_pool

    def build_network(self) -> torch.nn.Module:
        w = int(self.width)
        # grid_pool: a 2x2 adaptive pool, which the TorchScript exporter bakes in for the traced
        # input size, so the export must fall back to a fixed input size.
        pool = torch.nn.AdaptiveAvgPool2d(2 if self.grid_pool else 1)
        return torch.nn.Sequential(
            torch.nn.Conv2d(3, w, 3, padding=1),
            torch.nn.ReLU(),
            torch.nn.Conv2d(w, w, 3, stride=2, padding=1),
            torch.nn.ReLU(),
            pool,
            torch.nn.Flatten(),
            torch.nn.Linear(w * (4 if self.grid_pool else 1), 1),
            torch.nn.Flatten(0),
        )

    def input_config(self) -> InputConfig:
        return InputConfig(32)


runner = CliRunner()


@pytest.fixture
def tiny_registered(monkeypatch):
    """The test detector in the registry, so that save/load and the CLI can find it."""
    monkeypatch.setattr(registry, "_registry", registry._registry.copy())
    registry.register(TinyTorchDetector.name, f"{__name__}:TinyTorchDetector")


@pytest.fixture(scope="module")
def fitted_tiny() -> TinyTorchDetector:
    images, labels = make_images(8, seed=4, size=48)
    return TinyTorchDetector().fit(images, labels)


def _mixed_sizes(seed: int) -> list[np.ndarray]:
    """Crops of several shapes: 32x32 (centre crop), smaller on one side, smaller on both."""
    rng = np.random.default_rng(seed)
    shapes = [(48, 48), (40, 64), (24, 40), (20, 20), (48, 48), (32, 18)]
    return [rng.integers(0, 256, size=(*shape, 3), dtype=np.uint8) for shape in shapes]


def test_onnx_logits_match_torch_at_every_size(tmp_path, fitted_tiny):
    path = export_onnx(fitted_tiny, tmp_path)
    assert path == tmp_path / ONNX_FILE
    sidecar = json.loads((tmp_path / f"{ONNX_FILE}.json").read_text())
    assert sidecar["dynamic_axes"] == ["batch", "height", "width"] and sidecar["opset"] == 17
    images = _mixed_sizes(0)
    expected = fitted_tiny.predict_logits(images)
    backend = OnnxBackend(path, fitted_tiny.input_config(), batch_size=2)
    np.testing.assert_allclose(backend.predict_logits(images), expected, rtol=0, atol=1e-4)
    onnx_detector = fitted_tiny.__class__(**fitted_tiny.get_params())
    onnx_detector.network_ = fitted_tiny.network_
    onnx_detector.use_onnx(tmp_path)
    np.testing.assert_allclose(
        onnx_detector.predict_proba(images), fitted_tiny.predict_proba(images), atol=1e-5
    )
    onnx_detector.use_onnx(None)  # back to torch: bit for bit
    np.testing.assert_array_equal(onnx_detector.predict_logits(images), expected)


def test_size_baking_network_falls_back_to_a_fixed_size(tmp_path):
    images, labels = make_images(4, seed=5, size=40)
    detector = TinyTorchDetector(grid_pool=True).fit(images, labels)
    path = export_onnx(detector, tmp_path / "fixed.onnx")
    sidecar = json.loads(Path(f"{path}.json").read_text())
    assert sidecar["dynamic_axes"] == ["batch"] and sidecar["input_size"] == [32, 32]
    backend = OnnxBackend(path, detector.input_config())
    full = [img for img in _mixed_sizes(1) if min(img.shape[:2]) >= 32]
    np.testing.assert_allclose(
        backend.predict_logits(full), detector.predict_logits(full), rtol=0, atol=1e-4
    )
    with pytest.raises(ModelError, match="exported for"):
        backend.predict_logits([np.zeros((20, 20, 3), np.uint8)])


def test_cli_export_then_scan_with_onnx(tmp_path, tiny_registered, fitted_tiny):
    from PIL import Image

    from fakescope.calibration.model import CalibratedModel
    from fakescope.calibration.threshold import calibrate_threshold

    model_dir = tmp_path / "model"
    calibration = calibrate_threshold(np.linspace(0, 1, 50), target_fpr=0.1)
    CalibratedModel(fitted_tiny, calibration, {"name": "tiny"}).save(model_dir)
    result = runner.invoke(app, ["export-onnx", str(model_dir)])
    assert result.exit_code == 0, result.output
    assert (model_dir / ONNX_FILE).is_file()
    loaded = load_detector(model_dir)
    assert isinstance(loaded, TinyTorchDetector)
    folder = tmp_path / "images"
    folder.mkdir()
    for i, image in enumerate(_mixed_sizes(2)):
        Image.fromarray(image).save(folder / f"{i}.png")

    def scores(*extra: str) -> dict[str, Any]:
        out = runner.invoke(app, ["scan", str(folder), "-m", str(model_dir), "-f", "jsonl", *extra])
        assert out.exit_code == 0, out.output
        rows = [json.loads(line) for line in out.stdout.splitlines()]
        return {Path(r["path"]).name: r["score"] for r in rows}

    with_torch, with_onnx = scores(), scores("--onnx")
    assert with_torch.keys() == with_onnx.keys() and len(with_torch) == 6
    for name, score in with_torch.items():
        assert with_onnx[name] == pytest.approx(score, abs=1e-5)


def test_cli_export_refuses_a_model_without_a_network(trained_model_dir):
    result = runner.invoke(app, ["export-onnx", str(trained_model_dir)])
    assert result.exit_code == 2 and "no torch network" in result.output


def test_backend_errors(tmp_path):
    with pytest.raises(ModelError, match="export-onnx"):
        OnnxBackend(tmp_path, InputConfig(32))
    (tmp_path / ONNX_FILE).write_bytes(b"not a model")
    with pytest.raises(ModelError, match="cannot load"):
        OnnxBackend(tmp_path, InputConfig(32))


def test_fusion_with_a_torch_member_exports_and_scans_through_onnx(tmp_path, tiny_registered):
    """A torch member inside a fusion: fit with progress, export per member, scan via ONNX."""
    from PIL import Image

    from fakescope.calibration.model import CalibratedModel
    from fakescope.calibration.threshold import calibrate_threshold
    from fakescope.detectors import create

    images, labels = make_images(12, seed=6, size=64)
    steps: list[int] = []
    fused = create("fusion", members=["spectral", "tiny-torch"])
    fused.fit(images, labels, on_progress=lambda step, total: steps.append(step))
    assert steps == sorted(steps) and len(steps) > 3  # torch steps reported inside the stage
    model_dir = tmp_path / "fused"
    calibration = calibrate_threshold(np.linspace(0, 1, 50), target_fpr=0.1)
    CalibratedModel(fused, calibration, {}).save(model_dir)
    result = runner.invoke(app, ["export-onnx", str(model_dir)])
    assert result.exit_code == 0, result.output
    assert (model_dir / "members" / "tiny-torch" / ONNX_FILE).is_file()
    folder = tmp_path / "images"
    folder.mkdir()
    for i, image in enumerate(images[::4]):
        Image.fromarray(image).save(folder / f"{i}.png")

    def rows(*extra: str) -> list[dict[str, Any]]:
        out = runner.invoke(app, ["scan", str(folder), "-m", str(model_dir), "-f", "jsonl", *extra])
        assert out.exit_code == 0, out.output
        return [json.loads(line) for line in out.stdout.splitlines()]

    for torch_row, onnx_row in zip(rows(), rows("--onnx"), strict=True):
        assert set(onnx_row["detectors"]) == {"fusion", "spectral", "tiny-torch"}
        for name, score in torch_row["detectors"].items():
            assert onnx_row["detectors"][name] == pytest.approx(score, abs=1e-5)


def test_without_torch_a_loaded_detector_runs_its_exported_onnx(
    tmp_path, tiny_registered, fitted_tiny, monkeypatch
):
    """A deployment with onnxruntime but no torch loads the exported file, not the weights."""
    from fakescope.detectors import torch_detector

    fitted_tiny.save(tmp_path)
    images = _mixed_sizes(2)
    expected = fitted_tiny.predict_proba(images)
    monkeypatch.setattr(torch_detector, "_torch_available", lambda: False)
    with pytest.raises(ModelError, match="export-onnx"):
        load_detector(tmp_path)  # nothing exported yet: the error names both ways out
    export_onnx(fitted_tiny, tmp_path)
    loaded = load_detector(tmp_path)
    assert loaded.onnx_backend_ is not None and getattr(loaded, "network_", None) is None
    np.testing.assert_allclose(loaded.predict_proba(images), expected, atol=1e-5)


def test_a_model_shipped_as_onnx_only_loads_without_its_weights(
    tmp_path, tiny_registered, fitted_tiny
):
    """Bundled models ship the exported graph, not the training weights: torch is not needed."""
    fitted_tiny.save(tmp_path)
    export_onnx(fitted_tiny, tmp_path)
    (tmp_path / "weights.safetensors").unlink()
    images = _mixed_sizes(3)
    loaded = load_detector(tmp_path)
    assert loaded.onnx_backend_ is not None
    np.testing.assert_allclose(
        loaded.predict_proba(images), fitted_tiny.predict_proba(images), atol=1e-5
    )
    (tmp_path / ONNX_FILE).unlink()
    with pytest.raises(ModelError, match=r"weights\.safetensors.*export-onnx"):
        load_detector(tmp_path)


def test_grid_crops_cover_the_image_and_average_the_logits(fitted_tiny):
    config = InputConfig(32)
    image = np.random.default_rng(7).integers(0, 256, (80, 50, 3), dtype=np.uint8)
    crops = config.grid_crops(image, 3)
    assert len(crops) == 3 * 3 and all(c.shape == (32, 32, 3) for c in crops)
    np.testing.assert_array_equal(crops[0], image[:32, :32])  # first corner
    np.testing.assert_array_equal(crops[-1], image[-32:, -32:])  # opposite corner
    assert len(config.grid_crops(image[:20, :20], 3)) == 1  # nothing to spread over
    np.testing.assert_array_equal(config.grid_crops(image, 1)[0], config.centre_crop(image))

    gridded = fitted_tiny.__class__(**fitted_tiny.get_params())
    gridded.network_ = fitted_tiny.network_
    gridded.crop_grid = 3
    images = [image, image[:40, :40]]
    expected = [fitted_tiny.predict_logits(config.grid_crops(img, 3)).mean() for img in images]
    np.testing.assert_allclose(gridded.predict_logits(images), expected, atol=1e-6)
    assert not np.isclose(
        gridded.predict_logits([image])[0], fitted_tiny.predict_logits([image])[0]
    )
    gridded.crop_grid = 0
    with pytest.raises(ValueError, match="crop_grid"):
        gridded.check_params()
