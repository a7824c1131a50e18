"""The real app in headless Chromium: offline start, tiny-random, a bad upload, a full run.

Needs Debian's chromium (apt-get install chromium); Playwright drives it through
executable_path, never its own browser download.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.browser import CHROMIUM, FLAGS, free_port, require_browser, wait_until_serving
from tests.conftest import REPO

ARTIFACTS = REPO / "artifacts"

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def app_url(smplx_dir: Path, tmp_path_factory: pytest.TempPathFactory):
    require_browser()
    port = free_port()
    hf_home = tmp_path_factory.mktemp("hf_empty")
    env = dict(os.environ, GRADIO_SERVER_PORT=str(port), HF_HUB_OFFLINE="1", HF_HOME=str(hf_home),
               HUMAN3R_SMPLX_DIR=str(smplx_dir), GRADIO_ANALYTICS_ENABLED="False")
    env.pop("HUMAN3R_MODEL", None)  # the default (human3r_672S), whose weights are not available here
    log = open(tmp_path_factory.mktemp("applog") / "app.log", "w")
    proc = subprocess.Popen([sys.executable, "app.py"], cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}/"
    wait_until_serving(url, proc, 120, f"the app (log: {log.name})")
    yield url
    proc.terminate()
    proc.wait(timeout=30)
    log.close()


def test_the_app_streams_a_reconstruction_into_rerun(app_url: str, tmp_path: Path) -> None:
    from playwright.sync_api import sync_playwright

    ARTIFACTS.mkdir(exist_ok=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        page = browser.new_page(viewport={"width": 1500, "height": 1000})
        ready = []
        page.on("console", lambda m: ready.append(m.text) if "Rerun viewer ready" in m.text else None)
        page.goto(app_url, wait_until="load", timeout=60_000)
        page.wait_for_selector("#h3r-banner", timeout=30_000)

        # the default model's weights cannot be had offline: the app says so and offers tiny-random
        banner = page.inner_text("#h3r-banner")
        assert "hub is offline" in banner and "tiny-random" in banner

        model = page.locator("#h3r-model input")
        model.click()
        model.fill("tiny-random")
        page.keyboard.press("Enter")
        page.wait_for_function("document.querySelector('#h3r-banner').innerText.includes('untrained model')", timeout=20_000)

        upload = page.locator("#h3r-video input[type=file]")
        # a text file named .mp4: a clear error, and the app keeps serving
        fake = tmp_path / "not_a_video.mp4"
        fake.write_text("this is not a video")
        upload.set_input_files(str(fake))
        page.wait_for_timeout(1000)
        page.click("#h3r-run")
        page.wait_for_function("document.querySelector('#h3r-status').innerText.includes('Error')", timeout=60_000)
        assert "not_a_video.mp4 is not a readable video" in page.inner_text("#h3r-status")

        page.locator("#h3r-video button[aria-label='Clear']").first.click()  # remove the bad upload
        page.get_by_text("Options", exact=True).click()  # ask for the rendered video
        render = page.locator("#h3r-render-video input")
        render.click()
        render.fill("side-by-side")
        page.keyboard.press("Enter")
        upload.set_input_files(str(REPO / "data" / "examples" / "synthetic_shapes.mp4"))
        page.wait_for_timeout(1000)
        page.click("#h3r-run")
        seen_partial = False
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:
            status = page.inner_text("#h3r-status")
            seen_partial |= "Frame " in status and " of 12" in status
            if status.startswith("Done"):
                break
            page.wait_for_timeout(250)
        assert status.startswith("Done: 12 frame(s)"), status
        assert seen_partial, "the status line never reported frame progress"

        # the viewer is there and rendering
        page.wait_for_function("!!document.querySelector('#h3r-viewer canvas')", timeout=30_000)
        deadline = time.monotonic() + 30
        while not ready and time.monotonic() < deadline:
            page.wait_for_timeout(500)
        assert ready, "the Rerun viewer never reported ready"

        # downloads are offered and not empty
        links = page.locator("#h3r-downloads a[download], #h3r-downloads a[href*='file=']")
        hrefs = {links.nth(i).get_attribute("href") for i in range(links.count())}
        names = page.inner_text("#h3r-downloads").replace("\n", "")  # the page shows "run" and ".glb" apart
        for name in ("recording.rrd", "smplx_tracks.zip", "scene.ply", "cameras_tum.txt", "people.glb", "run.glb", "overlay.mp4"):
            assert name in names, names
        assert len(hrefs) >= 7
        # the rendered video plays in the page
        page.wait_for_selector("#h3r-video-player video", timeout=30_000)
        assert page.eval_on_selector("#h3r-video-player video", "v => v.src").endswith("overlay.mp4")
        for href in hrefs:
            response = page.request.get(href if href.startswith("http") else app_url.rstrip("/") + href)
            assert response.ok and len(response.body()) > 0, href
        page.wait_for_timeout(6000)  # let the viewer draw the last frames
        page.screenshot(path=str(ARTIFACTS / "app_screenshot.png"), full_page=True)
        browser.close()


def test_the_live_tab_reconstructs_the_camera(app_url: str, tmp_path: Path) -> None:
    from playwright.sync_api import sync_playwright

    from tests.conftest import synthetic_clip
    from tests.media import write_y4m

    ARTIFACTS.mkdir(exist_ok=True)
    clip = write_y4m(tmp_path / "camera.y4m", synthetic_clip(30, 240, 320, seed=2))
    camera_flags = ["--use-fake-device-for-media-stream", "--use-fake-ui-for-media-stream",
                    f"--use-file-for-fake-video-capture={clip}"]
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=[*FLAGS, *camera_flags])
        context = browser.new_context(viewport={"width": 1500, "height": 1000}, permissions=["camera"])
        page = context.new_page()
        ready = []
        page.on("console", lambda m: ready.append(m.text) if "Rerun viewer ready" in m.text else None)
        page.goto(app_url, wait_until="load", timeout=60_000)
        page.wait_for_selector("#h3r-banner", timeout=30_000)
        model = page.locator("#h3r-model input")
        model.click()
        model.fill("tiny-random")
        page.keyboard.press("Enter")
        page.wait_for_function("document.querySelector('#h3r-banner').innerText.includes('untrained model')", timeout=20_000)

        page.get_by_role("tab", name="Live").click()
        assert "tiny-random reconstructs about" in page.inner_text("#h3r-live-note")  # the rate to expect, said plainly
        page.get_by_text("Click to Access Webcam").click()
        page.locator("#h3r-camera").get_by_text("Record").click()  # the browser starts sending camera frames
        page.click("#h3r-live-start")

        def processed() -> int:
            found = re.search(r"(\d+) processed", page.inner_text("#h3r-live-status"))
            return int(found.group(1)) if found else 0

        counts, deadline = [], time.monotonic() + 180
        while time.monotonic() < deadline and processed() < 8:
            counts.append(processed())
            page.wait_for_timeout(500)
        status = page.inner_text("#h3r-live-status")
        assert processed() >= 8, status
        assert len(set(counts)) >= 3, counts  # the count rose while we watched
        assert "dropped" in status and "latency" in status and "people tracked" in status

        page.wait_for_function("!!document.querySelector('#h3r-viewer canvas')", timeout=30_000)
        deadline = time.monotonic() + 30
        while not ready and time.monotonic() < deadline:
            page.wait_for_timeout(500)
        assert ready, "the Rerun viewer never reported ready"
        page.wait_for_timeout(3000)  # let the viewer draw
        page.screenshot(path=str(ARTIFACTS / "app_live_screenshot.png"), full_page=True)

        page.click("#h3r-live-stop")
        page.wait_for_function("document.querySelector('#h3r-live-status').innerText.includes('Live:')", timeout=120_000)
        assert page.inner_text("#h3r-live-status").startswith("Stopped")
        names = page.inner_text("#h3r-live-downloads").replace("\n", "")
        for name in ("recording.rrd", "run.glb", "cameras_tum.txt", "summary.json"):
            assert name in names, names
        links = page.locator("#h3r-live-downloads a[download], #h3r-live-downloads a[href*='file=']")
        hrefs = {links.nth(i).get_attribute("href") for i in range(links.count())}
        assert len(hrefs) >= 4
        for href in hrefs:
            response = page.request.get(href if href.startswith("http") else app_url.rstrip("/") + href)
            assert response.ok and len(response.body()) > 0, href
        browser.close()
