"""The notebooks open in JupyterLab and their widgets render (headless Chromium)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.browser import CHROMIUM, FLAGS, free_port, require_browser, wait_until_serving
from tests.conftest import REPO

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def lab_url(smplx_dir: Path, tmp_path_factory: pytest.TempPathFactory):
    require_browser()
    port = free_port()
    work = tmp_path_factory.mktemp("lab")
    # a copy: JupyterLab autosaves executed notebooks, and the repository keeps them stripped
    shutil.copytree(REPO / "notebooks", work / "notebooks")
    env = dict(os.environ, RERUN_NOTEBOOK_ASSET="inline", HUMAN3R_SMPLX_DIR=str(smplx_dir),
               JUPYTER_RUNTIME_DIR=str(work / "runtime"), PYTHONPATH=str(REPO))
    env.pop("HUMAN3R_MODEL", None)
    proc = subprocess.Popen(
        [sys.executable, "-m", "jupyterlab", str(work / "notebooks"), "--no-browser", "--allow-root", f"--port={port}",
         "--ServerApp.ip=127.0.0.1", "--ServerApp.token=", "--ServerApp.password=", "--LabApp.news_url=",
         "--LabApp.expose_app_in_browser=True"],
        cwd=work, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}/lab"
    wait_until_serving(url, proc, 90, "JupyterLab")
    yield url
    proc.terminate()
    proc.wait(timeout=30)


def test_detection_notebook_runs_in_jupyterlab_with_its_slider(lab_url: str) -> None:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        page.goto(f"{lab_url}/tree/01_detection_tokens.ipynb", wait_until="load", timeout=60_000)
        page.wait_for_selector(".jp-Notebook", timeout=60_000)
        # the kernel must be up before running, or the request is lost
        page.wait_for_function("document.body.innerText.includes('Python 3 (ipykernel) | Idle')", timeout=90_000)
        page.evaluate("window.jupyterapp.commands.execute('notebook:run-all-cells')")
        try:
            page.wait_for_selector(".widget-slider", timeout=120_000)  # ipywidgets rendered by the lab manager
        finally:
            page.screenshot(path=str(REPO / "artifacts" / "jupyterlab_01.png"))
        # every figure is a static PNG (7 figure cells), plus the one the slider draws inside its widget
        page.wait_for_function("document.querySelectorAll('.jp-OutputArea-output img').length >= 8", timeout=120_000)
        interact = page.locator(".widget-interact").first
        # text_content, not inner_text: the lab does not lay out cells far from the viewport
        assert "threshold" in interact.text_content()
        assert interact.locator("img").count() >= 1  # the live figure, redrawn by the slider
        assert page.locator(".jp-OutputArea-output[data-mime-type='application/vnd.jupyter.stderr'] .ansi-red-fg").count() == 0
        browser.close()
