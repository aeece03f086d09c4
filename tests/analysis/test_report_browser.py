"""Open the report in headless Chromium and check the screenshot shows rendered images (slow)."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from matplotlib.image import imread

from chronorec.analysis.report import build_report

from .runs_fixture import write_runs

pytestmark = pytest.mark.slow

CHROMIUM = next((p for p in (shutil.which(n) for n in ("chromium", "chromium-browser", "google-chrome")) if p), None)


def _screenshot(page: Path, png: Path, profile: Path) -> np.ndarray:
    """[H, W, 3] RGB floats of a headless-Chromium screenshot of ``page``."""
    assert CHROMIUM is not None
    cmd = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
           "--disable-background-networking", "--disable-component-update", "--disable-sync",
           f"--user-data-dir={profile}", f"--screenshot={png}", "--window-size=1200,2000",
           "--hide-scrollbars", page.resolve().as_uri()]
    subprocess.run(cmd, check=True, capture_output=True, timeout=120)
    return imread(png)[..., :3]


@pytest.mark.skipif(CHROMIUM is None, reason="headless Chromium not installed (apt-get install chromium)")
def test_report_renders_images_in_headless_chromium(
    planted_dir: Path, analysis: tuple[Path, dict], tmp_path: Path
) -> None:
    runs = write_runs(tmp_path / "runs", planted_dir)
    html, _ = build_report([runs], tmp_path / "site" / "report.html", analysis[0])
    # no sibling files: the page must render from the one HTML file alone
    shutil.rmtree(html.parent / "report_files")
    (html.parent / "report.md").unlink()
    shot = _screenshot(html, tmp_path / "shot.png", tmp_path / "profile")
    assert shot.shape[:2] == (2000, 1200)
    # the same page with every image's data stripped: what a page with broken images looks like
    broken = html.with_name("broken.html")
    broken.write_text(re.sub(r'src="data:image/png;base64,[^"]+"', 'src=""', html.read_text()))
    ref = _screenshot(broken, tmp_path / "broken.png", tmp_path / "profile2")
    changed = np.abs(shot - ref).max(axis=2) > 0.1  # [H, W] pixels that only the images explain
    assert changed.sum() > 20_000, "images did not render"
    sat = shot.max(axis=2) - shot.min(axis=2)
    assert (sat > 0.25).sum() > 1_000  # coloured plot lines / heatmap cells on the first screen
    # the metric table's text is drawn: dark pixels at the top of the page
    assert (shot[:600].mean(axis=2) < 0.3).mean() > 0.002
