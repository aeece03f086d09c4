from __future__ import annotations

import re
from pathlib import Path

import pytest

from chronorec.analysis.report import build_report, group_runs
from chronorec.analysis.runs import find_runs

from .runs_fixture import write_runs


@pytest.fixture(scope="module")
def report(planted_dir: Path, analysis: tuple[Path, dict], tmp_path_factory: pytest.TempPathFactory
           ) -> tuple[Path, Path, Path]:
    tmp = tmp_path_factory.mktemp("report")
    runs = write_runs(tmp / "runs", planted_dir)
    html, md = build_report([runs], tmp / "out" / "report.html", analysis[0], title="Test report")
    return html, md, runs


def test_runs_are_grouped_by_config_minus_seed(report: tuple[Path, Path, Path]) -> None:
    groups = group_runs(find_runs([report[2]]))
    assert sorted((g.label, sorted(g.seeds)) for g in groups) == [
        ("din #1", [0, 1]), ("din #2", [0]), ("tin", [0, 1, 2]), ("tin-pin", [0, 1, 2])]
    assert all(r.path.name != "backbone" for g in groups for r in g.runs)  # nested phases belong to their run


def test_html_has_metric_table_with_mean_and_std(report: tuple[Path, Path, Path]) -> None:
    html = report[0].read_text()
    row = re.search(r"<tr><td>tin</td>.*?</tr>", html, re.S)
    assert row is not None
    cells = re.findall(r"<td[^>]*>(.*?)</td>", row.group(0))
    assert cells[:4] == ["tin", "tin", "3 (0, 1, 2)", "0.7200 ± 0.0200"]
    assert "<td class=\"num\">0.6550 ± 0.0071</td>" in html  # din #1: mean 0.655, std 0.00707
    assert "0.6000</td>" in html  # a single run: no std
    assert "<td>3 (0, 1, 2), 1 unfinished</td><td class=\"num\">0.7550 ± 0.0071</td>" in html
    assert re.search(r"<td>tin</td><td>head</td><td[^>]*>40</td><td[^>]*>0.7300 ± 0.0200</td>", html)


def test_html_is_self_contained_and_escaped(report: tuple[Path, Path, Path]) -> None:
    html = report[0].read_text()
    imgs = re.findall(r'<img src="([^"]+)"', html)
    assert len(imgs) == 7  # training curves + the gap distribution + 5 analysis figures
    assert all(src.startswith("data:image/png;base64,iVBORw0KGgo") for src in imgs)
    assert not re.search(r"""(src|href)=["']?(https?:)?//""", html)
    assert "url(" not in html and "<link" not in html and "<script" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "synthetic-planted" in html and "ctr-leave-one-out" in html  # dataset summary
    assert "| oracle | oracle |" not in html and "100.0%" in html  # agreement table rendered as HTML


def test_markdown_twin_links_existing_pngs(report: tuple[Path, Path, Path]) -> None:
    html, md, _ = report
    text = md.read_text()
    assert md == html.with_suffix(".md")
    links = re.findall(r"!\[[^\]]*\]\(([^)]+)\)", text)
    assert len(links) == 7  # curves, the dataset's gap distribution, five analysis figures
    for link in links:
        assert (md.parent / link).read_bytes()[:4] == b"\x89PNG"
    assert "| tin | tin | 3 (0, 1, 2) | 0.7200 ± 0.0200 |" in text
    assert "| oracle | oracle | 6 | 100.0% | 0.0% | 0.0% | 0 | 0.99" in text
    # the Data section: how the rhythm bucketing rules split the dataset's gaps (`analyze gaps`)
    assert "### Gaps between consecutive interactions: synthetic-planted" in text
    assert re.search(r"\| scaled_days \| \d+ / 641 \|", text) and "| log |" in text


def test_analysis_section_averages_the_seeds_of_a_setting(tmp_path: Path) -> None:
    """agreement.json's ``settings`` (seed runs of one config) become a mean ± std table."""
    import json

    import numpy as np

    from chronorec.analysis import agreement
    from chronorec.analysis.report import _analysis_sections

    ok = np.array(["", ""], dtype=object)
    models = {"tin-s0": {**agreement.summarize(np.array([0.9, 0.1]), ok), "model": "tin"},
              "tin-s1": {**agreement.summarize(np.array([0.9, 0.95]), ok), "model": "tin"}}
    (tmp_path / "agreement.json").write_text(json.dumps({
        "dataset": "d", "n_samples": 10, "options": {"splits": ["train"], "n_positions": 10},
        "models": models, "settings": {"tin": ["tin-s0", "tin-s1"]}}))
    tables, _ = _analysis_sections(tmp_path)
    per_setting = [t for t in tables if t.columns == agreement.SETTINGS_HEADER]
    assert len(per_setting) == 1
    assert per_setting[0].rows == [["tin", "2", "75.0 ± 35.4%", "0.0 ± 0.0%", "25.0 ± 35.4%", "0.713 ± 0.301"]]
