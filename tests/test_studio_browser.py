"""End to end in a real headless Chromium: load the served studio, generate, see it drawn, offline.

Serves the studio with `panel serve` on 127.0.0.1 and drives Debian's chromium through
Playwright. Screenshots go to `artifacts/` (gitignored; CI keeps them).
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import numpy as np
import pytest

from tests.studio_fakes import make_assets

ROOT = Path(__file__).resolve().parents[1]
ARTIFACTS = ROOT / "artifacts"
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--use-gl=angle", "--use-angle=swiftshader", "--enable-unsafe-swiftshader",
                 "--ignore-gpu-blocklist", "--no-sandbox"]
GEN_RGB = (0xD6, 0x27, 0x28)  # studio.plots.GEN_COLOR

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not CHROMIUM.exists(), reason="needs Debian's chromium at /usr/bin/chromium "
                       "(apt-get install chromium; scripts/test.sh installs it)"),
]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """A studio served on 127.0.0.1 with a fake-backed a-Si checkpoint; yields its URL."""
    assets = make_assets(tmp_path_factory.mktemp("studio") / "assets")
    port = _free_port()
    cmd = [sys.executable, "-m", "panel", "serve", "tests/studio_fake_app.py", "--address", "127.0.0.1",
           "--port", str(port), "--static-dirs", "studio/static=studio/static",
           "--allow-websocket-origin", f"127.0.0.1:{port}"]
    env = {**os.environ, "AMSHORTCUT_ASSETS": str(assets), "FAKE_STEP_DELAY": "0.01"}
    log = open(tmp_path_factory.mktemp("log") / "panel.log", "w+")
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}/studio_fake_app"
    try:
        for _ in range(120):
            try:
                urllib.request.urlopen(url, timeout=2)
                break
            except OSError:
                if proc.poll() is not None:
                    break
                time.sleep(0.25)
        else:
            pytest.fail("panel serve did not answer within 30 s")
        if proc.poll() is not None:
            log.seek(0)
            pytest.fail(f"panel serve exited:\n{log.read()}")
        yield url
    finally:
        proc.terminate()
        proc.wait(10)
        log.close()


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield b
        b.close()


def _png(data: bytes) -> np.ndarray:
    import io

    from PIL import Image

    return np.asarray(Image.open(io.BytesIO(data)).convert("RGB")).astype(int)


def _drawn_fraction(img: np.ndarray) -> float:
    """Fraction of pixels that differ from the top-left corner pixel (the background)."""
    return float((np.abs(img - img[0, 0]).sum(axis=2) > 30).mean())


def _gen_color_pixels(img: np.ndarray) -> int:
    return int((np.abs(img - np.array(GEN_RGB)).sum(axis=2) < 40).sum())


def test_generate_draws_structure_and_overlays_offline(server, browser):
    ARTIFACTS.mkdir(exist_ok=True)
    external = []
    page = browser.new_page(viewport={"width": 1400, "height": 1100})
    page.on("request", lambda r: external.append(r.url)
            if not r.url.startswith(("http://127.0.0.1", "data:", "blob:")) else None)
    page.goto(server)
    page.wait_for_selector(".generate button", timeout=30_000)
    rdf = page.locator(".rdf-plot").first
    rdf.wait_for(timeout=20_000)
    page.wait_for_timeout(500)
    before = _png(rdf.screenshot())
    assert _gen_color_pixels(before) == 0, "RDF shows a generated curve before generating"
    page.screenshot(path=str(ARTIFACTS / "studio_loaded.png"))

    # Condition on a property: tick the box beside its label (Panel draws them as siblings).
    label = page.get_by_text("ring_size_mean (training data")
    label.evaluate("e => e.previousElementSibling.click()")
    assert label.evaluate("e => e.previousElementSibling.checked")
    page.get_by_role("button", name="1", exact=True).click()  # 1 sampling step
    page.locator(".generate button").click()

    page.wait_for_selector(".run-info", timeout=30_000)
    page.wait_for_selector(".ngl-view[data-natoms='64']", timeout=30_000)
    page.wait_for_timeout(1500)  # let NGL finish its first frames
    canvas = page.locator(".ngl-view canvas").first
    view = _png(canvas.screenshot(path=str(ARTIFACTS / "studio_ngl_canvas.png")))
    assert _drawn_fraction(view) > 0.03, "the NGL canvas is blank"

    after = _png(rdf.screenshot(path=str(ARTIFACTS / "studio_rdf.png")))
    assert _gen_color_pixels(after) > 200, "the RDF overlay has no generated curve"
    table = page.locator("table").first.inner_text()
    assert "ring_size_mean target" in table  # the toggle reached the server
    page.screenshot(path=str(ARTIFACTS / "studio_generated.png"), full_page=True)

    # A second browser session starts from scratch: sessions do not share results.
    other = browser.new_page()
    other.on("request", lambda r: external.append(r.url)
             if not r.url.startswith(("http://127.0.0.1", "data:", "blob:")) else None)
    other.goto(server)
    other.wait_for_selector(".generate button", timeout=30_000)
    assert "No structures yet" in other.get_by_text("No structures yet").first.inner_text()
    other.close()
    page.close()
    assert external == [], f"requests left 127.0.0.1: {external}"
