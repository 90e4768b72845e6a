"""The NPR detector: the residual itself, training, persistence, ONNX export."""

from __future__ import annotations

import io
import warnings

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from fakescope.detectors import create, load_detector  # noqa: E402
from fakescope.detectors.npr.detector import NPRDetector, phase_residual_rms  # noqa: E402
from fakescope.detectors.npr.network import NPRNetwork, npr_residual  # noqa: E402
from tests.conftest import make_images, natural_like  # noqa: E402

# Small enough to train in a second or two on one core, big enough to learn the 2x2 trace.
TINY = {"crop_size": 32, "width": 8, "stages": 2, "batch_size": 8, "blur_prob": 0.0}
TINY |= {"jpeg_prob": 0.0, "threads": 1}


def test_residual_is_zero_exactly_on_images_constant_on_2x2_cells():
    rng = np.random.default_rng(0)
    cells = torch.from_numpy(rng.normal(size=(2, 3, 8, 10)).astype(np.float32))
    blocky = cells.repeat_interleave(2, dim=2).repeat_interleave(2, dim=3)
    assert torch.count_nonzero(npr_residual(blocky)) == 0
    noisy = torch.from_numpy(rng.normal(size=(2, 3, 16, 20)).astype(np.float32))
    residual = npr_residual(noisy)
    assert residual.abs().mean() > 0.5
    # Each cell's anchor (top-left pixel) is its own reference: zero there, not elsewhere.
    assert torch.count_nonzero(residual[..., ::2, ::2]) == 0
    assert torch.count_nonzero(residual[..., 1::2, 1::2]) == residual[..., 1::2, 1::2].numel()


def test_odd_sides_are_cropped_to_even():
    x = torch.randn(1, 3, 17, 23)
    assert npr_residual(x).shape == (1, 3, 16, 22)
    network = NPRNetwork(width=4, stages=1).eval()
    with torch.no_grad():
        assert network(x).shape == (1,)


def test_phase_ratio_flags_nearest_upsampling():
    rng = np.random.default_rng(1)
    photo = natural_like(rng, 64)
    upsampled = np.repeat(np.repeat(natural_like(rng, 32), 2, axis=0), 2, axis=1)
    assert phase_residual_rms(upsampled)[0] == 0.0
    photo_rms = phase_residual_rms(photo)
    assert photo_rms.min() / photo_rms.max() > 0.8


def test_params_are_validated():
    assert isinstance(create("npr"), NPRDetector)
    for bad in ({"crop_size": 63}, {"crop_size": 8}, {"width": 2}, {"stages": 0}, {"epochs": 0}):
        with pytest.raises(ValueError):
            create("npr", **bad)


def test_tiny_fit_then_save_load_gives_identical_scores(tmp_path):
    images, labels = make_images(8, seed=3, size=40)
    images[0] = images[0][:37, :35]  # an odd, smaller image: training crops shrink to fit
    detector = create("npr", epochs=1, **TINY).fit(images, labels)
    scores, evidence = detector.predict_with_evidence(images)
    assert scores.shape == (16,) and np.all((scores >= 0) & (scores <= 1))
    np.testing.assert_array_equal(scores, detector.predict_proba(images))
    assert set(evidence[0]) == {"npr_logit", "npr_residual_rms", "npr_phase_ratio"}
    assert evidence[8]["npr_phase_ratio"] == 0.0  # a nearest-upsampled fake
    loaded = load_detector(detector.save(tmp_path / "npr"))
    assert isinstance(loaded, NPRDetector) and loaded.get_params() == detector.get_params()
    np.testing.assert_array_equal(loaded.predict_proba(images), scores)


def test_learns_to_separate_images_from_their_2x_upsampled_versions():
    images, labels = make_images(16, seed=4, size=32)
    detector = create("npr", epochs=6, learning_rate=3e-3, **TINY).fit(images, labels)
    accuracy = np.mean((detector.predict_proba(images) > 0.5) == labels)
    assert accuracy >= 0.8


def test_onnx_export_matches_torch():
    ort = pytest.importorskip("onnxruntime")
    images, labels = make_images(4, seed=5, size=32)
    network = create("npr", epochs=1, **TINY).fit(images, labels).network_
    buffer = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the TorchScript exporter's deprecation notices
        torch.onnx.export(
            network,
            torch.zeros(1, 3, 32, 32),
            buffer,
            dynamo=False,
            opset_version=17,
            input_names=["input"],
            output_names=["logits"],
            dynamic_axes={"input": {0: "n", 2: "h", 3: "w"}, "logits": {0: "n"}},
        )
    session = ort.InferenceSession(buffer.getvalue(), providers=["CPUExecutionProvider"])
    for shape in ((3, 3, 32, 32), (2, 3, 41, 30)):  # another size, odd side included
        x = torch.randn(*shape)
        with torch.no_grad():
            expected = network(x).numpy()
        (actual,) = session.run(None, {"input": x.numpy()})
        np.testing.assert_allclose(actual, expected, atol=1e-4)
