"""The CLIP probe detector, on a tiny random ONNX encoder with CLIP's input and output names."""

from __future__ import annotations

import json
import sys
import types
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("onnxruntime")
torch = pytest.importorskip("torch")
pytest.importorskip("onnx")  # torch's exporter writes the file through it

from fakescope.detectors import create, load_detector  # noqa: E402
from fakescope.detectors.clip_probe import encoder as encoder_module  # noqa: E402
from fakescope.detectors.clip_probe.detector import (  # noqa: E402
    ClipProbeDetector,
    EncoderVersionWarning,
)
from fakescope.detectors.clip_probe.encoder import (  # noqa: E402
    ENCODER_NAME,
    CachedEncoder,
    ClipEncoder,
    preprocess,
)
from fakescope.errors import ModelError, NotFittedError  # noqa: E402
from fakescope.nn.preprocess import CLIP  # noqa: E402


def export_tiny_encoder(path: Path, seed: int) -> Path:
    """A random patch-conv + mean-pool + linear net: [batch,3,224,224] -> [batch,512]."""

    class Tiny(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.patches = torch.nn.Conv2d(3, 16, kernel_size=16, stride=16)
            self.project = torch.nn.Linear(16, 512)

        def forward(self, pixel_values: torch.Tensor) -> torch.Tensor:
            return self.project(torch.tanh(self.patches(pixel_values)).mean(dim=(2, 3)))

    torch.manual_seed(seed)
    torch.onnx.export(
        Tiny().eval(),
        (torch.zeros(1, 3, 224, 224),),
        str(path),
        input_names=["pixel_values"],
        output_names=["image_embeds"],
        dynamic_axes={"pixel_values": {0: "batch"}, "image_embeds": {0: "batch"}},
        dynamo=False,
    )
    return path


@pytest.fixture(scope="module")
def tiny_models(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    folder = tmp_path_factory.mktemp("clip")
    with pytest.warns(DeprecationWarning):  # the legacy exporter says it is legacy
        return (
            export_tiny_encoder(folder / "a.onnx", seed=0),
            export_tiny_encoder(folder / "b.onnx", seed=1),
        )


def coloured_images(n_per_class: int, seed: int = 0) -> tuple[list[np.ndarray], np.ndarray]:
    """Reals are dark and greenish, fakes bright and reddish: separable by any random encoder."""
    rng = np.random.default_rng(seed)
    images = []
    for label in (0, 1):
        base = np.array([60, 110, 70]) if label == 0 else np.array([190, 120, 110])
        for _ in range(n_per_class):
            size = (int(rng.integers(40, 120)), int(rng.integers(40, 120)))
            noise = rng.normal(0, 25, size=(*size, 3))
            images.append(np.clip(base + noise, 0, 255).astype(np.uint8))
    return images, np.repeat([0, 1], n_per_class)


def probe(model: Path, **params: object) -> ClipProbeDetector:
    return ClipProbeDetector(threads=1, batch_size=4, **params).set_encoder(
        ClipEncoder(model, threads=1, batch_size=4)
    )


# -- preprocessing and the encoder -----------------------------------------------------------
def test_preprocess_resizes_crops_and_normalises_with_clip_constants():
    flat = np.full((100, 300, 3), (255, 128, 0), dtype=np.uint8)
    small = np.full((20, 30, 3), 77, dtype=np.uint8)
    batch = preprocess([flat, small])
    assert batch.shape == (2, 3, 224, 224) and batch.dtype == np.float32
    expected = (np.array([255, 128, 0]) / 255.0 - np.array(CLIP.mean)) / np.array(CLIP.std)
    np.testing.assert_allclose(batch[0].mean(axis=(1, 2)), expected, atol=1e-4)
    np.testing.assert_allclose(batch[0].std(axis=(1, 2)), 0, atol=1e-4)
    assert preprocess([]).shape == (0, 3, 224, 224)
    with pytest.raises(ValueError, match="RGB uint8"):
        preprocess([np.zeros((50, 50), dtype=np.uint8)])


def test_encoder_embeds_unit_rows_independent_of_batching(tiny_models):
    images, _ = coloured_images(4)
    one_batch = ClipEncoder(tiny_models[0], threads=1, batch_size=16)
    batched = ClipEncoder(tiny_models[0], threads=1, batch_size=3)
    seen: list[tuple[int, int]] = []
    embeddings = batched.embed(images, on_progress=lambda done, total: seen.append((done, total)))
    assert embeddings.shape == (8, 512) and embeddings.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(embeddings, axis=1), 1.0, atol=1e-5)
    np.testing.assert_allclose(embeddings, one_batch.embed(images), atol=1e-5)
    assert seen == [(3, 8), (6, 8), (8, 8)]
    assert one_batch.dim == 512 and one_batch.runtime.startswith("onnxruntime ")
    assert one_batch.sha256 != ClipEncoder(tiny_models[1]).sha256


def test_encoder_refuses_a_model_with_other_io_names(tmp_path):
    class Other(torch.nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return x.mean(dim=(2, 3))

    path = tmp_path / "other.onnx"
    with pytest.warns(DeprecationWarning):
        torch.onnx.export(
            Other(), (torch.zeros(1, 3, 224, 224),), str(path), input_names=["x"], dynamo=False
        )
    with pytest.raises(ModelError, match="pixel_values"):
        ClipEncoder(path).embed(coloured_images(1)[0])


def test_missing_weights_name_the_fetch_command(monkeypatch):
    asked: list[str] = []

    class WeightsMissingError(ModelError):
        pass

    def resolve_weights(name: str) -> Path:
        asked.append(name)
        raise WeightsMissingError(f"weights {name!r} are missing: fakescope weights fetch {name}")

    try:
        import fakescope.weights as weights_module
    except ImportError:  # the resolver is not there yet: stand in for the whole module
        weights_module = types.ModuleType("fakescope.weights")
        monkeypatch.setitem(sys.modules, "fakescope.weights", weights_module)
    monkeypatch.setattr(weights_module, "resolve_weights", resolve_weights, raising=False)

    detector = create("clip-probe")  # building the detector must not need the weights
    with pytest.raises(ModelError, match=f"fakescope weights fetch {ENCODER_NAME}"):
        detector.transform(coloured_images(1)[0])
    assert asked == [ENCODER_NAME]


# -- fitting, scoring, persistence -----------------------------------------------------------
@pytest.mark.parametrize(
    ("params", "evidence_keys"),
    [
        ({"head": "logistic", "C": 0.5}, {"clip_logit"}),
        (
            {"head": "knn", "k": 3},
            {
                "clip_logit",
                "clip_nearest_real_similarity",
                "clip_nearest_fake_similarity",
                "clip_fake_neighbours",
                "clip_neighbours",
            },
        ),
    ],
)
def test_fit_predict_save_load_round_trip(tiny_models, tmp_path, params, evidence_keys):
    train_images, train_labels = coloured_images(8, seed=0)
    test_images, test_labels = coloured_images(4, seed=1)
    detector = probe(tiny_models[0], **params).fit(train_images, train_labels)
    scores, evidence = detector.predict_with_evidence(test_images)
    assert scores.shape == (8,) and ((scores > 0) & (scores < 1)).all()
    assert ((scores > 0.5) == test_labels).all()  # the classes differ in colour
    assert set(evidence[0]) == evidence_keys

    saved = detector.save(tmp_path / "probe")
    config = json.loads((saved / "config.json").read_text())
    assert config["state"]["encoder"]["sha256"] == ClipEncoder(tiny_models[0]).sha256
    assert str(tiny_models[0].parent) not in json.dumps(config)  # no machine paths
    loaded = ClipProbeDetector.load(saved, encoder=ClipEncoder(tiny_models[0], threads=1))
    np.testing.assert_allclose(loaded.predict_proba(test_images), scores, atol=1e-6)
    assert loaded.explain(test_images) == evidence


def test_features_path_matches_images_path(tiny_models):
    images, labels = coloured_images(6)
    detector = probe(tiny_models[0], head="knn", k=4)
    embeddings = detector.transform(images)
    from_images = probe(tiny_models[0], head="knn", k=4).fit(images, labels).predict_proba(images)
    from_features = detector.fit_features(embeddings, labels).predict_proba_features(embeddings)
    np.testing.assert_allclose(from_features, from_images, atol=1e-6)
    with pytest.raises(ValueError, match="shape"):
        detector.fit_features(embeddings[:, :100], labels)


def test_load_refuses_another_encoder_file_and_warns_on_runtime_drift(tiny_models, tmp_path):
    images, labels = coloured_images(5)
    saved = probe(tiny_models[0]).fit(images, labels).save(tmp_path / "probe")
    with pytest.raises(ModelError, match="sha256"):
        ClipProbeDetector.load(saved, encoder=ClipEncoder(tiny_models[1]))

    config = json.loads((saved / "config.json").read_text())
    config["state"]["encoder"]["runtime"] = "onnxruntime 0.0.1"
    (saved / "config.json").write_text(json.dumps(config))
    with pytest.warns(EncoderVersionWarning, match="onnxruntime 0.0.1"):
        ClipProbeDetector.load(saved, encoder=ClipEncoder(tiny_models[0]))


def test_load_detector_uses_the_resolved_encoder(tiny_models, tmp_path, monkeypatch):
    images, labels = coloured_images(5)
    saved = probe(tiny_models[0], head="knn").fit(images, labels).save(tmp_path / "probe")
    monkeypatch.setattr(encoder_module, "_resolve", lambda name: tiny_models[0])
    loaded = load_detector(saved)
    assert isinstance(loaded, ClipProbeDetector) and loaded.head == "knn"
    monkeypatch.setattr(encoder_module, "_resolve", lambda name: tiny_models[1])
    with pytest.raises(ModelError, match="sha256"):
        load_detector(saved)


def test_damaged_weights_and_bad_params_fail_clearly(tiny_models, tmp_path):
    images, labels = coloured_images(5)
    saved = probe(tiny_models[0], head="knn").fit(images, labels).save(tmp_path / "probe")
    np.savez(saved / "weights.npz", embeddings=np.zeros((3, 7)), labels=np.array([0, 1, 1]))
    with pytest.raises(ModelError, match="embeddings"):
        ClipProbeDetector.load(saved, encoder=ClipEncoder(tiny_models[0]))
    for bad in ({"head": "forest"}, {"C": 0}, {"k": 0}, {"temperature": -1}, {"threads": -1}):
        with pytest.raises(ValueError):
            create("clip-probe", **bad)
    with pytest.raises(NotFittedError):
        probe(tiny_models[0]).predict_proba(images)


def test_embedding_cache_reuses_and_repairs_entries(tiny_models, tmp_path, monkeypatch):
    monkeypatch.setenv("FAKESCOPE_CACHE", str(tmp_path))
    images, _ = coloured_images(3)
    inner = ClipEncoder(tiny_models[0], threads=1)
    calls: list[int] = []
    original = inner.embed
    monkeypatch.setattr(
        inner, "embed", lambda imgs, progress=None: calls.append(len(imgs)) or original(imgs)
    )
    cached = CachedEncoder(inner)
    first = cached.embed(images)
    np.testing.assert_array_equal(cached.embed(images), first)
    files = sorted((tmp_path / "embeddings").rglob("*.npy"))
    assert len(files) == 6 and calls == [6]
    files[0].write_bytes(b"not an npy file")
    np.testing.assert_allclose(cached.embed(images), first, atol=1e-6)
    assert calls == [6, 1]
    detector = probe(tiny_models[0], cache_embeddings=True)
    np.testing.assert_array_equal(detector.transform(images), first)
