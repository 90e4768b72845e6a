"""The HTTP API with FastAPI's TestClient: uploads, limits, keys, jobs, results and views."""

from __future__ import annotations

import asyncio
import io
import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

pytest.importorskip("fastapi")
pytest.importorskip("sqlalchemy")
pytest.importorskip("httpx")

from fastapi.testclient import TestClient

from fakescope.io.image import decode_image_bytes
from fakescope.localizers.base import Localizer
from fakescope.models import load_model
from fakescope.results import ScanResult
from fakescope.server import ServerSettings, create_app
from fakescope.server.uploads import display_name, sniff_media_kind
from fakescope.store.db import CaseStore, Sighting
from tests.conftest import BrightLocalizer, natural_like

API_KEY = "correct horse battery staple"
MP4_HEAD = b"\x00\x00\x00\x18ftypisom\x00\x00\x02\x00isomiso2"


@pytest.fixture(scope="module")
def model() -> Any:
    # Pinned: the fast numpy model, and a test fake it scores ~1.0 (tests/data/README.md).
    return load_model("spectral-default")


def evidence_value(evidence: dict[str, Any], key: str) -> Any:
    """``key`` wherever it sits in the evidence (flat, or grouped by reader)."""
    if key in evidence:
        return evidence[key]
    for value in evidence.values():
        if isinstance(value, dict) and key in value:
            return value[key]
    return None


def png_bytes(pixels: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG")
    return buffer.getvalue()


@pytest.fixture(scope="module")
def images() -> dict[str, bytes]:
    rng = np.random.default_rng(8)
    real = png_bytes(natural_like(rng, 96))
    jpeg = io.BytesIO()
    Image.fromarray(natural_like(rng, 96)).save(jpeg, format="JPEG", quality=90)
    data = Path(__file__).resolve().parent / "data"
    return {
        "real": real,
        # spectral-default's own generator made this one (it scores ~1.0).
        "fake": (data / "fake-ae-transposed-skimage-chelsea.png").read_bytes(),
        "jpeg": jpeg.getvalue(),
        "truncated": jpeg.getvalue()[: len(jpeg.getvalue()) // 2],
    }


def make_client(
    tmp_path: Path, model: Any, edit_localizer: Localizer | None = None, **overrides: Any
) -> TestClient:
    # No bundled localizer unless a test asks: loading segmentation-default needs torch and
    # would put an edits overlay into every report.
    overrides.setdefault("localizer", None)
    settings = ServerSettings(
        db=str(tmp_path / "cases.sqlite"), workdir=tmp_path / "work", workers=2, **overrides
    )
    return TestClient(create_app(settings, model=model, localizer=edit_localizer))


@pytest.fixture
def client(tmp_path: Path, model: Any) -> Iterator[TestClient]:
    with make_client(tmp_path, model) as test_client:
        yield test_client


def upload(client: TestClient, files: list[tuple[str, bytes]], **kwargs: Any) -> Any:
    parts = [("files", (name, data, "application/octet-stream")) for name, data in files]
    return client.post("/v1/scan", files=parts, **kwargs)


def test_scan_several_files_with_bad_ones_in_order(client, images):
    response = upload(
        client,
        [
            ("real.png", images["real"]),
            ("broken.jpg", images["truncated"]),
            ("generated.png", images["fake"]),
            ("notes.png", b"this is plain text, not an image"),
        ],
    )
    assert response.status_code == 200, response.text
    body = response.json()
    rows = body["results"]
    assert [row["path"] for row in rows] == ["real.png", "broken.jpg", "generated.png", "notes.png"]
    assert body["model"] == "spectral-default"
    real, broken, fake, text = rows
    assert real["verdict"] in {"real", "uncertain", "fake"} and real["error"] is None
    assert set(real["detectors"]) == {"spectral"}
    assert evidence_value(real["evidence"], "format") == "PNG"
    assert broken["error_kind"] == "truncated_image" and broken["verdict"] is None
    assert text["error_kind"] == "unsupported_format"
    assert fake["verdict"] == "fake" and fake["score"] > real["score"]
    # Every row has a key, bad files too: their bytes were hashed on arrival.
    assert all(len(row["sha256"]) == 64 for row in rows)


def test_same_result_as_the_cli_pipeline(client, images, model, tmp_path):
    from fakescope.pipeline.scan import scan_paths

    path = tmp_path / "same.png"
    path.write_bytes(images["fake"])
    expected = next(iter(scan_paths([str(path)], model))).to_dict()
    row = upload(client, [("same.png", images["fake"])]).json()["results"][0]
    assert row == {**expected, "path": "same.png"}


def test_lying_extension_is_sniffed_from_the_content(client, images):
    rows = upload(
        client,
        [("holiday.jpg", images["real"]), ("photo.png", images["jpeg"]), ("clip.png", MP4_HEAD)],
    ).json()["results"]
    assert rows[0]["error"] is None and evidence_value(rows[0]["evidence"], "format") == "PNG"
    assert rows[1]["error"] is None and evidence_value(rows[1]["evidence"], "format") == "JPEG"
    # An MP4 header named .png goes to the video pipeline, which finds it cut short (or says
    # that video support is not installed); never to the image decoder.
    assert "video" in rows[2]["error_kind"]


def test_video_uploads_go_to_the_video_scanner(tmp_path, model):
    seen: list[tuple[Path, str]] = []

    def fake_video_scanner(path: Path, name: str, _model: Any) -> ScanResult:
        seen.append((path, name))
        evidence = {"video": {"frame_scores": [0.1, 0.9, 0.8], "segments": [[1, 2]]}}
        return ScanResult(path="ignored", score=0.9, verdict="fake", evidence=evidence)

    settings = ServerSettings(
        db=str(tmp_path / "c.sqlite"), workdir=tmp_path / "work", model="spectral-default"
    )
    app = create_app(settings, model=model, video_scanner=fake_video_scanner)
    with TestClient(app) as client:
        row = upload(client, [("clip.webm", b"\x1a\x45\xdf\xa3" + b"\x00" * 64)]).json()
        row = row["results"][0]
        assert row["path"] == "clip.webm" and row["verdict"] == "fake"
        assert len(row["sha256"]) == 64
        # The scanner read the kept upload, named by its hash inside the work folder.
        assert seen[0][0].name == row["sha256"] and seen[0][1] == "clip.webm"
        report = client.get(f"/v1/results/{row['sha256']}/report").json()
        assert report["media"] == "video"
        assert report["spectrum_url"] is None
        assert any("Suspicious segments" in sentence for sentence in report["explanation"])


def test_path_traversal_in_filename_is_harmless(tmp_path, model, images):
    with make_client(tmp_path, model) as client:
        names = ["../../escaped-marker.png", "..\\..\\escaped-marker2.png", "/etc/passwd", ".."]
        rows = upload(client, [(name, images["real"]) for name in names]).json()["results"]
    assert [row["path"] for row in rows[:3]] == [
        "escaped-marker.png",
        "escaped-marker2.png",
        "passwd",
    ]
    assert rows[3]["path"].startswith("upload-")
    assert not list(tmp_path.rglob("escaped-marker*")), "a client's name reached the disk"
    kept = list((tmp_path / "work" / "uploads").iterdir())
    assert [path.name for path in kept] == [rows[0]["sha256"]]


def test_results_by_sha256(client, images):
    row = upload(client, [("a.png", images["real"])]).json()["results"][0]
    fetched = client.get(f"/v1/results/{row['sha256']}")
    assert fetched.status_code == 200 and fetched.json() == row
    assert client.get(f"/v1/results/{row['sha256'].upper()}").json() == row
    assert client.get("/v1/results/" + "0" * 64).status_code == 404
    assert client.get("/v1/results/not-a-hash").status_code == 422


def test_known_content_comes_from_the_database_unless_rescanned(tmp_path, model, images):
    with make_client(tmp_path, model) as client:
        first = upload(client, [("one.png", images["real"])]).json()["results"][0]
        store: CaseStore = client.app.state.store
        scanned_at = store.get(first["sha256"]).scanned_at
        again = upload(client, [("copy.png", images["real"])]).json()["results"][0]
        assert again["path"] == "copy.png" and again["score"] == first["score"]
        assert store.get(first["sha256"]).scanned_at == scanned_at  # not scored again
        assert set(store.paths_of(first["sha256"])) == {"upload:one.png", "upload:copy.png"}
        upload(client, [("one.png", images["real"])], params={"rescan": "true"})
        assert store.get(first["sha256"]).scanned_at > scanned_at


def test_health_needs_no_key_and_reports_the_queue(tmp_path, model):
    with make_client(tmp_path, model, api_key=API_KEY) as client:
        body = client.get("/v1/health").json()
    assert body["status"] == "ok" and body["model"] == "spectral-default"
    assert body["database"] == "sqlite" and body["queued_files"] == 0


def test_api_key_on(tmp_path, model, images):
    with make_client(tmp_path, model, api_key=API_KEY) as client:
        assert upload(client, [("a.png", images["real"])]).status_code == 401
        wrong = upload(client, [("a.png", images["real"])], headers={"X-API-Key": "guess"})
        assert wrong.status_code == 401
        assert wrong.headers["WWW-Authenticate"] == "ApiKey"
        right = upload(client, [("a.png", images["real"])], headers={"X-API-Key": API_KEY})
        assert right.status_code == 200
        sha = right.json()["results"][0]["sha256"]
        assert client.get(f"/v1/results/{sha}").status_code == 401
        assert client.get(f"/v1/results/{sha}", headers={"X-API-Key": API_KEY}).status_code == 200
        assert client.get("/v1/model").status_code == 401


def test_api_key_off(client, images):
    assert upload(client, [("a.png", images["real"])]).status_code == 200
    assert client.get("/v1/model").json()["name"] == "spectral-default"


def test_request_over_the_size_limit_is_413(tmp_path, model, images):
    with make_client(tmp_path, model, max_request_bytes=20_000) as client:
        big = np.random.default_rng(0).integers(0, 255, (128, 128, 3), dtype=np.uint8)
        response = upload(client, [("big.png", png_bytes(big))])
        assert response.status_code == 413
        assert "limit" in response.json()["detail"]

        # Without a Content-Length (chunked), the body is counted as it streams.
        def chunks() -> Iterator[bytes]:
            for _ in range(40):
                yield b"x" * 1000

        headers = {"Content-Type": "application/json"}
        chunked = client.post("/v1/scan", content=chunks(), headers=headers)
        assert chunked.status_code == 413
        # Small requests still pass.
        assert upload(client, [("small.png", images["real"])]).status_code == 200
    assert not list((tmp_path / "work" / "uploads").glob("*.png"))


def test_file_over_the_per_file_limit_gets_an_error_row(tmp_path, model, images):
    limit = len(images["real"]) - 1
    with make_client(tmp_path, model, max_file_bytes=limit) as client:
        rows = upload(client, [("big.png", images["real"]), ("ok.jpg", images["jpeg"])]).json()
    big, ok = rows["results"]
    assert big["error_kind"] == "file_too_large" and len(big["sha256"]) == 64
    assert ok["error"] is None
    # The refused file was hashed but not kept.
    kept = {path.name for path in (tmp_path / "work" / "uploads").iterdir()}
    assert big["sha256"] not in kept and ok["sha256"] in kept


def test_pixel_limit(tmp_path, model):
    rng = np.random.default_rng(1)
    small, large = png_bytes(natural_like(rng, 64)), png_bytes(natural_like(rng, 128))
    with make_client(tmp_path, model, max_pixels=64 * 64) as client:
        rows = upload(client, [("small.png", small), ("large.png", large)]).json()["results"]
    assert rows[0]["error"] is None
    assert rows[1]["error_kind"] == "image_too_large"


def test_scan_past_its_timeout_answers_202_with_a_job_to_poll(tmp_path, model, images):
    with make_client(tmp_path, model, scan_timeout_s=0.05) as client:
        queue = client.app.state.queue
        gate = threading.Event()
        scan_batch = queue.scan_batch

        def held(batch: Any, rescan: bool) -> Any:
            gate.wait(10)
            return scan_batch(batch, rescan)

        queue.scan_batch = held
        response = upload(client, [("a.png", images["real"]), ("b.png", images["fake"])])
        assert response.status_code == 202
        status = response.json()
        assert status["status"] in {"queued", "running"} and status["results"] == []
        assert response.headers["Location"] == status["status_url"]
        gate.set()
        done = poll(client, status["status_url"])
        assert [row["path"] for row in done["results"]] == ["a.png", "b.png"]


def test_request_body_that_never_arrives_is_408(tmp_path, model):
    app = create_app(
        ServerSettings(
            db=str(tmp_path / "c.sqlite"), workdir=tmp_path / "work", upload_timeout_s=0.2
        ),
        model=model,
    )
    sent: list[dict[str, Any]] = []

    async def trickle() -> dict[str, Any]:
        if not sent and not getattr(trickle, "started", False):
            trickle.started = True  # type: ignore[attr-defined]
            return {"type": "http.request", "body": b"--b\r\n", "more_body": True}
        await asyncio.sleep(30)  # the rest never comes
        return {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": "/v1/scan",
        "raw_path": b"/v1/scan",
        "query_string": b"",
        "root_path": "",
        "headers": [(b"content-type", b"multipart/form-data; boundary=b")],
        "client": ("127.0.0.1", 1),
        "server": ("127.0.0.1", 8000),
    }
    started = time.monotonic()
    asyncio.run(asyncio.wait_for(app(scope, trickle, send), 10))
    assert time.monotonic() - started < 5
    assert sent[0]["type"] == "http.response.start" and sent[0]["status"] == 408
    app.state.queue.shutdown()


def poll(client: TestClient, url: str, timeout: float = 20.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status = client.get(url).json()
        if status["status"] == "done":
            return status
        time.sleep(0.02)
    raise AssertionError(f"job {url} did not finish in {timeout} s")


def test_batch_job_polling(client, images):
    parts = [
        ("files", (f"{i}.png", images["real" if i % 2 else "fake"], "image/png")) for i in range(5)
    ]
    response = client.post("/v1/jobs", files=parts)
    assert response.status_code == 202
    job = response.json()
    assert job["total"] == 5 and response.headers["Location"] == job["status_url"]
    done = poll(client, job["status_url"])
    assert done["completed"] == 5 and done["finished_at"] >= done["created_at"]
    assert [row["path"] for row in done["results"]] == [f"{i}.png" for i in range(5)]
    assert client.get("/v1/jobs/" + "f" * 32).status_code == 404
    assert client.get("/v1/jobs/../../etc").status_code == 404


def test_full_queue_is_429_with_retry_after(tmp_path, model, images):
    with make_client(tmp_path, model, max_queued_files=2, scan_timeout_s=0.05) as client:
        queue = client.app.state.queue
        gate = threading.Event()
        scan_batch = queue.scan_batch
        queue.scan_batch = lambda batch, rescan: (gate.wait(10), scan_batch(batch, rescan))[1]
        assert (
            upload(client, [("a.png", images["real"]), ("b.png", images["fake"])]).status_code
            == 202
        )
        refused = upload(client, [("c.png", images["jpeg"])])
        assert refused.status_code == 429 and refused.headers["Retry-After"] == "5"
        gate.set()


def test_unsupported_content_type_and_empty_form(client):
    assert (
        client.post("/v1/scan", content=b"x", headers={"Content-Type": "text/plain"}).status_code
        == 415
    )
    empty = client.post("/v1/scan", data={"note": "no file"}, files=[])
    assert empty.status_code in {415, 422}


def test_server_side_paths(tmp_path, model, images):
    allowed = tmp_path / "allowed"
    (allowed / "sub").mkdir(parents=True)
    (allowed / "sub" / "a.png").write_bytes(images["real"])
    (allowed / "b.jpg").write_bytes(images["jpeg"])
    outside = tmp_path / "outside.png"
    outside.write_bytes(images["fake"])
    (allowed / "link.png").symlink_to(outside)
    with make_client(tmp_path, model) as client:
        disabled = client.post("/v1/scan", json={"paths": [str(allowed)]})
        assert disabled.status_code == 403
    with make_client(tmp_path / "2", model, allowed_path_roots=[allowed]) as client:
        rows = client.post("/v1/scan", json={"paths": [str(allowed)]}).json()["results"]
        # The symlink that leads out of the allowed folder is not followed.
        assert sorted(Path(row["path"]).name for row in rows) == ["a.png", "b.jpg"]
        assert all(row["error"] is None for row in rows)
        assert client.post("/v1/scan", json={"paths": [str(outside)]}).status_code == 403
        sneaky = client.post("/v1/scan", json={"paths": [f"{allowed}/../outside.png"]})
        assert sneaky.status_code == 403
        assert client.post("/v1/scan", json={"paths": []}).status_code == 422


def test_report_and_views(client, images):
    row = upload(client, [("fake.png", images["fake"])]).json()["results"][0]
    base = f"/v1/results/{row['sha256']}"
    report = client.get(f"{base}/report").json()
    assert report["media"] == "image" and report["thresholds"]["name"] == "spectral-default"
    assert report["explanation"][0].startswith(
        {"fake": "Likely", "uncertain": "Worth", "real": "No trace"}[row["verdict"]]
    )
    assert [overlay["kind"] for overlay in report["overlays"]] == ["residual"]
    assert report["seen_as"] == ["upload:fake.png"]
    for view in ("original.png", "residual.png"):
        response = client.get(f"{base}/{view}")
        assert response.status_code == 200 and response.content.startswith(b"\x89PNG")
        with Image.open(io.BytesIO(response.content)) as image:
            assert image.size == (256, 256)
    spectrum = client.get(f"{base}/spectrum").json()
    assert len(spectrum["frequency"]) == len(spectrum["log_magnitude"]) > 10
    assert spectrum["frequency"][-1] == 1.0 and set(spectrum["bands"]) == {"low", "mid", "high"}
    # No localization detector yet: the localization view is absent, not faked.
    assert client.get(f"{base}/localization.png").status_code == 404


def test_edits_are_localized_on_demand_and_remembered(tmp_path, model):
    localizer = BrightLocalizer()
    pixels = np.zeros((48, 64, 3), np.uint8)
    pixels[:, 40:] = 255  # a bright strip on the right: the "edit"
    with make_client(tmp_path, model, edit_localizer=localizer) as client:
        row = upload(client, [("strip.png", png_bytes(pixels))]).json()["results"][0]
        base = f"/v1/results/{row['sha256']}"
        report = client.get(f"{base}/report").json()
        assert [overlay["kind"] for overlay in report["overlays"]] == ["edits", "residual"]
        assert "test-bright" in report["overlays"][0]["caption"]
        assert localizer.calls == 0  # listing the overlay computes nothing
        edits = client.get(f"{base}/edits")
        assert edits.status_code == 200, edits.text
        body = edits.json()
        assert body["method"] == body["localizer"] == "test-bright"
        assert body["manipulated"] is True
        assert body["tampered_fraction"] == pytest.approx(24 / 64)
        assert (body["height"], body["width"]) == (48, 64)
        assert body["overlay_url"] == f"{base}/edits.png"
        overlay = client.get(body["overlay_url"])
        assert overlay.status_code == 200
        with Image.open(io.BytesIO(overlay.content)) as image:
            assert image.mode == "RGBA" and image.size == (64, 48)
            alpha = np.asarray(image)[..., 3]
        assert alpha[:, :30].max() < alpha[:, 45:].min()
        assert localizer.calls == 1  # the PNG reused the remembered localization
        # Not kept on the server: 404, nothing computed.
        assert client.get(f"/v1/results/{'ef' * 32}/edits").status_code == 404
        # An image the localizer refuses: a clear 422, not a 500.
        tiny = upload(client, [("tiny.png", png_bytes(np.zeros((8, 8, 3), np.uint8)))])
        answer = client.get(f"/v1/results/{tiny.json()['results'][0]['sha256']}/edits")
        assert answer.status_code == 422
        assert "cannot be localized" in answer.json()["detail"]


def test_edits_without_a_localizer_are_503_and_no_overlay(tmp_path, model, images):
    with make_client(tmp_path, model, localizer=None) as client:
        row = upload(client, [("real.png", images["real"])]).json()["results"][0]
        base = f"/v1/results/{row['sha256']}"
        assert [o["kind"] for o in client.get(f"{base}/report").json()["overlays"]] == ["residual"]
        answer = client.get(f"{base}/edits")
        assert answer.status_code == 503 and "no localizer" in answer.json()["detail"]
    with make_client(tmp_path, model, localizer="no-such-localizer") as client:
        row = upload(client, [("real.png", images["real"])]).json()["results"][0]
        answer = client.get(f"/v1/results/{row['sha256']}/edits.png")
        assert answer.status_code == 503 and "no-such-localizer" in answer.json()["detail"]


def test_localization_overlay_when_a_result_carries_one(client):
    store: CaseStore = client.app.state.store
    heat = [[0.0, 0.2, 0.9, 1.0]] * 4
    result = ScanResult(
        path="spliced.png",
        sha256="ab" * 32,
        score=0.97,
        verdict="fake",
        detectors={"splice": 0.97},
        evidence={"file": {"width": 40, "height": 20}, "localization": {"heatmap": heat}},
    )
    store.record([(result, Sighting("upload:spliced.png"))], "spectral-default")
    report = client.get(f"/v1/results/{'ab' * 32}/report").json()
    assert report["overlays"][0]["kind"] == "localization"
    assert report["original_url"] is None  # the original was never uploaded here
    response = client.get(report["overlays"][0]["url"])
    assert response.status_code == 200
    with Image.open(io.BytesIO(response.content)) as image:
        assert image.mode == "RGBA" and image.size == (40, 20)
        alpha = np.asarray(image)[..., 3]
    assert alpha[:, 0].max() < alpha[:, -1].min()  # hot on the right, clear on the left


def test_non_finite_numbers_in_evidence_do_not_break_json(client):
    result = ScanResult(
        path="odd.png",
        sha256="cd" * 32,
        score=0.5,
        verdict="uncertain",
        evidence={"weird": float("nan"), "nested": {"inf": float("inf")}},
    )
    client.app.state.store.record([(result, None)], "spectral-default")
    body = client.get(f"/v1/results/{'cd' * 32}").json()
    assert body["evidence"] == {"weird": None, "nested": {"inf": None}}


def test_new_scanresult_fields_flow_through(client, images):
    row = upload(client, [("a.png", images["real"])]).json()["results"][0]
    assert set(row) == set(ScanResult(path="x").to_dict())


def test_openapi_documents_both_request_bodies_and_docs_are_local(client):
    spec = client.get("/openapi.json").json()
    content = spec["paths"]["/v1/scan"]["post"]["requestBody"]["content"]
    assert set(content) == {"multipart/form-data", "application/json"}
    assert {"/v1/health", "/v1/jobs/{job_id}", "/v1/results/{sha256}"} <= set(spec["paths"])
    docs = client.get("/docs").text
    assert "cdn" not in docs.lower() and "/static-offline-docs/swagger-ui-bundle.js" in docs
    assert client.get("/static-offline-docs/swagger-ui-bundle.js").status_code == 200


def test_page_is_served_locally_with_a_strict_policy(client):
    page = client.get("/")
    assert page.status_code == 200 and "text/html" in page.headers["content-type"]
    assert "default-src 'self'" in page.headers["Content-Security-Policy"]
    assert "http://" not in page.text and "https://" not in page.text
    for asset in ("/static/app.js", "/static/style.css"):
        response = client.get(asset)
        assert (
            response.status_code == 200 and response.headers["X-Content-Type-Options"] == "nosniff"
        )


@pytest.mark.parametrize(
    ("client_name", "expected"),
    [
        ("photo.jpg", "photo.jpg"),
        ("../../etc/passwd", "passwd"),
        ("C:\\Users\\x\\img.png", "img.png"),
        ("a/b/\x00\x1bevil.png", "evil.png"),
        ("..", "fallback"),
        ("", "fallback"),
        (None, "fallback"),
    ],
)
def test_display_name(client_name, expected):
    assert display_name(client_name, "fallback") == expected


@pytest.mark.parametrize(
    ("head", "kind"),
    [
        (MP4_HEAD, "video"),
        (b"\x00\x00\x00\x18ftypqt  \x00\x00\x00\x00", "video"),
        (b"\x00\x00\x00\x18ftypheic\x00\x00\x00\x00", "image"),
        (b"\x1a\x45\xdf\xa3\x01\x00\x00\x00", "video"),
        (b"RIFF\x00\x00\x00\x00AVI LIST", "video"),
        (b"RIFF\x00\x00\x00\x00WEBPVP8 ", "image"),
        (b"\x89PNG\r\n\x1a\n", "image"),
        (b"", "image"),
    ],
)
def test_sniff_media_kind(head, kind):
    assert sniff_media_kind(head) == kind


def test_results_land_in_the_case_database(tmp_path, model, images):
    with make_client(tmp_path, model) as client:
        rows = upload(client, [("a.png", images["real"]), ("t.jpg", images["truncated"])]).json()
    store = CaseStore(tmp_path / "cases.sqlite")
    stored = {row["sha256"]: store.get(row["sha256"]) for row in rows["results"]}
    assert all(item is not None for item in stored.values())
    assert {item.result.path for item in stored.values()} == {"a.png", "t.jpg"}
    assert json.loads(json.dumps(stored[rows["results"][0]["sha256"]].result.to_dict()))


def test_edits_availability_does_not_wait_for_a_running_localization() -> None:
    from fakescope.server.localizing import OnDemandLocalizer

    started, release = threading.Event(), threading.Event()

    class SlowLocalizer(BrightLocalizer):
        def predict_heatmap(self, image: np.ndarray, *, jpeg_quantization: Any = None) -> Any:
            started.set()
            release.wait(10)
            return super().predict_heatmap(image)

    edits = OnDemandLocalizer(None, SlowLocalizer())
    worker = threading.Thread(
        target=edits.localize,
        args=("a" * 64, lambda: decode_image_bytes(png_bytes(np.zeros((32, 32, 3), np.uint8)))),
    )
    worker.start()
    assert started.wait(10)
    began = time.monotonic()
    assert edits.unavailable_reason() is None
    assert time.monotonic() - began < 1.0
    release.set()
    worker.join(10)
    assert OnDemandLocalizer(None).unavailable_reason() is not None


def test_edits_pass_the_uploads_jpeg_tables_and_decode_once(tmp_path, model, images):
    seen: list[bool] = []

    class TablesLocalizer(BrightLocalizer):
        def predict_heatmap(self, image: np.ndarray, *, jpeg_quantization: Any = None) -> Any:
            seen.append(jpeg_quantization is not None)
            return super().predict_heatmap(image)

    with make_client(tmp_path, model, edit_localizer=TablesLocalizer()) as client:
        row = upload(client, [("photo.jpg", images["jpeg"])]).json()["results"][0]
        base = f"/v1/results/{row['sha256']}"
        assert client.get(f"{base}/edits").status_code == 200
        assert client.get(f"{base}/edits.png").status_code == 200
    assert seen == [True]  # the JPEG's tables reached the localizer, and only one pass ran
