"""The view in a real browser: headless Chromium loads the page while `rtclass demo` runs, and the
test checks the DOM (units drawn on the probe, cell-type labels in the table, counters moving, a
unit's waveform on click) and saves a screenshot. Chromium is installed with apt-get where it is
missing and this runs as root; elsewhere the test is skipped and says why."""

import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from rtclass.cell_types import CELL_TYPES

CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
#: the demo compiles its kernels before it streams (a first run on a fresh machine: a minute or more)
START_TIMEOUT_S = 240
#: the first units appear after a few discovery rounds, labels after 100 spikes and two rounds
LABEL_TIMEOUT_S = 120
URL = re.compile(r"http://127\.0\.0\.1:\d+/")


def _apt_install_chromium() -> str:
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    res = None
    for cmd in (
        ["apt-get", "install", "-y", "chromium"],
        ["apt-get", "update"],
        ["apt-get", "install", "-y", "chromium"],
    ):
        res = subprocess.run(cmd, capture_output=True, text=True, timeout=900, env=env)
        if cmd[1] == "install" and res.returncode == 0:
            break
    return res.stdout[-400:] + res.stderr[-400:] if res is not None else ""


@pytest.fixture(scope="module")
def chromium() -> str:
    pytest.importorskip("playwright.sync_api", reason="the browser test needs playwright (the dev extra)")
    path = shutil.which("chromium")
    if path is None and os.geteuid() == 0 and shutil.which("apt-get"):
        output = _apt_install_chromium()
        path = shutil.which("chromium")
        if path is None:
            pytest.skip(f"Chromium is missing and apt-get could not install it: {output}")
    if path is None:
        pytest.skip("Chromium is missing (Debian: apt-get install chromium); the browser test needs it")
    return path


@pytest.fixture
def demo_with_view():
    """`rtclass demo` with its view on a free port; yields the view's URL."""
    rtclass = str(Path(sys.executable).with_name("rtclass"))
    proc = subprocess.Popen(
        [rtclass, "demo", "--duration", "60", "--view", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    lines, found = [], threading.Event()

    def read():
        for line in proc.stdout:
            lines.append(line)
            if URL.search(line):
                found.set()

    threading.Thread(target=read, daemon=True).start()
    try:
        if not found.wait(START_TIMEOUT_S):
            raise AssertionError("the demo never printed its view's address:\n" + "".join(lines[-30:]))
        yield next(URL.search(line).group(0) for line in lines if URL.search(line))
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def test_the_view_shows_units_labels_and_moving_counters_during_a_demo(chromium, demo_with_view, tmp_path):
    from playwright.sync_api import sync_playwright

    errors = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1600, "height": 1000})
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.goto(demo_with_view)
            page.wait_for_function(
                "document.querySelectorAll('#probe circle.unit').length >= 5", timeout=LABEL_TIMEOUT_S * 1000
            )
            labelled = "[...document.querySelectorAll('#units td.type')].some(td => %s.includes(td.textContent))"
            labelled %= list(CELL_TYPES)
            page.wait_for_function(labelled, timeout=LABEL_TIMEOUT_S * 1000)
            before = float(page.inner_text("#counter-data_s"))
            time.sleep(1.5)
            assert float(page.inner_text("#counter-data_s")) > before  # the counters move
            assert page.inner_text("#counter-samples_dropped") == "0"
            assert "bad" not in page.get_attribute("#tile-samples_dropped", "class")
            marks = page.eval_on_selector_all("#probe circle.unit", "e => e.map(c => c.dataset.type)")
            assert any(t in CELL_TYPES for t in marks)  # units coloured by a cell type
            assert page.inner_text("#state") == "detecting"
            row = page.locator(
                "#units tbody tr", has=page.locator("td.type", has_text=re.compile("^(" + "|".join(CELL_TYPES) + ")$"))
            )
            row.first.click()
            page.wait_for_selector("#waveform-plot canvas", timeout=10_000)
            page.wait_for_selector("#acg-plot canvas", timeout=10_000)
            shot = tmp_path / "view.png"
            page.screenshot(path=str(shot), full_page=True)
            assert shot.stat().st_size > 10_000
            if os.environ.get("RTCLASS_VIEW_SCREENSHOT"):
                shutil.copy(shot, os.environ["RTCLASS_VIEW_SCREENSHOT"])
        finally:
            browser.close()
    assert errors == []
