"""End to end in a real headless Chromium: load the served studio, generate, see it drawn, offline.

Serves the studio with `panel serve` on 127.0.0.1 and drives Debian's chromium through
Playwright. Screenshots go to `artifacts/` (gitignored; CI keeps them).
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import ase.io
import numpy as np
import pytest

from studio.screenshot import CHROMIUM, launch_chromium, serve_studio
from tests.studio_fakes import make_assets, make_tiny_checkpoint

ROOT = Path(__file__).resolve().parents[1]
ARTIFACTS = ROOT / "artifacts"
GEN_RGB = (0xD6, 0x27, 0x28)  # studio.plots.GEN_COLOR

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not CHROMIUM.exists(), reason="needs Debian's chromium at /usr/bin/chromium "
                       "(apt-get install chromium; scripts/test.sh installs it)"),
]


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """`panel serve studio` (the real directory app and core backend) with untrained a-Si
    AMShortcut and Material SDE checkpoints and no a-SiO2 one; yields the page URL."""
    assets = make_assets(tmp_path_factory.mktemp("studio") / "assets", properties={})
    shutil.rmtree(assets / "checkpoints")
    make_tiny_checkpoint(assets)
    make_tiny_checkpoint(assets, framework="sde")
    with serve_studio(assets) as url:
        yield url


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = launch_chromium(p)
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


def _record_external(page, external):
    """Collect every request that leaves 127.0.0.1, and every JavaScript error, into `external`."""
    page.on("request", lambda r: external.append(r.url)
            if not r.url.startswith(("http://127.0.0.1", "data:", "blob:")) else None)
    page.on("pageerror", lambda e: external.append(f"JS error: {e}"))
    page.on("console", lambda m: external.append(f"console error: {m.text}") if m.type == "error" else None)


def _open(browser, server, external=None):
    """A new page of the studio, ready to generate; requests leaving 127.0.0.1 and JavaScript
    errors go into ``external`` when given."""
    page = browser.new_page(viewport={"width": 1400, "height": 1100})
    if external is not None:
        _record_external(page, external)
    page.goto(server)
    page.wait_for_selector(".generate button", timeout=30_000)
    return page


def _table_rows(page) -> int:
    return page.locator(".property-table table").first.locator("tbody tr").count()


def _await_task(page, done: str, what: str, timeout: int = 60_000):
    """Wait for the task's result (``done``, a CSS selector) or its error box; fail with the page's message."""
    page.wait_for_selector(f"{done}, .task-error", timeout=timeout)
    if page.locator(".task-error").count():
        pytest.fail(f"{what} failed in the page: " + page.locator(".task-error").first.evaluate(
            "e => e.shadowRoot ? e.shadowRoot.textContent : e.textContent"))


def test_generate_draws_structure_and_overlays_offline(server, browser):
    ARTIFACTS.mkdir(exist_ok=True)
    external = []
    page = _open(browser, server, external)
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
    target = page.locator(".target-ring_size_mean input")
    target.fill("8")  # above the training range (5.5 – 7): allowed, flagged as extrapolation
    target.press("Enter")
    page.get_by_text("⚠ extrapolation").wait_for(timeout=10_000)
    warning = page.get_by_text("outside the training data (5.5 – 7): extrapolation")
    warning.wait_for(timeout=10_000)  # the alert column re-renders after the flag: wait, don't race it
    assert warning.count() == 1
    page.get_by_role("button", name="1", exact=True).click()  # 1 sampling step
    page.locator(".grid-power select").select_option(label="finer near the end, t^2")
    page.locator(".guidance select").select_option(label="w = 1")
    page.locator(".relax input").check()  # relax through core (Stillinger–Weber, LAMMPS)
    page.locator(".generate button").click()

    _await_task(page, ".run-info", "generation")
    page.wait_for_selector(".ngl-view[data-natoms]:not([data-natoms='0'])", timeout=60_000)
    page.wait_for_timeout(1500)  # let NGL finish its first frames
    canvas = page.locator(".ngl-view canvas").first
    view = _png(canvas.screenshot(path=str(ARTIFACTS / "studio_ngl_canvas.png")))
    assert _drawn_fraction(view) > 0.03, "the NGL canvas is blank"

    after = _png(rdf.screenshot(path=str(ARTIFACTS / "studio_rdf.png")))
    assert _gen_color_pixels(after) > 200, "the RDF overlay has no generated curve"
    table = page.locator(".property-table table").first.inner_text()
    assert "ring_size_mean target" in table  # the toggle reached the server
    page.screenshot(path=str(ARTIFACTS / "studio_generated.png"), full_page=True)

    with page.expect_download(timeout=20_000) as dl:  # export all structures as extxyz
        page.get_by_text("Export all (.extxyz)").click()
    frames = ase.io.read(dl.value.path(), index=":", format="extxyz")
    assert len(frames) == 4 and all(len(f) > 0 and 0 not in f.numbers for f in frames)
    assert all(f.info["target_ring_size_mean"] == 8.0 and f.info["steps"] == 1 for f in frames)
    assert all(f.info["grid_power"] == 2.0 for f in frames)  # the step-spacing choice reached core
    assert all(f.info["guidance"] == 1.0 for f in frames)  # and the guidance choice
    assert all(f.info["energy_relaxed"] < f.info["energy_unrelaxed"] for f in frames)  # the relaxed set
    page.locator(".relax-report").get_by_text("Relaxation of 4 structures").wait_for(timeout=10_000)
    assert page.locator(".relax-report").get_by_text("energy eV/atom").count() == 1

    # A second session starts empty, generates its own set, and leaves the first one alone.
    assert _table_rows(page) == 4  # default number of samples
    other = _open(browser, server, external)
    assert other.get_by_text("No structures yet").count() == 1
    n_samples = other.locator(".n-samples input")
    n_samples.fill("2")
    n_samples.press("Enter")
    other.locator(".generate button").click()
    other.locator(".run-info").get_by_text("2 structures").wait_for(timeout=30_000)
    # the table re-renders after the run info on a loaded machine: wait for its second row
    other.locator(".property-table table").first.locator("tbody tr").nth(1).wait_for(timeout=30_000)
    assert _table_rows(other) == 2 and _table_rows(page) == 4
    other.close()
    page.close()
    assert external == [], f"requests left 127.0.0.1 or JavaScript failed: {external}"


def test_missing_checkpoint_is_a_message_not_a_crash(server, browser):
    """a-SiO2 and MEG have no checkpoint here: the page says so and Generate is off; ngl.js still loads."""
    from playwright.sync_api import expect

    external = []
    page = _open(browser, server, external)
    page.wait_for_function("() => window.NGL !== undefined", timeout=20_000)  # /studio/static/ngl.js
    for system in ("a-SiO2", "MEG"):
        page.locator("select").first.select_option(system)
        page.get_by_text(f"No trained checkpoint for {system}: Generate is off").wait_for(timeout=10_000)
        expect(page.locator(".generate button")).to_be_disabled(timeout=10_000)
    page.get_by_text("its models condition on youngs_modulus (GPa)").wait_for(timeout=10_000)
    page.screenshot(path=str(ARTIFACTS / "studio_no_checkpoint.png"))
    page.locator("select").first.select_option("a-Si")
    expect(page.locator(".generate button")).to_be_enabled(timeout=10_000)
    page.close()
    assert external == [], f"requests left 127.0.0.1 or JavaScript failed: {external}"


def test_closing_a_page_stops_its_generation(server, browser):
    """A page closed mid-generation stops at its next step, so another session is not kept waiting."""
    import time

    page = _open(browser, server)
    for css, value in ((".n-samples input", "14"), (".cell-size input", "30")):  # ~19k atoms, 250 steps
        page.locator(css).fill(value)
        page.locator(css).press("Enter")
    page.get_by_role("button", name="250", exact=True).click()
    page.locator(".generate button").click()
    page.get_by_text("(step ").wait_for(timeout=30_000)  # sampling has started
    page.close()

    other = _open(browser, server)
    other.get_by_role("button", name="1", exact=True).click()
    t0 = time.perf_counter()
    other.locator(".generate button").click()
    other.wait_for_selector(".run-info", timeout=60_000)
    waited = time.perf_counter() - t0
    other.close()
    assert waited < 10, f"the second session waited {waited:.0f} s for a closed page's generation"


def _tab(page, name):
    page.locator(".bk-tab").filter(has_text=name).first.click()


def _color_pixels(img: np.ndarray, hex_color: str) -> int:
    rgb = np.array([int(hex_color[k:k + 2], 16) for k in (1, 3, 5)])
    return int((np.abs(img - rgb).sum(axis=2) < 40).sum())


def test_compare_view_reproduces_the_papers_comparison(server, browser):
    """One click: AMShortcut 1 and 5 steps and Material SDE 250 steps, overlaid, in one table."""
    from studio.plots import RUN_COLORS

    ARTIFACTS.mkdir(exist_ok=True)
    external = []
    page = _open(browser, server, external)
    box = page.locator(".n-samples input")
    box.fill("2")
    box.press("Enter")
    _tab(page, "Compare")
    page.get_by_text("No runs kept yet").wait_for(timeout=10_000)
    page.locator(".reproduce button").click()
    _await_task(page, ".compare-table", "the comparison", timeout=120_000)
    page.locator(".compare-table").get_by_text("Material SDE · 250 steps").wait_for(timeout=20_000)
    rows = page.locator(".compare-table table tbody tr")
    assert rows.count() == 3
    text = page.locator(".compare-table table").first.text_content()
    for label in ("AMShortcut · 1 step", "AMShortcut · 5 steps", "Material SDE · 250 steps", "RDF RMSD", "seconds"):
        assert label in text
    page.wait_for_timeout(1000)
    rdf = _png(page.locator(".compare-rdf").first.screenshot(path=str(ARTIFACTS / "studio_compare_rdf.png")))
    assert all(_color_pixels(rdf, color) > 100 for color in RUN_COLORS[:3]), "a run's RDF curve is missing"
    page.screenshot(path=str(ARTIFACTS / "studio_compare.png"), full_page=True)
    page.close()
    assert external == [], f"requests left 127.0.0.1 or JavaScript failed: {external}"


def test_system_switch_leaves_no_stale_results(server, browser):
    """After a generation on a-Si, switching to a-SiO2 clears structures, curves, table, status and runs."""
    external = []
    page = _open(browser, server, external)
    page.get_by_role("button", name="1", exact=True).click()
    page.locator(".generate button").click()
    page.wait_for_selector(".run-info", timeout=60_000)
    page.get_by_text(": done").wait_for(timeout=10_000)
    assert _table_rows(page) == 4
    page.locator("select").first.select_option("a-SiO2")
    page.get_by_text("No structures yet").wait_for(timeout=10_000)
    page.get_by_text("No structure yet: set the controls").wait_for(timeout=10_000)  # the 3D area's empty state
    assert page.locator(".run-info").count() == 0 and page.get_by_text(": done").count() == 0
    page.get_by_text("fills after the first generation").wait_for(timeout=10_000)  # the table pane re-rendered
    assert page.locator("table").count() == 0  # no property table left from a-Si
    rdf = _png(page.locator(".rdf-plot").first.screenshot())
    assert _gen_color_pixels(rdf) == 0, "the a-Si curve is still drawn"
    _tab(page, "Compare")
    page.get_by_text("No runs kept yet").wait_for(timeout=10_000)
    page.screenshot(path=str(ARTIFACTS / "studio_system_switch.png"), full_page=True)
    page.close()
    assert external == [], f"requests left 127.0.0.1 or JavaScript failed: {external}"


@pytest.fixture(scope="module")
def li_server(tmp_path_factory):
    """`panel serve studio` with an untrained tiny checkpoint of a Li–Si–O glass ("MEG") conditioned on
    the Li concentration, a property core measures instantly on any structure; yields the page URL."""
    assets = make_assets(tmp_path_factory.mktemp("studio-li") / "assets", properties={})
    shutil.rmtree(assets / "checkpoints")
    make_tiny_checkpoint(assets)
    shutil.copytree(assets / "data" / "a-Si", assets / "data" / "MEG")  # reference curves for the Generate tab
    make_tiny_checkpoint(assets, system="MEG", species=(3, 14, 8),
                         stats={"li_concentration": {"mean": 0.15, "std": 0.05, "min": 0.05, "max": 0.25}})
    with serve_studio(assets) as url:
        yield url


def _point_pixels(img: np.ndarray) -> int:
    """Pixels of the generated points (GEN_COLOR at alpha 0.8 over the white or shaded plot area), counted
    left of the legend and the Bokeh toolbar (whose logo and legend marker are red too)."""
    area = img[:, : int(0.65 * img.shape[1])]
    blend = 0.8 * np.array(GEN_RGB) + 0.2 * 255
    return int((np.abs(area - blend).sum(axis=2) < 60).sum())


def _fill(page, css, value):
    box = page.locator(f"{css} input")
    box.fill(str(value))
    box.press("Enter")


def test_inverse_tab_sweeps_draws_achieved_vs_target_and_cancels(li_server, browser):
    """Smallest sweep (2 targets x 1 structure, 1 step): plot points and a table row per target appear;
    a long sweep stops on Cancel and leaves the tab ready."""
    ARTIFACTS.mkdir(exist_ok=True)
    external = []
    page = _open(browser, li_server, external)
    page.locator("select").first.select_option("MEG")
    page.get_by_role("button", name="1", exact=True).click()  # 1 sampling step
    _fill(page, ".cell-size", 10)
    _tab(page, "Inverse design")
    page.get_by_text("fills after a sweep").wait_for(timeout=10_000)
    plot = page.locator(".inverse-plot").first
    plot.wait_for(timeout=10_000)
    page.wait_for_timeout(500)
    assert _point_pixels(_png(plot.screenshot())) == 0, "points drawn before any sweep"
    assert page.locator(".sweep-prop select").input_value() == "li_concentration"
    _fill(page, ".sweep-targets", 2)
    _fill(page, ".sweep-per-target", 1)
    page.locator(".run-sweep button").click()
    _await_task(page, ".inverse-table table", "the sweep")
    table = page.locator(".inverse-table table").first
    assert table.locator("tbody tr").count() == 2
    text = table.inner_text()
    assert "target li_concentration" in text and "0.05" in text and "0.25" in text and "mean achieved" in text
    page.locator(".inverse-scores").get_by_text("MAPE %").wait_for(timeout=10_000)  # and MAE, RMSE, slope
    page.get_by_text("2 li_concentration targets × 1: done").wait_for(timeout=10_000)
    page.wait_for_timeout(1000)  # let Bokeh draw the points
    drawn = _png(plot.screenshot(path=str(ARTIFACTS / "studio_inverse_plot.png")))
    assert _point_pixels(drawn) > 40, "the achieved-vs-target plot has no points"
    page.screenshot(path=str(ARTIFACTS / "studio_inverse.png"), full_page=True)

    _fill(page, ".sweep-targets", 9)  # the largest sweep, 250 steps each: cancelled long before its end
    _fill(page, ".sweep-per-target", 8)
    page.get_by_role("button", name="250", exact=True).click()
    page.locator(".run-sweep button").click()
    page.locator(".sweep-message").get_by_text("Target 1/9").wait_for(timeout=30_000)
    page.locator(".cancel-sweep button").click()
    page.locator(".sweep-message").get_by_text("Cancelled").wait_for(timeout=30_000)
    assert page.locator(".inverse-table table").count() == 0  # the cancelled sweep left no half table
    assert page.locator(".run-sweep button").is_enabled()
    page.close()
    assert external == [], f"requests left 127.0.0.1 or JavaScript failed: {external}"


@pytest.fixture(scope="module")
def meg_server(tmp_path_factory):
    """`panel serve studio` with the shipped MEG AMShortcut (and the repository's MEG shards as the
    training reference); yields the page URL."""
    assets = make_assets(tmp_path_factory.mktemp("studio-meg") / "assets", properties={})
    shutil.rmtree(assets / "checkpoints")
    make_tiny_checkpoint(assets)
    shutil.copytree(ROOT / "assets" / "data" / "MEG", assets / "data" / "MEG")
    shipped = ROOT / "assets" / "checkpoints" / "MEG" / "shortcut"
    shutil.copytree(shipped, assets / "checkpoints" / "MEG" / "shortcut", ignore=shutil.ignore_patterns("init-*"))
    with serve_studio(assets) as url:
        yield url


def _red_pixels(img: np.ndarray) -> int:
    """Pixels of O atoms (studio.ngl_view.ELEMENT_COLORS: #FF0D0D, shaded by NGL's lighting)."""
    r, g, b = img[..., 0], img[..., 1], img[..., 2]
    return int(((r > 150) & (g < 0.35 * r) & (b < 0.35 * r)).sum())


def test_meg_generates_one_glass_with_its_composition_and_3d_view(meg_server, browser):
    """Switch to MEG, generate 1 glass with the shipped model at its default 25 steps: the table shows its
    composition in the data's element order and its charge balance, the 3D view draws it with O in red,
    the legend names its elements."""
    ARTIFACTS.mkdir(exist_ok=True)
    external = []
    page = _open(browser, meg_server, external)
    page.locator("select").first.select_option("MEG")
    page.get_by_text(re.compile(r"li_concentration \(training data: 0 – [0-9.]+ %\)")).wait_for(timeout=10_000)
    assert page.locator(".cell-size input").input_value() == "15.5"
    page.get_by_role("button", name="25", exact=True).click()
    _fill(page, ".n-samples", 1)
    page.locator(".generate button").click()
    _await_task(page, ".run-info", "generation")
    table = page.locator(".property-table table").first
    table.wait_for(timeout=20_000)
    text = table.inner_text()
    assert "composition" in text and "Σq/N_O" in text and "li_concentration" in text and _table_rows(page) == 1
    composition = table.locator("tbody tr td").nth(2).inner_text().split()
    order = ("Si", "P", "Al", "Li", "Be", "K", "Ca", "Ti", "Ba", "Zn", "O")
    elements = [c.rstrip("0123456789") for c in composition]
    assert elements == sorted(elements, key=order.index) and "O" in elements
    page.wait_for_selector(".ngl-view[data-natoms]:not([data-natoms='0'])", timeout=60_000)
    page.wait_for_timeout(1500)  # let NGL finish its first frames
    view = _png(page.locator(".ngl-view canvas").first.screenshot(path=str(ARTIFACTS / "studio_meg_ngl_canvas.png")))
    assert _drawn_fraction(view) > 0.03, "the NGL canvas is blank"
    assert _red_pixels(view) > 200, "no red O atoms in the 3D view"
    for item in (composition[0], composition[-1]):  # the legend under the view names the glass's elements
        page.locator(".element-legend").get_by_text(item).first.wait_for(timeout=10_000)
    page.screenshot(path=str(ARTIFACTS / "studio_meg.png"), full_page=True)
    page.close()
    assert external == [], f"requests left 127.0.0.1 or JavaScript failed: {external}"
