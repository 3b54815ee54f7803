"""Screenshot of the served studio after one generation or the paper's comparison (README, checks).

    python -m studio.screenshot docs/studio.png --compare --samples 4     # the README's
    python -m studio.screenshot out.png --system a-Si --steps 1 --samples 8

Serves `studio` with `panel serve` on 127.0.0.1, opens it in Debian's headless chromium
(Playwright, software WebGL), generates, waits until NGL has drawn the structure and saves
the page. Needs `/usr/bin/chromium` and the `playwright` package (test extra).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--use-gl=angle", "--use-angle=swiftshader", "--enable-unsafe-swiftshader",
                 "--ignore-gpu-blocklist", "--no-sandbox"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def serve_studio(assets: Path | None = None, timeout: float = 120.0):
    """Run `panel serve studio` (console script, as scripts/studio.sh) and yield the page URL.

    Readiness is polled on panel's /liveness endpoint, not on the page: every request of the
    page builds a whole studio session, and on a busy machine a poll loop of page requests
    piles sessions up. `assets` sets AMSHORTCUT_ASSETS for the server; the log is printed if
    it fails to start.
    """
    port = free_port()
    cmd = [str(Path(sys.executable).parent / "panel"), "serve", "studio", "--address", "127.0.0.1",
           "--port", str(port), "--allow-websocket-origin", f"127.0.0.1:{port}", "--liveness"]
    env = dict(os.environ)
    if assets is not None:
        env["AMSHORTCUT_ASSETS"] = str(assets)
    url = f"http://127.0.0.1:{port}/studio"
    alive = f"http://127.0.0.1:{port}/liveness"
    with tempfile.TemporaryFile("w+") as log:
        proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
        try:
            deadline = time.time() + timeout
            while True:
                try:
                    urllib.request.urlopen(alive, timeout=5)
                    break
                except OSError:
                    if proc.poll() is not None or time.time() > deadline:
                        log.seek(0)
                        raise RuntimeError(f"panel serve studio did not start:\n{log.read()}") from None
                    time.sleep(0.25)
            yield url
        finally:
            proc.terminate()
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()


def launch_chromium(playwright):
    """Headless Debian chromium with software WebGL (see shared NOTES)."""
    return playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)


def capture(out: Path, system: str = "a-Si", steps: int = 1, samples: int = 8, assets: Path | None = None,
            compare: bool = False) -> Path:
    """Serve, generate `samples` structures of `system` in `steps` steps, save the page as PNG.

    With `compare`, first click "Reproduce the paper's comparison" and save the Compare tab
    once its three runs are in (then the generation itself is the 1-step run's structures)."""
    from playwright.sync_api import sync_playwright

    with serve_studio(assets) as url, sync_playwright() as p:
        browser = launch_chromium(p)
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        page.goto(url)
        page.wait_for_selector(".generate button", timeout=180_000)
        page.locator("select").first.select_option(system)
        page.get_by_role("button", name=str(steps), exact=True).click()
        box = page.locator(".n-samples input")
        box.fill(str(samples))
        box.press("Enter")
        if compare:
            page.locator(".bk-tab").filter(has_text="Compare").first.click()
            page.locator(".reproduce button").click()
            page.wait_for_selector(".compare-table, .task-error", timeout=1_200_000)
            _fail_on_task_error(page)
            page.wait_for_timeout(2000)
            out.parent.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(out), full_page=True)
            browser.close()
            return out
        page.locator(".generate button").click()
        page.wait_for_selector(".run-info, .task-error", timeout=600_000)  # generated and measured
        _fail_on_task_error(page)
        page.wait_for_selector(".ngl-view[data-natoms]:not([data-natoms='0'])", timeout=600_000)
        page.wait_for_timeout(1500)
        out.parent.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(out), full_page=True)
        browser.close()
    return out


def _fail_on_task_error(page) -> None:
    if page.locator(".task-error").count():
        raise RuntimeError("generation failed in the page: " + page.locator(".task-error").first.inner_text())


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out", type=Path)
    ap.add_argument("--system", default="a-Si")
    ap.add_argument("--steps", type=int, default=1)
    ap.add_argument("--samples", type=int, default=8)
    ap.add_argument("--assets", type=Path, default=None, help="assets tree (default: the shipped one)")
    ap.add_argument("--compare", action="store_true", help="save the Compare tab after the paper's comparison")
    a = ap.parse_args(argv)
    print(capture(a.out, a.system, a.steps, a.samples, a.assets, a.compare))


if __name__ == "__main__":
    main()
