"""The web page in headless Chromium: upload, see the verdict, the overlay and the spectrum.

Drives Debian's ``chromium`` through Playwright (``executable_path``: Playwright never downloads
a browser here). Skips, saying why, when Playwright or a Chromium binary is missing. The
screenshot goes to the test's temporary folder and is also copied to /tmp/fakescope-e2e.png for
a person to look at.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

pytest.importorskip("fastapi")
pytest.importorskip("uvicorn")
sync_api = pytest.importorskip("playwright.sync_api")

import uvicorn  # noqa: E402

from fakescope.server import ServerSettings, create_app  # noqa: E402
from tests.conftest import BrightLocalizer  # noqa: E402

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
SCREENSHOT_COPY = Path("/tmp/fakescope-e2e.png")
CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")


def chromium_binary() -> str | None:
    configured = os.environ.get("FAKESCOPE_CHROMIUM")
    if configured:
        return configured if os.access(configured, os.X_OK) else None
    for name in CHROMIUM_NAMES:
        found = shutil.which(name)
        if found:
            return found
    return None


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture(scope="module")
def server_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    root = tmp_path_factory.mktemp("e2e-server")
    settings = ServerSettings(db=str(root / "cases.sqlite"), workdir=root / "work", workers=1)
    port = free_port()
    # A stand-in localizer (heat = brightness): the page's edits overlay without torch.
    app = create_app(settings, localizer=BrightLocalizer())
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            pytest.fail("the server did not start")
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(10)


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    binary = chromium_binary()
    if binary is None:
        pytest.skip(
            "no Chromium binary (apt-get install chromium, or set FAKESCOPE_CHROMIUM): "
            "the page's end-to-end test needs one"
        )
    with sync_api.sync_playwright() as playwright:
        # --no-sandbox: CI runs as root, where Chromium's sandbox refuses to start.
        launched = playwright.chromium.launch(
            executable_path=binary, headless=True, args=["--no-sandbox", "--disable-gpu"]
        )
        yield launched
        launched.close()


def test_upload_shows_verdict_overlay_spectrum_and_evidence(server_url, browser, tmp_path):
    page = browser.new_page(viewport={"width": 1280, "height": 1400})
    console_errors: list[str] = []
    page.on(
        "console", lambda message: message.type == "error" and console_errors.append(message.text)
    )
    page.goto(server_url + "/")

    # Every form control has a label a screen reader can read.
    unlabelled = page.evaluate(
        """() => [...document.querySelectorAll('input, meter')]
            .filter((e) => e.type !== 'radio' && !(e.labels && e.labels.length)
                     && !e.getAttribute('aria-label') && !e.getAttribute('aria-labelledby'))
            .map((e) => e.id)"""
    )
    assert unlabelled == []

    page.set_input_files("#file-input", str(EXAMPLES / "fake-ae-pixelshuffle-skimage-coffee.png"))
    verdict = page.locator("#verdict")
    sync_api.expect(verdict).to_have_text("Likely AI-generated or manipulated", timeout=20_000)
    sync_api.expect(page.locator("#explanation li").first).to_contain_text("decision threshold")
    sync_api.expect(page.locator("#detectors-table tbody tr")).to_have_count(1)

    # The overlay: the original and the residual view, both decoded by the browser.
    sync_api.expect(page.locator("#compare")).to_be_visible()
    page.wait_for_function(
        """() => ['compare-before', 'compare-after'].every((id) => {
                const img = document.getElementById(id);
                return img.complete && img.naturalWidth === 256;
            })""",
        timeout=10_000,
    )
    # First the edited regions the server's localizer finds, then the residual view.
    sync_api.expect(page.locator("#overlay-caption")).to_contain_text("edited regions")
    sync_api.expect(page.locator("#overlay-choice label")).to_have_text(
        ["Edited regions", "Residual view"]
    )
    page.locator("#overlay-choice label", has_text="Residual view").click()
    sync_api.expect(page.locator("#overlay-caption")).to_contain_text("Residual view")

    # The slider works from the keyboard and moves the overlay's edge.
    slider = page.locator("#compare-slider")
    slider.focus()
    for _ in range(20):
        page.keyboard.press("ArrowLeft")
    clip = page.eval_on_selector("#compare-after-clip", "e => e.style.clipPath")
    assert clip == "inset(0px 0px 0px 30%)"

    # Spectrum drawn as inline SVG with a text description; evidence panel filled.
    sync_api.expect(page.locator("#spectrum-plot svg polyline")).to_have_count(1)
    description = page.locator("#spectrum-plot desc").text_content() or ""
    assert "Mean per band" in description
    sync_api.expect(page.locator("#evidence details").first).to_be_visible()

    # A second file, dropped on the zone, joins the list; selecting it by keyboard works.
    data_transfer = page.evaluate_handle(
        """async (bytes) => {
            const transfer = new DataTransfer();
            const data = new Uint8Array(bytes);
            transfer.items.add(new File([data], 'dropped.png', { type: 'image/png' }));
            return transfer;
        }""",
        list((EXAMPLES / "real-skimage-coffee.png").read_bytes()),
    )
    page.dispatch_event("#drop-zone", "drop", {"dataTransfer": data_transfer})
    sync_api.expect(page.locator("#results li")).to_have_count(2, timeout=20_000)
    sync_api.expect(page.locator("#file-name")).to_have_text("dropped.png", timeout=10_000)
    sync_api.expect(verdict).to_have_text("No AI traces found")
    # Selecting the dropped file ends by moving focus to the details panel once its report is
    # drawn; wait for that, or it can take the focus away from the button pressed next.
    sync_api.expect(page.locator("#details")).to_be_focused(timeout=10_000)
    page.locator("#results button", has_text="pixelshuffle").focus()
    page.keyboard.press("Enter")
    sync_api.expect(verdict).to_have_text("Likely AI-generated or manipulated", timeout=10_000)
    page.wait_for_function(
        "() => document.getElementById('compare-after').naturalWidth === 256", timeout=10_000
    )
    page.locator("#compare-slider").fill("50")
    page.locator("#compare-slider").dispatch_event("input")

    screenshot = tmp_path / "fakescope-page.png"
    page.screenshot(path=str(screenshot), full_page=True)
    assert screenshot.stat().st_size > 10_000
    # The copy is a convenience for a person; the test's own file is what counts.
    with contextlib.suppress(OSError):
        shutil.copyfile(screenshot, SCREENSHOT_COPY)
    assert console_errors == []
    page.close()


def write_test_video(path: Path) -> None:
    """24 frames at 8 fps, lossless H.264: the bundled model's real example, then its generated
    example for frames 8-15 (1.0 to 2.0 s), then the real one again."""
    av = pytest.importorskip("av")
    import numpy as np
    from PIL import Image

    real = np.asarray(Image.open(EXAMPLES / "real-skimage-coffee.png").convert("RGB"))
    fake = np.asarray(
        Image.open(EXAMPLES / "fake-ae-pixelshuffle-skimage-coffee.png").convert("RGB")
    )
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=8)
        stream.width, stream.height, stream.pix_fmt = 256, 256, "yuv420p"
        stream.options = {"crf": "0"}  # lossless: compression would wash out the traces
        for index in range(24):
            pixels = fake if 8 <= index < 16 else real
            for packet in stream.encode(av.VideoFrame.from_ndarray(pixels, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)


def test_video_upload_shows_the_timeline_with_its_suspicious_segment(server_url, browser, tmp_path):
    video = tmp_path / "interview.mp4"
    write_test_video(video)
    page = browser.new_page(viewport={"width": 1280, "height": 1300})
    page.goto(server_url + "/")
    page.set_input_files("#file-input", str(video))
    sync_api.expect(page.locator("#file-name")).to_have_text("interview.mp4", timeout=30_000)
    sync_api.expect(page.locator("#verdict")).to_have_text("Likely AI-generated or manipulated")
    sync_api.expect(page.locator("#timeline-panel")).to_be_visible()
    # One shaded span for the segment, one dot per sampled frame, the threshold line.
    sync_api.expect(page.locator("#timeline-plot svg rect")).to_have_count(1)
    sync_api.expect(page.locator("#timeline-plot svg circle")).to_have_count(24)
    sync_api.expect(page.locator("#segments li")).to_have_text(
        [re.compile(r"^Suspicious: 1\.0 s to 2\.0 s, peak score 9\d\.\d %$")]
    )
    assert "threshold" in (page.locator("#timeline-plot svg").text_content() or "")
    sync_api.expect(page.locator("#overlay-caption")).to_contain_text("frame by frame")
    sync_api.expect(page.locator("#spectrum-panel")).to_be_hidden()
    screenshot = tmp_path / "fakescope-video.png"
    page.screenshot(path=str(screenshot), full_page=True)
    with contextlib.suppress(OSError):
        shutil.copyfile(screenshot, SCREENSHOT_COPY.with_name("fakescope-e2e-video.png"))
    page.close()
