"""The library's own path: synthetic log -> prepare -> train a tiny TIN -> `chronorec analyze
correlation` -> `chronorec report`, through the real CLI entry point."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import pytest

from chronorec.analysis import ctc
from chronorec.analysis.prepared import PreparedArrays
from chronorec.cli import main
from chronorec.data.prepare import PrepareOptions, prepare
from chronorec.data.synthetic import synthetic_source
from chronorec.train.build import resolve_model_options
from chronorec.train.config import RunConfig, TrainConfig
from chronorec.train.launch import train


@pytest.fixture(scope="module")
def prepared(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("e2e") / "synthetic-ctr"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        prepare(synthetic_source(n_users=300, n_categories=6, mean_events=20, seed=3), out,
                PrepareOptions(protocol="ctr-leave-one-out"))
    return out


def test_ground_truth_recovers_the_generators_planted_pattern(prepared: Path) -> None:
    """Leave-one-out positives follow recent same-category behaviors; random negatives do not."""
    data = PreparedArrays(prepared)
    s = data.samples(["train"])
    field = data.category_field()
    pos_cat = ctc.position_matrix(data.event_column(field), s.hist_start, s.hist_end, 10)
    targets = ctc.select_targets(s.side[field], None, 200)
    table = ctc.ctc_table(s.side[field], s.label, pos_cat, targets, data.schema.vocab_sizes[field])
    same = ctc.same_category_curves(table, "mi", targets, 10)
    mean = same.mean(axis=0)
    assert np.all(np.diff(mean[:4]) < 0)  # decays with recency
    other = table.filter(table["target_category"] != table["category"])
    assert mean[0] > 3 * other["mi"].mean()  # the target's own category carries the signal


def test_cli_analyze_and_report_on_a_trained_tin(prepared: Path, tmp_path: Path,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    cfg = RunConfig(name="e2e-tin", data=str(prepared), model="tin",
                    model_options=resolve_model_options("tin", {"dim": 8, "mlp": [16, 8]}),
                    train=TrainConfig(epochs=1, batch_size=512, seed=1, threads=1, save_predictions=True))
    run = train(cfg, out=tmp_path / "runs", verbose=False)
    out = tmp_path / "analysis"
    main(["analyze", "correlation", "--data", str(prepared), "--runs", str(run), "--out", str(out),
          "--min-samples", "50", "--top-categories", "4"])
    printed = capsys.readouterr().out
    assert "4 target categories" in printed and "e2e-tin" in printed
    res = json.loads((out / "agreement.json").read_text())
    s = res["models"]["e2e-tin"]
    assert s["n_targets"] == 4 and sum(s["counts"].values()) == 4
    assert (out / "learned_e2e-tin.parquet").is_file() and (out / "table3_gauc_by_length.png").is_file()
    main(["report", str(tmp_path / "runs"), "--out", str(tmp_path / "site" / "report.html"),
          "--analysis", str(out)])
    html = (tmp_path / "site" / "report.html").read_text()
    # the gap distribution and five analysis figures; no validation-curve figure from a single evaluation
    assert html.count("data:image/png;base64,") == 6 and "e2e-tin" in html
    assert (tmp_path / "site" / "report.md").is_file()
