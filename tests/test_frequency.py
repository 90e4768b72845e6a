"""The frequency (F3-Net style) detector: DCTs, band split, training, persistence, ONNX."""

from __future__ import annotations

import io
import warnings

import numpy as np
import pytest
from scipy.fft import dctn

torch = pytest.importorskip("torch")

from fakescope.detectors import create, load_detector  # noqa: E402
from fakescope.detectors.frequency.detector import FrequencyDetector  # noqa: E402
from fakescope.detectors.frequency.network import (  # noqa: E402
    LFS_EPS,
    LFS_WINDOW,
    LUMA,
    FrequencyDecomposition,
    LocalFrequencyStatistics,
    dct_matrix,
    fad_base_masks,
    lfs_band_matrix,
)
from fakescope.errors import ImageTooSmallError  # noqa: E402
from tests.conftest import make_images  # noqa: E402

TINY = {"crop_size": 32, "width": 8, "stages": 2, "batch_size": 8, "blur_prob": 0.0}
TINY |= {"jpeg_prob": 0.0, "threads": 1}


def test_dct_matrix_is_orthonormal_dct_ii():
    for size in (8, 33, 64):
        matrix = dct_matrix(size)
        np.testing.assert_allclose(matrix @ matrix.T, np.eye(size), atol=1e-12)
    x = np.random.default_rng(0).normal(size=(3, 32, 32))
    fad = FrequencyDecomposition(32)
    spectrum = fad.spectrum(torch.from_numpy(x).float()).numpy()
    np.testing.assert_allclose(spectrum, dctn(x, type=2, norm="ortho", axes=(1, 2)), atol=1e-4)
    back = (fad.idct @ torch.from_numpy(spectrum) @ fad.dct).numpy()
    np.testing.assert_allclose(back, x, atol=1e-4)  # DCT then inverse DCT is the identity


def test_fad_bands_partition_the_spectrum_and_sum_back_to_the_input():
    masks = fad_base_masks(64)
    np.testing.assert_array_equal(masks.sum(axis=0), np.ones((64, 64)))
    assert masks[0, 0, 0] == 1 and masks[2, -1, -1] == 1  # DC is low, the corner is high
    fad = FrequencyDecomposition(64)
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        assert fad.adjust.abs().max() > 0  # F3-Net's random initialisation...
        fad.adjust.zero_()  # ...but with zero adjustments the bands are the fixed partition
        bands = fad(x).reshape(2, 3, 3, 64, 64)
    assert bands.shape == (2, 3, 3, 64, 64)
    torch.testing.assert_close(bands.sum(dim=1), x, atol=1e-4, rtol=0)
    spectra = fad.spectrum(bands[:, 0]).abs().numpy()  # the low band has no high frequencies
    assert spectra[..., masks[0] == 0].max() < 1e-4


def test_lfs_is_a_sliding_block_dct_with_band_means():
    rng = np.random.default_rng(1)
    x = rng.normal(size=(1, 3, 24, 24)).astype(np.float32)
    lfs = LocalFrequencyStatistics(bands=5, stride=4)
    with torch.no_grad():
        out = lfs(torch.from_numpy(x)).numpy()
    assert out.shape == (1, 5, 5, 5)  # (24 - 8) / 4 + 1 windows a side
    grey = np.tensordot(np.asarray(LUMA), x[0], axes=1)
    block = grey[4:12, 8:16]  # window (1, 2)
    logs = np.log(np.abs(dctn(block, type=2, norm="ortho")) + LFS_EPS).ravel()
    expected = lfs_band_matrix(5) @ logs
    np.testing.assert_allclose(out[0, :, 1, 2], expected, atol=1e-4)
    weights = lfs_band_matrix(15)  # one band per diagonal u + v
    assert weights.shape == (15, LFS_WINDOW**2) and np.allclose(weights.sum(axis=1), 1)


def test_params_are_validated_and_small_images_refused():
    detector = create("frequency")
    assert isinstance(detector, FrequencyDetector)
    assert detector.min_image_side == detector.get_params()["crop_size"]
    for bad in ({"crop_size": 16}, {"lfs_bands": 16}, {"lfs_stride": 0}, {"width": 1}):
        with pytest.raises(ValueError):
            create("frequency", **bad)
    images, labels = make_images(2, size=40)
    images[1] = images[1][:31]
    with pytest.raises(ImageTooSmallError, match="at least 32x32"):
        create("frequency", epochs=1, **TINY).fit(images, labels)


def test_tiny_fit_then_save_load_gives_identical_scores(tmp_path):
    images, labels = make_images(8, seed=3, size=40)
    detector = create("frequency", epochs=1, **TINY).fit(images, labels)
    scores, evidence = detector.predict_with_evidence(images)
    assert scores.shape == (16,) and np.all((scores >= 0) & (scores <= 1))
    np.testing.assert_array_equal(scores, detector.predict_proba(images))
    for item in evidence:
        parts = item["frequency_logit_by_stream"]
        assert abs(sum(parts.values()) - item["frequency_logit"]) < 1e-3
        assert abs(sum(item["dct_energy_share"].values()) - 1) < 1e-3
    with pytest.raises(ImageTooSmallError):
        detector.predict_proba([images[0][:20]])
    loaded = load_detector(detector.save(tmp_path / "frequency"))
    assert isinstance(loaded, FrequencyDetector) and loaded.get_params() == detector.get_params()
    np.testing.assert_array_equal(loaded.predict_proba(images), scores)


def test_learns_to_separate_images_from_their_2x_upsampled_versions():
    images, labels = make_images(16, seed=4, size=32)
    detector = create("frequency", epochs=6, learning_rate=3e-3, **TINY).fit(images, labels)
    accuracy = np.mean((detector.predict_proba(images) > 0.5) == labels)
    assert accuracy >= 0.8


def test_onnx_export_matches_torch():
    ort = pytest.importorskip("onnxruntime")
    images, labels = make_images(4, seed=5, size=32)
    network = create("frequency", epochs=1, **TINY).fit(images, labels).network_
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
            dynamic_axes={"input": {0: "n"}, "logits": {0: "n"}},  # the DCT fixes H and W
        )
    session = ort.InferenceSession(buffer.getvalue(), providers=["CPUExecutionProvider"])
    for batch in (1, 5):
        x = torch.randn(batch, 3, 32, 32)
        with torch.no_grad():
            expected = network(x).numpy()
        (actual,) = session.run(None, {"input": x.numpy()})
        np.testing.assert_allclose(actual, expected, atol=1e-4)
