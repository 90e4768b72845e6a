"""Scan engines: the local process pool and Ray give the serial scan's rows, whatever happens.

Every test scans with the bundled ``spectral-default`` model. The local engine's pool and the
Ray runtime are started once per module: their start-up is the slow part.
"""

from __future__ import annotations

import json
import os
import signal
import sys
from collections.abc import Iterator
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from fakescope.calibration.model import CalibratedModel
from fakescope.cli.main import app
from fakescope.pipeline.engines import create_engine, engine_class, list_engines
from fakescope.pipeline.engines.common import ModelSource, ScanLimits
from fakescope.pipeline.engines.local import LocalEngine, WorkerStartError
from fakescope.pipeline.engines.table import (
    _column_kind,
    flatten_result,
    result_columns,
    result_from_row,
)
from fakescope.pipeline.scan import scan_paths
from fakescope.results import ScanResult
from tests.conftest import natural_like, upsampled_fake

BATCH = 2  # small batches, so a handful of files makes several batches in flight
POISON_WIDTH = 88  # the test model kills its worker on an image this wide


def _write_images(folder: Path) -> list[str]:
    """Real-like and fake-like images, a truncated JPEG, a text file named .png, a tiny image."""
    folder.mkdir()
    rng = np.random.default_rng(7)
    for index in range(6):
        pixels = natural_like(rng, 96) if index % 2 else upsampled_fake(rng, 96)
        extension = "png" if index < 3 else "jpg"
        Image.fromarray(pixels).save(folder / f"img{index}.{extension}")
    Image.fromarray(natural_like(rng, 96)[:, :POISON_WIDTH]).save(folder / "narrow.png")
    whole = (folder / "img3.jpg").read_bytes()
    (folder / "truncated.jpg").write_bytes(whole[: len(whole) // 2])
    (folder / "notes.png").write_text("not an image at all\n")
    Image.fromarray(np.zeros((2, 2, 3), np.uint8)).save(folder / "tiny.png")
    return sorted(str(path) for path in folder.iterdir())


@pytest.fixture(scope="module")
def image_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("engines") / "images"
    _write_images(folder)
    return folder


@pytest.fixture(scope="module")
def source() -> ModelSource:
    return ModelSource.of("spectral-default")


@pytest.fixture(scope="module")
def serial_rows(image_dir: Path, source: ModelSource) -> list[ScanResult]:
    return list(scan_paths([str(image_dir)], source.load(), batch_size=BATCH))


@pytest.fixture(scope="module")
def pool(source: ModelSource) -> Iterator[LocalEngine]:
    with LocalEngine(source, workers=2, limits=ScanLimits(batch_size=BATCH)) as engine:
        yield engine.start()


# ----------------------------------------------------------------------------- the table


def test_columns_are_the_result_fields_with_nested_values_as_json():
    columns = {column.name: column.kind for column in result_columns()}
    assert list(columns) == [f.name for f in fields(ScanResult)]
    assert columns["score"] == "float"
    assert columns["path"] == columns["verdict"] == columns["error_kind"] == "string"
    assert columns["detectors"] == columns["evidence"] == "json"


@pytest.mark.parametrize(
    ("annotation", "kind"),
    [
        (int | None, "int"),
        (bool, "bool"),
        (Literal["real", "fake"] | None, "string"),
        (dict[str, Any], "json"),
        (list[str] | None, "json"),
        (int | str, "json"),  # no single scalar type: stored as JSON, never coerced
    ],
)
def test_a_new_field_gets_a_column_from_its_type(annotation, kind):
    assert _column_kind(annotation) == kind


def test_flattening_round_trips(serial_rows):
    scored = next(row for row in serial_rows if row.error is None)
    failed = next(row for row in serial_rows if row.error is not None)
    for result in (scored, failed):
        flat = flatten_result(result)
        assert isinstance(flat["evidence"], str)
        assert json.loads(flat["detectors"]) == result.detectors
        assert result_from_row(flat) == result


def test_parquet_file_holds_typed_rows_in_row_groups(tmp_path, serial_rows):
    pq = pytest.importorskip("pyarrow.parquet")
    from fakescope.pipeline.engines.table import ParquetResultWriter, arrow_schema, read_results

    errors_only = [row for row in serial_rows if row.error is not None]
    with ParquetResultWriter(tmp_path / "errors.parquet", rows_per_group=2) as writer:
        writer.write_all(errors_only)
    parquet = pq.ParquetFile(tmp_path / "errors.parquet")
    assert parquet.schema_arrow == arrow_schema()  # all-null scores still a float column
    assert parquet.num_row_groups == -(-len(errors_only) // 2)
    assert read_results(tmp_path / "errors.parquet") == errors_only


# ----------------------------------------------------------------------------- local engine


def test_the_registry_names_both_engines_and_imports_lazily():
    assert list_engines() == ["local", "ray"]
    assert engine_class("local") is LocalEngine
    with pytest.raises(KeyError, match="unknown engine"):
        engine_class("spark")


def test_pool_gives_the_serial_rows_in_order_bad_files_included(pool, image_dir, serial_rows):
    rows = list(pool.scan([str(image_dir)]))
    assert rows == serial_rows
    kinds = {Path(row.path).name: row.error_kind for row in rows}
    assert kinds["truncated.jpg"] == "truncated_image"
    assert kinds["notes.png"] == "unsupported_format"
    assert kinds["tiny.png"] == "image_too_small"
    assert sum(row.score is not None for row in rows) == 7


def test_one_worker_scans_in_process_like_the_serial_scan(source, image_dir, serial_rows):
    engine = create_engine("local", source, workers=1, limits=ScanLimits(batch_size=BATCH))
    with engine:
        assert list(engine.scan([str(image_dir)])) == serial_rows
        assert engine._pool is None


def test_results_follow_the_input_order_not_the_finishing_order(pool, image_dir):
    paths = sorted(str(path) for path in image_dir.iterdir())
    shuffled = [paths[i] for i in np.random.default_rng(3).permutation(len(paths))]
    shuffled.append(str(image_dir / "missing.png"))
    rows = list(pool.scan(shuffled))
    assert [row.path for row in rows] == shuffled
    assert rows[-1].error_kind == "unreadable"


def test_inputs_are_read_lazily_with_a_bounded_number_of_batches_in_flight(source, image_dir):
    files = sorted(str(path) for path in image_dir.glob("img*"))
    taken = 0

    def many_inputs() -> Iterator[str]:
        nonlocal taken
        for index in range(60):
            taken += 1
            yield files[index % len(files)]

    limits = ScanLimits(batch_size=BATCH)
    with LocalEngine(source, workers=2, limits=limits, batches_in_flight=2) as engine:
        ahead = []
        for done, _ in enumerate(engine.scan(many_inputs()), start=1):
            ahead.append(taken - done)
    assert done == 60
    # Two batches in flight, one being collected and one peeked entry: never the whole input.
    assert max(ahead) <= 3 * BATCH + 1


def test_a_worker_that_cannot_load_the_model_stops_the_scan(image_dir):
    broken = ModelSource(str(image_dir / "no-such-model"))
    engine = LocalEngine(broken, workers=2, limits=ScanLimits(batch_size=BATCH))
    with engine, pytest.raises(WorkerStartError, match="could not load the model"):
        list(engine.scan([str(image_dir)]))


def test_local_engine_refuses_a_cluster_address(source):
    with pytest.raises(ValueError, match="--engine ray"):
        LocalEngine(source, address="auto")


@dataclass
class KillingSource(ModelSource):
    """The bundled model, whose worker process is killed when it meets a POISON_WIDTH image.

    With a ``flag_file``, only the first time (a passing failure, like the OOM killer);
    without one, every time (a file that crashes the decoder).
    """

    flag_file: str = ""

    def _load(self, one_thread: bool = False) -> CalibratedModel:
        model = super()._load(one_thread)
        original = model.detector.predict_with_evidence

        def predict_or_die(images: list[np.ndarray]) -> Any:
            poisoned = any(image.shape[1] == POISON_WIDTH for image in images)
            if poisoned and not (self.flag_file and os.path.exists(self.flag_file)):
                if self.flag_file:
                    Path(self.flag_file).touch()
                os.kill(os.getpid(), signal.SIGKILL)
            return original(images)

        model.detector.predict_with_evidence = predict_or_die
        return model


def test_a_worker_killed_once_costs_a_rerun_and_no_row(tmp_path, image_dir, serial_rows):
    source = KillingSource("spectral-default", flag_file=str(tmp_path / "killed-once"))
    with LocalEngine(source, workers=2, limits=ScanLimits(batch_size=BATCH)) as engine:
        rows = list(engine.scan([str(image_dir)]))
        assert engine.worker_restarts == 1
    assert (tmp_path / "killed-once").exists()
    assert rows == serial_rows


def test_a_file_that_always_kills_its_worker_gets_an_error_row(image_dir, serial_rows):
    source = KillingSource("spectral-default")
    with LocalEngine(source, workers=2, limits=ScanLimits(batch_size=BATCH)) as engine:
        rows = list(engine.scan([str(image_dir)]))
    assert [row.path for row in rows] == [row.path for row in serial_rows]
    for row, expected in zip(rows, serial_rows, strict=True):
        if Path(row.path).name == "narrow.png":
            assert row.error_kind == "worker_crashed" and row.score is None
        else:
            assert row == expected


# ----------------------------------------------------------------------------- command line


def test_cli_writes_parquet_for_a_parquet_out(tmp_path, image_dir):
    pytest.importorskip("pyarrow")
    from fakescope.pipeline.engines.table import read_results

    runner = CliRunner()
    out = tmp_path / "results.parquet"
    args = ["scan", str(image_dir), "-m", "spectral-default", "--workers", "2", "--no-progress"]
    args += ["--batch-size", str(BATCH)]
    result = runner.invoke(app, [*args, "--out", str(out)])
    assert result.exit_code == 0, result.output
    jsonl = runner.invoke(app, [*args, "--format", "jsonl"])
    expected = [json.loads(line) for line in jsonl.stdout.splitlines()]
    assert [row.to_dict() for row in read_results(out)] == expected


@pytest.mark.parametrize(
    ("extra", "message"),
    [(["--format", "parquet"], "--out"), (["--address", "auto"], "--engine ray")],
)
def test_cli_usage_errors(image_dir, extra, message):
    result = CliRunner().invoke(app, ["scan", str(image_dir), "-m", "spectral-default", *extra])
    assert result.exit_code == 2
    assert message in result.output


def test_missing_pyarrow_is_a_clear_error(tmp_path, monkeypatch):
    from fakescope.pipeline.engines.table import ParquetResultWriter

    monkeypatch.setitem(sys.modules, "pyarrow", None)
    monkeypatch.setitem(sys.modules, "pyarrow.parquet", None)
    with pytest.raises(ImportError, match=r"pip install -e '\.\[parquet\]'"):
        ParquetResultWriter(tmp_path / "results.parquet")


def test_missing_ray_is_a_clear_error(monkeypatch):
    from fakescope.pipeline.engines.ray_engine import RayNotInstalledError, import_ray

    monkeypatch.setitem(sys.modules, "ray", None)
    with pytest.raises(RayNotInstalledError, match=r"pip install -e '\.\[ray\]'"):
        import_ray()


# ----------------------------------------------------------------------------- Ray engine


@pytest.fixture(scope="module")
def ray_runtime() -> Iterator[Any]:
    ray = pytest.importorskip("ray")
    pytest.importorskip("ray.data")
    started = not ray.is_initialized()
    if started:
        ray.init(num_cpus=2, include_dashboard=False, logging_level="ERROR")
    yield ray
    if started:
        ray.shutdown()


@pytest.fixture
def ray_engine(ray_runtime, source) -> Any:
    from fakescope.pipeline.engines.ray_engine import RayEngine

    return RayEngine(source, workers=1, limits=ScanLimits(batch_size=BATCH))


def test_ray_writes_the_local_engines_rows_with_the_same_schema(
    tmp_path, ray_engine, pool, image_dir
):
    import pyarrow.parquet as pq

    from fakescope.pipeline.engines.table import arrow_schema, read_results

    inputs = [str(image_dir), str(image_dir / "missing.png")]
    out = tmp_path / "results.parquet"
    counted: list[ScanResult] = []
    assert ray_engine.write_parquet(inputs, out, on_result=counted.append) == 11
    shards = sorted(out.glob("*.parquet"))
    assert shards and all(pq.read_schema(shard) == arrow_schema() for shard in shards)
    local = list(pool.scan(inputs))
    by_path = sorted(read_results(out), key=lambda row: row.path)
    assert by_path == sorted(local, key=lambda row: row.path)
    kinds = {Path(row.path).name: row.error_kind for row in by_path}
    assert kinds["truncated.jpg"] == "truncated_image"
    assert kinds["notes.png"] == "unsupported_format"
    assert kinds["missing.png"] == "unreadable"
    assert sorted(row.verdict or "error" for row in counted) == sorted(
        row.verdict or "error" for row in local
    )


def test_ray_refuses_to_write_into_an_existing_folder(tmp_path, ray_engine, image_dir):
    (tmp_path / "old.parquet").mkdir()
    (tmp_path / "old.parquet" / "part-0.parquet").write_bytes(b"x")
    with pytest.raises(FileExistsError):
        ray_engine.write_parquet([str(image_dir)], tmp_path / "old.parquet")


def test_rows_of_a_lost_block_become_worker_crashed_rows(
    tmp_path, monkeypatch, ray_runtime, ray_engine, image_dir, serial_rows
):
    """Ray gave up a block (its actors kept dying): each of its files still gets a row."""
    from fakescope.pipeline.engines.table import read_results, results_to_arrow

    lost = {serial_rows[1].path, serial_rows[-1].path}
    survivors = [row for row in serial_rows if row.path not in lost]
    monkeypatch.setattr(
        ray_engine,
        "results_dataset",
        lambda entries: ray_runtime.data.from_arrow(results_to_arrow(survivors)),
    )
    streamed = list(ray_engine.scan([str(image_dir)]))
    assert [row.path for row in streamed] == [row.path for row in serial_rows]
    for row, expected in zip(streamed, serial_rows, strict=True):
        assert row.error_kind == "worker_crashed" if row.path in lost else row == expected
    ray_engine.write_parquet([str(image_dir)], tmp_path / "out.parquet")
    written = {row.path: row for row in read_results(tmp_path / "out.parquet")}
    assert sorted(written) == sorted(row.path for row in serial_rows)
    assert {path for path, row in written.items() if row.error_kind == "worker_crashed"} == lost


def test_actors_ask_for_a_gpu_only_when_there_is_one_and_the_model_uses_it(
    monkeypatch, ray_runtime, ray_engine, source
):
    assert ray_engine.gpus_per_worker() == 0.0  # this machine has no GPU
    monkeypatch.setattr(ray_runtime, "cluster_resources", lambda: {"CPU": 2.0, "GPU": 1.0})
    assert ray_engine.gpus_per_worker() == 0.0  # the spectral model runs on the CPU
    monkeypatch.setattr(source.load().detector, "uses_gpu", True, raising=False)
    assert ray_engine.gpus_per_worker() == 1.0
