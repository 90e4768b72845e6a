"""MobileNetV2 parity with torchvision, BlurPool, the universal-cnn detector, shift consistency."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from fakescope.detectors import create, load_detector  # noqa: E402
from fakescope.detectors.base import Detector  # noqa: E402
from fakescope.errors import WeightsMissingError  # noqa: E402
from fakescope.evaluation.shift import default_shifts, shift_consistency  # noqa: E402
from fakescope.nn.blurpool import BlurPool2d, binomial_kernel  # noqa: E402
from fakescope.nn.mobilenet_v2 import MobileNetV2, load_torchvision_state_dict  # noqa: E402
from fakescope.weights import resolve_weights, weights_status  # noqa: E402
from tests.conftest import make_images  # noqa: E402

# A hand-checked subset of torchvision's mobilenet_v2 state dict (keys and shapes).
TORCHVISION_KEYS = {
    "features.0.0.weight": (32, 3, 3, 3),
    "features.0.1.running_var": (32,),
    "features.0.1.num_batches_tracked": (),
    "features.1.conv.0.0.weight": (32, 1, 3, 3),
    "features.1.conv.1.weight": (16, 32, 1, 1),
    "features.1.conv.2.bias": (16,),
    "features.2.conv.0.0.weight": (96, 16, 1, 1),
    "features.2.conv.1.0.weight": (96, 1, 3, 3),
    "features.2.conv.2.weight": (24, 96, 1, 1),
    "features.2.conv.3.running_mean": (24,),
    "features.14.conv.1.0.weight": (576, 1, 3, 3),
    "features.17.conv.2.weight": (320, 960, 1, 1),
    "features.18.0.weight": (1280, 320, 1, 1),
    "features.18.1.weight": (1280,),
    "classifier.1.weight": (1000, 1280),
    "classifier.1.bias": (1000,),
}
TORCHVISION_PARAMETERS = 3_504_872
TORCHVISION_STATE_ENTRIES = 314


@pytest.fixture(autouse=True, scope="module")
def one_thread() -> Iterator[None]:
    """One torch thread: on a shared, loaded CI machine extra OpenMP threads only contend
    (measured several times slower). Restored afterwards for the other test modules."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


def test_mobilenet_v2_matches_torchvision_layout() -> None:
    network = MobileNetV2()
    state = network.state_dict()
    assert len(state) == TORCHVISION_STATE_ENTRIES
    for key, shape in TORCHVISION_KEYS.items():
        assert tuple(state[key].shape) == shape, key
    assert sum(p.numel() for p in network.parameters()) == TORCHVISION_PARAMETERS
    assert network(torch.zeros(1, 3, 64, 64)).shape == (1, 1000)


def test_blurpool_variant_loads_the_same_state_dict() -> None:
    plain, blurred = MobileNetV2(), MobileNetV2(blurpool=True)
    assert {k: v.shape for k, v in plain.state_dict().items()} == {
        k: v.shape for k, v in blurred.state_dict().items()
    }
    blurred.load_state_dict(plain.state_dict(), strict=True)
    # Every strided depthwise conv; the stem stays strided (as in Zhang's MobileNetV2).
    assert sum(isinstance(m, BlurPool2d) for m in blurred.modules()) == 4
    blurred.eval()
    with torch.no_grad():
        assert blurred.features(torch.zeros(2, 3, 70, 50)).shape == (2, 1280, 3, 2)
        assert blurred.features(torch.zeros(1, 3, 16, 16)).shape == (1, 1280, 1, 1)


def test_blurpool_filters_and_keeps_no_state() -> None:
    assert torch.allclose(binomial_kernel(3)[1], torch.tensor([2.0, 4.0, 2.0]) / 16)
    pool = BlurPool2d(4, filter_size=4)
    assert pool.state_dict() == {}
    constant = torch.full((1, 4, 9, 7), 3.0)
    out = pool(constant)
    assert out.shape == (1, 4, 5, 4)  # ceil(H / 2), like a strided 3x3 conv with padding 1
    assert torch.allclose(out, constant[:, :, :5, :4])
    # A 1-pixel checkerboard (the Nyquist frequency) is removed almost entirely by [1, 2, 1].
    checker = (torch.arange(16)[:, None] + torch.arange(16)[None, :]) % 2
    blurred = BlurPool2d(1)(checker.float()[None, None])
    assert blurred[..., 1:-1, 1:-1].std() < 1e-6


@pytest.mark.skipif(weights_status("mobilenet-v2-imagenet") != "ok", reason="weights not cached")
def test_imagenet_weights_classify_real_photos() -> None:
    data = pytest.importorskip("skimage.data")
    from PIL import Image

    from fakescope.nn.preprocess import IMAGENET

    def preprocess(pixels: np.ndarray) -> np.ndarray:  # torchvision's resize 256, crop 224
        height, width = pixels.shape[:2]
        scale = 256 / min(height, width)
        size = (round(width * scale), round(height * scale))
        return IMAGENET.centre_crop(np.asarray(Image.fromarray(pixels).resize(size)))

    network = MobileNetV2()
    path = resolve_weights("mobilenet-v2-imagenet")
    network.load_state_dict(load_torchvision_state_dict(path), strict=True)
    network.eval()
    batch = np.stack([preprocess(data.chelsea()), preprocess(data.coffee())])
    with torch.inference_mode():
        top1 = network(torch.from_numpy(IMAGENET.normalise(batch))).argmax(1).tolist()
    assert 281 <= top1[0] <= 285  # a cat (tabby, tiger cat, Persian, Siamese, Egyptian)
    assert top1[1] in (504, 967)  # coffee mug or espresso


def tiny_detector(**params: object) -> Detector:
    defaults = {"pretrained": False, "crop_size": 32, "epochs": 1, "batch_size": 8, "threads": 1}
    return create("universal-cnn", **{**defaults, **params})


def test_fit_save_load_round_trip(tmp_path: Path) -> None:
    images, labels = make_images(8, seed=1, size=40)
    detector = tiny_detector(freeze_blocks=3, blurpool=True).fit(images, labels)
    scores = detector.predict_proba(images)
    assert scores.shape == (16,) and np.all((scores >= 0) & (scores <= 1))
    loaded = load_detector(detector.save(tmp_path / "model"))
    assert (tmp_path / "model" / "weights.safetensors").is_file()
    np.testing.assert_array_equal(loaded.predict_proba(images), scores)
    assert loaded.get_params() == detector.get_params()


def test_frozen_blocks_do_not_change() -> None:
    images, labels = make_images(4, seed=2, size=40)
    detector = tiny_detector(freeze_blocks=4)
    torch.manual_seed(detector.random_state)  # what fit does before building its network
    before = detector.build_network().state_dict()
    after = detector.fit(images, labels).network_.state_dict()
    frozen = tuple(f"features.{i}." for i in range(4))
    for key, value in before.items():
        if key.startswith(frozen):  # weights and BatchNorm statistics alike
            assert torch.equal(value, after[key]), key
    for key in ("features.4.conv.0.0.weight", "features.4.conv.0.1.running_mean"):
        assert not torch.equal(before[key], after[key]), key
    assert not torch.equal(before["classifier.1.weight"], after["classifier.1.weight"])


def test_invalid_params_and_missing_imagenet_weights(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for bad in ({"freeze_blocks": 20}, {"crop_size": 16}, {"blur_filter": 9}, {"epochs": 0}):
        with pytest.raises(ValueError):
            create("universal-cnn", **bad)
    monkeypatch.delenv("FAKESCOPE_WEIGHTS_DIR", raising=False)
    monkeypatch.setenv("FAKESCOPE_CACHE", str(tmp_path))
    images, labels = make_images(2, size=40)
    with pytest.raises(WeightsMissingError, match="fakescope weights fetch mobilenet-v2-imagenet"):
        tiny_detector(pretrained=True).fit(images, labels)


class ShapeDetector(Detector):
    """Scores an image by its shape only: perfectly shift-invariant (crops share a shape)."""

    name = "test-shape"

    def fit(self, images: object, labels: object, on_progress: object = None) -> ShapeDetector:
        return self

    def predict_proba(self, images: list[np.ndarray]) -> np.ndarray:
        return np.array([0.7 if img.shape[0] % 2 else 0.3 for img in images])

    def _weights(self) -> dict[str, np.ndarray]:
        return {}

    def _set_weights(self, weights: dict, state: dict) -> None:
        pass


class PhaseDetector(ShapeDetector):
    """Looks at one pixel: anything but shift-invariant."""

    def predict_proba(self, images: list[np.ndarray]) -> np.ndarray:
        return np.array([img[0, 0, 0] / 255.0 for img in images])


def test_shift_consistency() -> None:
    images, _ = make_images(3, seed=4, size=40)
    invariant = shift_consistency(ShapeDetector(), images)
    assert invariant.flip_rate == 0.0 and invariant.mean_abs_change == 0.0
    assert invariant.consistency == 1.0 and invariant.crop_shape == (32, 32)
    assert len(invariant.per_shift) == len(default_shifts()) == 24
    noise = [np.random.default_rng(i).integers(0, 256, (20, 20, 3), np.uint8) for i in range(6)]
    fragile = shift_consistency(PhaseDetector(), noise, max_shift=2)
    assert fragile.flip_rate > 0.2 and fragile.images_flipped > 0.5
    assert fragile.to_dict()["per_shift"][0] == {
        "dy": 0,
        "dx": 1,
        "flip_rate": fragile.per_shift[0].flip_rate,
        "mean_abs_change": fragile.per_shift[0].mean_abs_change,
    }
    with pytest.raises(ValueError):
        shift_consistency(ShapeDetector(), images, shifts=[(-1, 0)])
    network = tiny_detector().fit(*make_images(4, seed=5, size=40))
    result = shift_consistency(network, images, max_shift=3, chunk_size=2)
    assert 0.0 <= result.flip_rate <= 1.0 and result.n_images == 6
