"""``xaibench report`` on the quickstart's table: md, tex, html and the figures; the HTML report opens in headless
Chromium without console errors and a screenshot shows tables and figures."""
from __future__ import annotations

import base64
import contextlib
import io
import os
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tests.conftest import FAST_METRICS
from xaibench.cli import main

pytestmark = pytest.mark.slow
BROWSERS = ("chromium", "chromium-browser", "google-chrome")


def chromium() -> str:
    """The headless browser: found, or installed from Debian's packages (as root, under the apt lock), or skip."""
    found = next((shutil.which(b) for b in BROWSERS if shutil.which(b)), None)
    if found:
        return found
    if not shutil.which("apt-get") or os.geteuid() != 0:
        pytest.skip("headless Chromium is not installed and cannot be installed here (needs root and apt-get); "
                    "install Debian's 'chromium' package to run this test")
    lock = ["flock", "/tmp/apt.lock"] if shutil.which("flock") else []
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for command in (["apt-get", "install", "-y", "-q", "chromium"], ["apt-get", "update", "-q"],
                    ["apt-get", "install", "-y", "-q", "chromium"]):
        done = subprocess.run([*lock, *command], env=env, capture_output=True, text=True, timeout=900)
        if done.returncode == 0 and shutil.which("chromium"):
            return shutil.which("chromium")
    pytest.skip(f"could not install Debian's chromium package: {done.stderr.strip()[-300:]}")


def screenshot(browser: str, page: Path, image: Path, tmp: Path, height: int = 6000) -> list[str]:
    """Render ``page`` headless into ``image``; returns the console messages the page produced."""
    done = subprocess.run(
        [browser, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", "--enable-logging=stderr",
         "--v=0", f"--user-data-dir={tmp / 'profile'}", f"--screenshot={image}", f"--window-size=1280,{height}",
         page.resolve().as_uri()],
        capture_output=True, text=True, timeout=180, env={**os.environ, "HOME": str(tmp)},
    )
    assert image.is_file(), done.stderr[-2000:]
    return [line for line in done.stderr.splitlines() if ":CONSOLE" in line]


def console(argv: list[str]) -> int:
    """``xaibench ARGV`` through the console entry's ``main``, in this process: its exit code."""
    with pytest.raises(SystemExit) as done:
        main(argv)
    return done.value.code


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    """The quickstart swept, then reported, by the console entry in this process (as subprocesses they cost ~16
    CPU-s of imports; test_readme_quickstart and test_report_cli run the sweep and the report as processes)."""
    root = tmp_path_factory.mktemp("report")
    cwd = os.getcwd()
    os.chdir(root)
    try:
        assert console(["-m", "experiment=quickstart", "n_samples=6", f"store_dir={root / 'my-store'}",
                        *FAST_METRICS]) == 0
        # No --store: the report finds the store_dir the sweep ran with (the galleries need its explanations).
        stderr = io.StringIO()
        with contextlib.redirect_stderr(stderr):
            code = console(["report", "results/runs/quickstart", "--out", "paper"])
    finally:
        os.chdir(cwd)
    assert code == 0, stderr.getvalue()[-2000:]
    assert "not in the store" not in stderr.getvalue(), stderr.getvalue()[-2000:]
    return root / "paper", stderr.getvalue()


def test_report_writes_tables_and_the_paper_figures(report):
    out, report_stderr = report
    assert {"report.md", "tables.tex", "report.html"} <= {p.name for p in out.iterdir()}
    figures = out / "figures"
    # no CD diagram and no metric agreement: two methods and the random control, a reference row never ranked
    # (paper14); the Friedman test and Kendall's tau here need three ranked methods
    assert not (figures / "cd_all.png").exists() and not (figures / "metric_agreement.png").exists()
    for name in ("gallery_digits_cnn", "gallery_digits_mlp", "gallery_breast_cancer_mlp", "rank_heatmap",
                 "metric_scores", "cost_vs_faithfulness"):
        png, pdf = (figures / f"{name}.png").read_bytes(), (figures / f"{name}.pdf").read_bytes()
        assert png.startswith(b"\x89PNG\r\n\x1a\n") and pdf.startswith(b"%PDF-"), name
    html = (out / "report.html").read_text()
    embedded = re.findall(r'<img src="data:image/png;base64,([^"]+)"', html)
    assert len(embedded) == len(list(figures.glob("*.png")))
    assert all(base64.b64decode(data).startswith(b"\x89PNG") for data in embedded)
    # every figure could be drawn from the table and the store (CD diagrams are left out, with a note, only where
    # the Friedman test cannot run or does not reject)
    notes = [line for line in report_stderr.splitlines() if line.startswith("report: note:")]
    assert notes and all(": not drawn, Friedman p = " in line or ": not drawn, Friedman needs >= 3 competitors" in line
                         or "metric agreement: needs two metrics ranking the same (at least three) methods" in line
                         for line in notes), notes


def test_html_report_renders_in_headless_chromium_with_tables_and_figures(report, tmp_path):
    out, _ = report
    browser = chromium()
    broken = tmp_path / "broken.html"  # the console capture works: a page with a script error is caught
    broken.write_text("<!DOCTYPE html><html><body><script>undefinedFunction();</script></body></html>")
    assert any("undefinedFunction" in m for m in screenshot(browser, broken, tmp_path / "broken.png", tmp_path, 400))

    shot = tmp_path / "report.png"
    assert screenshot(browser, out / "report.html", shot, tmp_path) == []
    pixels = np.asarray(Image.open(shot).convert("RGB"), dtype=float) / 255
    assert pixels.std() > 0.1, "blank screenshot"
    dark = pixels.max(axis=2) < 0.3  # text and table rules
    hsv = np.asarray(Image.open(shot).convert("HSV"), dtype=float) / 255
    coloured = (hsv[..., 1] > 0.5) & (hsv[..., 2] > 0.3)  # figure content: colour maps, bars (tables are grey)
    rows_with_text = np.flatnonzero(dark.mean(axis=1) > 0.01)
    rows_with_colour = np.flatnonzero(coloured.mean(axis=1) > 0.05)
    assert rows_with_text.size > 300, "no tables visible"
    assert rows_with_colour.size > 300, "no figures visible"
    assert rows_with_text.min() < rows_with_colour.min()  # tables first, then the figures
    Image.open(shot).save(out / "screenshot.png")  # kept beside the report for a look by eye
