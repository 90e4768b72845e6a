"""The generator zoo and ``fakescope data synth``: registry, tiny seeded training, cache, CLI."""

from __future__ import annotations

import csv
import hashlib
import json
import subprocess
import sys
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from fakescope.cli.main import app
from fakescope.data.generators import create_generator, list_generators, load_generator
from fakescope.data.generators.processed import OPERATIONS, ProcessedReal
from fakescope.data.generators.registry import UnknownGeneratorError
from fakescope.data.generators.synth import SynthError, photo_id_of, split_photos
from tests.conftest import natural_like

REQUIRED = {
    "ae-transposed",
    "ae-nearest",
    "ae-bilinear",
    "ae-pixelshuffle",
    "sr-gan",
    "dcgan",
    "processed-real",
}
AE_NAMES = ("ae-transposed", "ae-nearest", "ae-bilinear", "ae-pixelshuffle")
NETWORKS = (*AE_NAMES, "sr-gan", "dcgan")
runner = CliRunner()


@pytest.fixture(scope="module")
def tiles() -> np.ndarray:
    rng = np.random.default_rng(0)
    return np.stack([natural_like(rng, 64) for _ in range(4)])


def tiny(name: str, steps: int = 3) -> Any:
    """A generator small enough to train in well under a second (one thread: tiny ops on a busy
    machine spend more time in thread barriers than in arithmetic)."""
    from fakescope.data.generators.autoencoder import AutoencoderConfig, TrainingOptions
    from fakescope.data.generators.dcgan import DCGANConfig, DCGANOptions
    from fakescope.data.generators.srgan import SRGANConfig, SRGANOptions

    if name.startswith("ae-"):
        config: Any = AutoencoderConfig(width=4)
        options: Any = TrainingOptions(steps=steps, batch_size=2, crop=32, threads=1)
    elif name == "sr-gan":
        config = SRGANConfig(features=4, blocks=1, disc_features=4)
        # Half the steps adversarial, so the GAN branch runs too.
        options = SRGANOptions(steps=steps + 1, batch_size=2, crop=32, threads=1)
    else:
        config = DCGANConfig(latent=8, gen_features=4, disc_features=4)
        options = DCGANOptions(steps=steps, batch_size=4, threads=1)
    return create_generator(name, config=config, options=options)


def run_generator(generator: Any, tiles: np.ndarray, seed: int = 0) -> np.ndarray:
    if generator.kind == "unconditional":
        return generator.generate(3, seed=seed)
    return generator.generate(tiles, seed=seed)


# -- registry ---------------------------------------------------------------------------------


def test_registry_lists_every_required_name():
    assert set(list_generators()) >= REQUIRED


def test_cli_help_names_every_generator():
    from fakescope.cli.data_synth import GENERATOR_HELP

    assert all(name in GENERATOR_HELP for name in list_generators())


def test_registry_is_lazy_and_unknown_names_list_the_valid_ones():
    code = (
        "import sys, fakescope.data.generators as g; g.list_generators(); "
        "print('torch' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
    with pytest.raises(UnknownGeneratorError, match="ae-nearest"):
        create_generator("stylegan9")


# -- network generators -----------------------------------------------------------------------


@pytest.mark.parametrize("name", NETWORKS)
def test_tiny_network_trains_and_generates_deterministically(name, tiles):
    pytest.importorskip("torch")
    first, second, other_seed = tiny(name), tiny(name), tiny(name)
    log = first.fit(tiles, seed=1)
    assert log.steps == first.options.steps and log.train_tiles == 4 and log.losses
    second.fit(tiles, seed=1)
    other_seed.fit(tiles, seed=2)
    out = run_generator(first, tiles)
    expected = (3, 64, 64, 3) if name == "dcgan" else tiles.shape
    assert out.shape == expected and out.dtype == np.uint8
    assert np.array_equal(out, run_generator(second, tiles))  # same seed, same model
    assert np.array_equal(out, run_generator(first, tiles))  # generation is repeatable
    assert not np.array_equal(out, run_generator(other_seed, tiles))


def test_dcgan_samples_depend_on_seed_and_index_only(tiles):
    pytest.importorskip("torch")
    generator = tiny("dcgan")
    generator.fit(tiles, seed=0)
    three = generator.generate(3, seed=5)
    assert np.array_equal(generator.generate(2, seed=5), three[:2])
    assert not np.array_equal(generator.generate(3, seed=6), three)


def test_sr_gan_super_resolves_a_4x_downscale(tiles):
    pytest.importorskip("torch")
    from fakescope.data.generators.srgan import bicubic_downscale

    assert bicubic_downscale(tiles).shape == (4, 16, 16, 3)
    generator = tiny("sr-gan")
    generator.fit(tiles, seed=0)
    assert generator.generate(tiles[:, :48, :40]).shape == (4, 48, 40, 3)
    with pytest.raises(ValueError, match="multiples of 4"):
        generator.generate(tiles[:, :30, :30])


def _structure(module: Any) -> list[tuple[Any, ...]]:
    """(name, type, settings such as the interpolation mode, parameter shapes) per module."""
    return [
        (name, type(m).__name__, m.extra_repr(), tuple(p.shape for p in m.parameters(False)))
        for name, m in module.named_modules()
    ]


def test_ae_variants_differ_only_in_the_last_upsampling_layer():
    pytest.importorskip("torch")
    import torch

    from fakescope.data.generators.autoencoder import Autoencoder

    networks = {}
    for name in AE_NAMES:
        generator = create_generator(name)
        generator.build(seed=3)
        networks[name] = generator.model
    assert all(isinstance(n, Autoencoder) for n in networks.values())
    last_index = str(2 * (networks["ae-nearest"].config.levels - 1))
    prefix = f"decoder.{last_index}"

    def outside_last(model: Any) -> list[Any]:
        return [s for s in _structure(model) if not s[0].startswith(prefix)]

    reference = networks["ae-transposed"]
    last_layers = {name: _structure(n.last_upsampler) for name, n in networks.items()}
    assert len({repr(layers) for layers in last_layers.values()}) == 4  # all four differ
    # The 1x1 "to RGB" layer comes after the last upsampler, so its initial draw differs.
    to_rgb = f"decoder.{2 * reference.config.levels}"
    body_state = {
        k: v for k, v in reference.state_dict().items() if not k.startswith((prefix, to_rgb))
    }
    for name, network in networks.items():
        assert outside_last(network) == outside_last(reference), name
        # Same seed, same construction order: the shared layers start from the same weights.
        state = network.state_dict()
        assert all(torch.equal(state[k], v) for k, v in body_state.items()), name
    assert isinstance(networks["ae-transposed"].last_upsampler, torch.nn.ConvTranspose2d)
    assert isinstance(networks["ae-nearest"].decoder[0], torch.nn.ConvTranspose2d)


def test_default_autoencoder_and_its_fingerprint_are_unchanged():
    pytest.importorskip("torch")
    import torch

    from fakescope.data.generators.autoencoder import (
        Autoencoder,
        AutoencoderConfig,
        TrainingOptions,
        training_fingerprint,
    )

    decoder = Autoencoder(AutoencoderConfig()).decoder
    upsamplers = [m for m in decoder if not isinstance(m, torch.nn.ReLU)][:-1]
    assert all(isinstance(m, torch.nn.ConvTranspose2d) for m in upsamplers)
    # Models cached before body_upsampling existed keep their fingerprint; other bodies do not.
    old = training_fingerprint(AutoencoderConfig(), TrainingOptions(), ["a"])
    other = AutoencoderConfig(body_upsampling="nearest")
    assert training_fingerprint(other, TrainingOptions(), ["a"]) != old
    legacy = {"upsampling": "transposed", "width": 16, "levels": 2, "seed": 0}
    payload = {"format": 2, "config": legacy, "options": asdict(TrainingOptions())}
    payload |= {"torch": torch.__version__, "data": ["a"]}
    expected = hashlib.sha256(json.dumps(payload, sort_keys=True).encode("utf-8")).hexdigest()
    assert old == expected


def test_safetensors_round_trip(tiles, tmp_path):
    pytest.importorskip("torch")
    from safetensors import safe_open

    for name in ("ae-pixelshuffle", "sr-gan", "dcgan"):
        generator = tiny(name)
        generator.fit(tiles, seed=0)
        folder = generator.save(tmp_path / name)
        assert sorted(p.name for p in folder.iterdir()) == ["config.json", "model.safetensors"]
        with safe_open(str(folder / "model.safetensors"), framework="pt") as handle:
            assert handle.metadata()["generator"] == name and list(handle.keys())
        loaded = load_generator(folder)
        assert type(loaded) is type(generator) and loaded.config == generator.config
        assert np.array_equal(run_generator(loaded, tiles), run_generator(generator, tiles))


def test_cache_hits_only_on_the_same_fingerprint(tiles, tmp_path, monkeypatch):
    pytest.importorskip("torch")
    monkeypatch.setenv("FAKESCOPE_CACHE", str(tmp_path / "env-cache"))
    first = tiny("ae-bilinear").fit_cached(tiles, seed=0)
    assert not first.hit
    assert first.path.parent == tmp_path / "env-cache" / "generators"
    assert first.path.name == f"ae-bilinear-{first.fingerprint[:16]}"
    again = tiny("ae-bilinear")
    assert again.fit_cached(tiles, seed=0).hit
    reference = tiny("ae-bilinear")
    reference.fit(tiles, seed=0)
    assert np.array_equal(again.generate(tiles), reference.generate(tiles))
    changed = tiles.copy()
    changed[0, 0, 0, 0] ^= 1
    misses = [
        tiny("ae-bilinear").fit_cached(changed, seed=0),  # training data
        tiny("ae-bilinear").fit_cached(tiles, seed=1),  # seed
        tiny("ae-bilinear", steps=4).fit_cached(tiles, seed=0),  # training options
        tiny("ae-nearest").fit_cached(tiles, seed=0),  # architecture
    ]
    assert not any(m.hit for m in misses)
    assert len({m.path for m in misses} | {first.path}) == 5
    rebuilt = tiny("ae-bilinear").fit_cached(tiles, seed=0, rebuild=True)
    assert not rebuilt.hit and rebuilt.path == first.path
    explicit = tiny("ae-bilinear").fit_cached(tiles, seed=0, cache_dir=tmp_path / "explicit")
    assert not explicit.hit and explicit.path.parent == tmp_path / "explicit"


# -- processed reals --------------------------------------------------------------------------


def test_processed_real_outputs_are_real_and_balanced(tiles):
    processor = create_generator("processed-real")
    assert isinstance(processor, ProcessedReal) and processor.label == 0
    schedule = processor.schedule(10, seed=0)
    assert sorted(schedule) == sorted(list(OPERATIONS) * 2)
    for operation in OPERATIONS:
        pixels, params = processor.process(tiles[0], operation, np.random.default_rng(1))
        again, _ = processor.process(tiles[0], operation, np.random.default_rng(1))
        assert pixels.dtype == np.uint8 and pixels.ndim == 3 and pixels.shape[2] == 3
        assert params["operation"] == operation and np.array_equal(pixels, again)
    shot, params = processor.process(tiles[0], "screenshot", np.random.default_rng(2))
    top, left, height, width = params["photo_box"]
    assert shot.shape[0] > height + top - 1 and shot.shape[1] > width + left - 1
    assert shot.shape[0] > tiles.shape[1] * 0.5 * params["device_pixel_ratio"]


# -- synth pipeline and CLI -------------------------------------------------------------------


def test_photo_ids_and_split():
    assert photo_id_of("a/lomiri-bridge_16_32.png") == "lomiri-bridge"
    assert photo_id_of("skimage-coffee.jpg") == "skimage-coffee"
    train, apply = split_photos([f"p{i}" for i in range(10)], seed=0, train_fraction=0.3)
    assert len(train) == 3 and len(apply) == 7 and not set(train) & set(apply)
    assert (train, apply) == split_photos([f"p{i}" for i in range(10)][::-1], 0, 0.3)
    with pytest.raises(SynthError, match="--train-from"):
        split_photos(["only"], seed=0, train_fraction=0.5)


@pytest.fixture
def photo_folder(tmp_path: Path) -> Path:
    """Five small photos (one of them a JPEG of two tiles) plus a corrupt file."""
    rng = np.random.default_rng(4)
    folder = tmp_path / "photos"
    folder.mkdir()
    for i in range(4):
        Image.fromarray(natural_like(rng, 64)).save(folder / f"p{i}_0_0.png")
    Image.fromarray(natural_like(rng, 128)).save(folder / "cam.jpg", quality=85)
    (folder / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a JPEG")
    return folder


def _manifest(root: Path) -> list[dict[str, str]]:
    with open(root / "manifest.csv", newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def test_cli_synth_end_to_end(photo_folder, tmp_path):
    pytest.importorskip("torch")
    out, cache = tmp_path / "dataset", tmp_path / "cache"
    common = ["--from", str(photo_folder), "--cache-dir", str(cache), "--tile-size", "64"]
    args = ["data", "synth", "--generator", "ae-transposed", *common, "--train-steps", "2"]
    result = runner.invoke(app, [*args, "--train-fraction", "0.5", str(out)])
    assert result.exit_code == 0, result.output
    assert "broken.jpg" in result.output and "1 bad input files" in result.output
    fakes = sorted((out / "fake" / "ae-transposed").glob("*.png"))
    rows = _manifest(out)
    assert len(rows) == len(fakes) > 0 and "cam" in {r["photo_id"] for r in rows}
    assert {r["label"] for r in rows} == {"1"} and {r["group"] for r in rows} == {"ae-transposed"}
    metas = [json.loads((out / r["params"]).read_text()) for r in rows]
    train_photos = set(metas[0]["training"]["train_photo_ids"])
    assert train_photos and not train_photos & {r["photo_id"] for r in rows}  # disjoint
    for row, meta in zip(rows, metas, strict=True):
        assert row["path"].startswith(f"fake/ae-transposed/{row['photo_id']}_")
        assert meta["model"]["options"]["steps"] == 2 and meta["source"]["size"] == [64, 64]
        if row["photo_id"] == "cam":
            assert meta["jpeg_history"] == {"quality": 85, "subsampling": "4:2:0", "origin": "file"}
    # Same inputs again (another OUT): the cached model is reused, the fakes are identical.
    again = runner.invoke(app, [*args, "--train-fraction", "0.5", str(tmp_path / "again")])
    assert again.exit_code == 0 and "loaded from cache" in again.output
    for fake in fakes:
        twin = tmp_path / "again" / "fake" / "ae-transposed" / fake.name
        assert twin.read_bytes() == fake.read_bytes()
    # The same OUT twice would duplicate manifest rows: refused.
    assert runner.invoke(app, [*args, str(out)]).exit_code == 1
    # Processed reals: real-labelled, under real/processed-real/, no torch needed.
    processed = runner.invoke(
        app, ["data", "synth", "-g", "processed-real", *common, "--count", "3", str(out)]
    )
    assert processed.exit_code == 0, processed.output
    real_rows = [r for r in _manifest(out) if r["group"] == "processed-real"]
    assert len(real_rows) == 3 and {r["label"] for r in real_rows} == {"0"}
    assert all(r["path"].startswith("real/processed-real/") for r in real_rows)
    assert all((out / r["path"]).is_file() and (out / r["params"]).is_file() for r in real_rows)


def test_photo_ids_and_licences_come_from_the_dataset_manifest(tmp_path):
    from fakescope.data.manifest import ManifestRow, append_manifest

    rng = np.random.default_rng(5)
    rows = []
    for name, photo_id in (("IMG_0001", "photo-a"), ("IMG_0002", "photo-b")):
        path = tmp_path / "real" / "camera" / f"{name}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(natural_like(rng, 64)).save(path)
        relative = path.relative_to(tmp_path).as_posix()
        rows.append(
            ManifestRow(relative, 0, "real", photo_id, "camera", "CC0-1.0", "", 64, 64, "PNG")
        )
    append_manifest(tmp_path, rows)
    args = ["data", "synth", "-g", "processed-real", "--from", str(tmp_path / "real")]
    result = runner.invoke(app, [*args, "--tile-size", "64", "--no-progress", str(tmp_path)])
    assert result.exit_code == 0, result.output
    written = [r for r in _manifest(tmp_path) if r["group"] == "processed-real"]
    assert sorted(r["path"] for r in written) == [
        "real/processed-real/photo-a_0.png",
        "real/processed-real/photo-b_0.png",
    ]
    assert {(r["label"], r["source"], r["licence"]) for r in written} == {
        ("0", "camera", "CC0-1.0")
    }


def test_cli_unknown_generator_exits_2_with_the_valid_names(photo_folder, tmp_path):
    result = runner.invoke(
        app, ["data", "synth", "--generator", "nope", "--from", str(photo_folder), str(tmp_path)]
    )
    assert result.exit_code == 2
    assert "ae-nearest" in result.output and "processed-real" in result.output


def test_cli_refuses_training_photos_that_are_also_applied(photo_folder, tmp_path):
    pytest.importorskip("torch")  # the check runs once the generator's stack has loaded
    args = ["data", "synth", "-g", "ae-nearest", "--from", str(photo_folder)]
    result = runner.invoke(app, [*args, "--train-from", str(photo_folder), str(tmp_path / "o")])
    assert result.exit_code == 1 and "share photos" in result.output


def test_cli_without_torch_names_the_extra(photo_folder, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "torch", None)  # "import torch" now raises ImportError
    monkeypatch.delitem(sys.modules, "fakescope.data.generators.ae", raising=False)
    args = ["data", "synth", "-g", "ae-nearest", "--from", str(photo_folder), str(tmp_path / "o")]
    result = runner.invoke(app, args)
    assert result.exit_code == 1
    assert "pip install -e .[torch]" in " ".join(result.output.split()).replace("\n", "")
