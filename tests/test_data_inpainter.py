"""The learned inpainter (``inpaint-net``) and the ``inpaint-learned`` forgery kind.

Tiny networks (width 4, a few steps, 32-64 px) keep every test well under a second of training;
what is checked is the contract: seeded training and the cache, fills confined to the mask,
exact masks in the dataset, the model recorded in the parameters, and the command line.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from fakescope.cli.main import app
from fakescope.data.forge import FORGERIES, MissingDependencyError
from fakescope.data.generators import GENERATORS, create_generator, list_generators
from fakescope.data.manifest import read_manifest
from tests.conftest import natural_like

runner = CliRunner()


def _plain(output: str) -> str:
    """CLI output with rich's panel borders and line wrapping undone."""
    return " ".join(output.replace("\u2502", " ").split())


def tiny(steps: int = 3, adversarial_weight: float = 0.0) -> Any:
    """An inpainter small enough to train in a fraction of a second (one thread)."""
    from fakescope.data.generators.inpainter import InpainterConfig, InpainterOptions

    config = InpainterConfig(width=4, dilated=1, disc_features=4)
    options = InpainterOptions(
        steps=steps,
        batch_size=2,
        crop=32,
        threads=1,
        adversarial_weight=adversarial_weight,
        adversarial_start=0.5,
    )
    return create_generator("inpaint-net", config=config, options=options)


@pytest.fixture(scope="module")
def tiles() -> np.ndarray:
    rng = np.random.default_rng(0)
    return np.stack([natural_like(rng, 64) for _ in range(4)])


@pytest.fixture(scope="module")
def trained(tiles: np.ndarray) -> Any:
    pytest.importorskip("torch")
    generator = tiny()
    generator.fit(tiles, seed=0)
    return generator


def _weights(generator: Any) -> dict[str, np.ndarray]:
    return {
        f"{name}.{key}": value.detach().numpy().copy()
        for name, module in generator.saved_modules().items()
        for key, value in module.state_dict().items()
    }


def _write_photos(root: Path, n: int = 4, size: int = 64) -> Path:
    rng = np.random.default_rng(3)
    root.mkdir(parents=True)
    for i in range(n):
        Image.fromarray(natural_like(rng, size)).save(root / f"p{i}_0_0.png")
    return root


# -- registry (no torch needed) ---------------------------------------------------------------


def test_registered_without_importing_torch() -> None:
    assert "inpaint-net" in list_generators()
    assert GENERATORS["inpaint-net"].kind == "image-to-image"
    assert "inpaint-learned" in FORGERIES
    code = (
        "import sys, fakescope.data.forge as f, fakescope.data.generators as g; "
        "f.FORGERIES['inpaint-learned']; g.list_generators(); print('torch' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_missing_torch_is_reported_with_the_extra(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "torch", None)  # "import torch" now raises ImportError
    with pytest.raises(MissingDependencyError, match=r"pip install -e \.\[torch\]"):
        FORGERIES["inpaint-learned"].ensure_available()
    photos = _write_photos(tmp_path / "in", n=2)
    args = ["data", "forge", "--kind", "inpaint-learned", "--from", str(photos)]
    result = runner.invoke(app, [*args, str(tmp_path / "out")])
    assert result.exit_code == 1 and "pip install -e .[torch]" in _plain(result.output)
    assert not (tmp_path / "out").exists()


# -- the generator ----------------------------------------------------------------------------


def test_training_is_seeded_and_cached(tiles: np.ndarray, tmp_path: Path) -> None:
    pytest.importorskip("torch")
    first = tiny()
    cache = first.fit_cached(tiles, seed=1, cache_dir=tmp_path)
    assert not cache.hit and (cache.path / "model.safetensors").is_file()
    assert cache.path.name == f"inpaint-net-{cache.fingerprint[:16]}"
    log = first.log
    assert log.steps == 3 and log.train_tiles == 4 and set(log.losses) == {"l1_hole", "l1_valid"}
    retrained = tiny()
    retrained.fit(tiles, seed=1)
    loaded = tiny()
    again = loaded.fit_cached(tiles, seed=1, cache_dir=tmp_path)
    assert again.hit and again.path == cache.path
    reference = _weights(first)
    for other in (retrained, loaded):  # same seed: bit-identical weights, trained or loaded
        weights = _weights(other)
        assert weights.keys() == reference.keys()
        assert all(np.array_equal(weights[k], reference[k]) for k in reference)
    assert np.array_equal(first.generate(tiles, seed=0), loaded.generate(tiles, seed=0))
    other_seed = tiny()
    assert other_seed.fit_cached(tiles, seed=2, cache_dir=tmp_path).path != cache.path
    assert not all(np.array_equal(_weights(other_seed)[k], reference[k]) for k in reference)


def test_the_optional_discriminator_trains_deterministically(tiles: np.ndarray) -> None:
    pytest.importorskip("torch")
    first, second = tiny(steps=2, adversarial_weight=0.1), tiny(steps=2, adversarial_weight=0.1)
    log = first.fit(tiles, seed=0)
    second.fit(tiles, seed=0)
    assert set(log.losses) == {"l1_hole", "l1_valid", "adv", "disc"}  # step 2 is adversarial
    assert set(first.saved_modules()) == {"inpainter"}  # the discriminator is not saved
    reference, weights = _weights(first), _weights(second)
    assert all(np.array_equal(weights[k], reference[k]) for k in reference)


def test_inpainting_changes_only_the_masked_pixels(trained: Any, tiles: np.ndarray) -> None:
    masks = trained.sample_masks(tiles, seed=5)
    assert masks.shape == tiles.shape[:3] and all(0 < m.mean() < 0.5 for m in masks)
    # A tile's hole depends on its pixels and the seed, not on what it is batched with.
    assert np.array_equal(trained.sample_masks(tiles[2:3], seed=5)[0], masks[2])
    out = trained.generate(tiles, seed=5)
    assert out.shape == tiles.shape and out.dtype == np.uint8
    changed = (out != tiles).any(axis=3)
    assert not changed[~masks].any() and changed[masks].mean() > 0.6
    assert np.array_equal(out, trained.inpaint(tiles, masks))
    # Sides that are not multiples of 4 are padded and cut back.
    odd, odd_mask = tiles[:2, :30, :42], masks[:2, :30, :42].copy()
    odd_mask[:, 10:20, 5:15] = True
    filled = trained.inpaint(odd, odd_mask)
    assert filled.shape == odd.shape
    assert np.array_equal(filled[~odd_mask], odd[~odd_mask])


# -- the forgery kind -------------------------------------------------------------------------


def test_forgery_mask_is_exact_and_records_the_model(trained: Any) -> None:
    from fakescope.data.forge.inpaint_learned import (
        Inpainter,
        forge_inpaint_learned,
        use_inpainter,
    )

    target = natural_like(np.random.default_rng(9), 96)
    inpainter = Inpainter(trained, {"generator": "inpaint-net", "fingerprint": "f" * 64})
    with pytest.raises(MissingDependencyError, match="trained inpainter"):
        FORGERIES["inpaint-learned"].ensure_available()
    for seed in range(3):
        with use_inpainter(inpainter):
            FORGERIES["inpaint-learned"].ensure_available()
            forgery = FORGERIES["inpaint-learned"].forge(target, np.random.default_rng(seed))
        forgery.validate(target.shape)
        changed = (forgery.pixels != target).any(axis=2)
        assert forgery.mask.any() and not changed[~forgery.mask].any()
        assert changed[forgery.mask].mean() > 0.6
        top, left, height, width = forgery.params["window_yxhw"]
        window = np.zeros_like(forgery.mask)
        window[top : top + height, left : left + width] = True
        assert not (forgery.mask & ~window).any()  # the region lies inside the window
        assert forgery.params["model"]["fingerprint"] == "f" * 64
        json.dumps(forgery.params)
        redo = forge_inpaint_learned(target, np.random.default_rng(seed), inpainter=inpainter)
        assert np.array_equal(redo.pixels, forgery.pixels)


def test_cli_trains_once_then_forges_from_the_cache(tmp_path: Path) -> None:
    pytest.importorskip("torch")
    photos = _write_photos(tmp_path / "in")
    cache = tmp_path / "cache"
    base = ["data", "forge", "--kind", "inpaint-learned", "--from", str(photos), "--seed", "2"]
    train = ["--train-steps", "2", "--cache-dir", str(cache)]
    out = tmp_path / "out"
    result = runner.invoke(app, [*base, *train, str(out)])
    assert result.exit_code == 0, result.output
    assert "inpaint-net: trained" in result.output and "forged 4 inpaint-learned" in result.output
    (folder,) = cache.iterdir()
    rows = [row for row in read_manifest(out) if row.label == 1]
    assert len(rows) == 4 and {row.group for row in rows} == {"inpaint-learned"}
    fingerprint = json.loads((folder / "config.json").read_text())["fingerprint"]
    for row in rows:
        meta = json.loads((out / row.params).read_text())
        model = meta["params"]["model"]
        assert model["fingerprint"] == fingerprint and model["options"]["steps"] == 2
        assert model["training"]["train_photo_ids"] == ["p0", "p1", "p2", "p3"]
        assert model["overlapping_photo_ids"] == ["p0", "p1", "p2", "p3"]
        forged = np.asarray(Image.open(out / row.path))
        original = np.asarray(Image.open(out / meta["target"]["real"]))
        mask = np.asarray(Image.open(out / row.mask)) == 255
        changed = (forged != original).any(axis=2)
        assert mask.any() and not changed[~mask].any() and changed[mask].mean() > 0.6
    # Again: the cached model is loaded, and the forgeries are the same bytes; a saved model
    # folder (--generator-dir) gives the same too.
    again = runner.invoke(app, [*base, *train, str(tmp_path / "again")])
    assert again.exit_code == 0 and "inpaint-net: loaded from cache" in again.output
    loaded = runner.invoke(app, [*base, "--generator-dir", str(folder), str(tmp_path / "dir")])
    assert loaded.exit_code == 0, loaded.output
    for row in rows:
        for twin in (tmp_path / "again", tmp_path / "dir"):
            assert (twin / row.path).read_bytes() == (out / row.path).read_bytes()
    meta = json.loads((tmp_path / "dir" / rows[0].params).read_text())
    assert meta["params"]["model"]["origin"] == "generator-dir"
    assert meta["params"]["model"]["fingerprint"] == fingerprint


def test_a_saved_model_without_its_training_photos_has_unknown_overlap(
    trained: Any, tmp_path: Path
) -> None:
    from fakescope.data.forge.inpaint_learned import prepare_inpainter
    from fakescope.data.manifest import file_sha256

    folder = trained.save(tmp_path / "model")  # saved by hand: no fingerprint, no photo list
    photos = _write_photos(tmp_path / "in", n=2)
    description = prepare_inpainter(photos, generator_dir=folder).description
    assert description["origin"] == "generator-dir" and description["fingerprint"] is None
    assert description["overlapping_photo_ids"] is None  # unknown, not "none"
    assert description["weights_sha256"] == file_sha256(folder / "model.safetensors")


def test_cli_rejects_model_options_that_do_not_apply(tmp_path: Path) -> None:
    photos = _write_photos(tmp_path / "in", n=2)
    base = ["data", "forge", "--from", str(photos)]
    other_kind = runner.invoke(
        app, [*base, "--kind", "inpaint", "--train-steps", "3", str(tmp_path / "o1")]
    )
    assert other_kind.exit_code == 2 and "only apply to --kind inpaint-learned" in _plain(
        other_kind.output
    )
    learned = [*base, "--kind", "inpaint-learned", "--generator-dir", str(photos)]
    both = runner.invoke(app, [*learned, "--train-steps", "3", str(tmp_path / "o2")])
    assert both.exit_code == 2 and "do not apply" in _plain(both.output)


def test_cli_refuses_a_folder_that_is_no_inpainter(tmp_path: Path) -> None:
    pytest.importorskip("torch")
    photos = _write_photos(tmp_path / "in", n=2)
    args = ["data", "forge", "--kind", "inpaint-learned", "--from", str(photos)]
    result = runner.invoke(app, [*args, "--generator-dir", str(photos), str(tmp_path / "o")])
    assert result.exit_code == 2 and "cannot load an inpainter" in _plain(result.output)
