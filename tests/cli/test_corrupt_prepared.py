"""A prepared folder whose schema.json or manifest.json is damaged: every command that reads it
answers with one `error:` line naming the file, never a JSON / attribute traceback."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

from chronorec.data.schema import DatasetSchema
from chronorec.errors import ChronorecError

TINY = ["--set", "model.dim=8", "--set", "train.threads=1", "--epochs", "1", "--quiet"]


def _copy(src: Path, dst: Path) -> Path:
    shutil.copytree(src, dst)
    return dst




@pytest.mark.parametrize("text", ['{"name": "x", "prot', "[1, 2]", '{"name": 3}', "\xff\xfe"])
def test_schema_load_is_one_error_naming_the_file(tmp_path: Path, text: str) -> None:
    path = tmp_path / "schema.json"
    path.write_bytes(text.encode("latin-1"))
    with pytest.raises(ChronorecError) as exc:
        DatasetSchema.load(path)
    assert exc.value.file == str(path) and "prepare --force" in str(exc.value)


def test_train_on_truncated_schema(tiny_nextitem_dataset: Path, tmp_path: Path,
                                   cli_error: Callable[[list[str]], str]) -> None:
    data = _copy(tiny_nextitem_dataset, tmp_path / "data")
    schema = data / "schema.json"
    schema.write_bytes(schema.read_bytes()[:100])
    err = cli_error(["train", "--data", str(data), "--model", "sasrec", *TINY,
                           "--out", str(tmp_path / "runs")])
    assert str(schema) in err
    assert not (tmp_path / "runs").exists()


def test_train_on_manifest_that_is_not_an_object(tiny_nextitem_dataset: Path, tmp_path: Path,
                                                 cli_error: Callable[[list[str]], str]) -> None:
    data = _copy(tiny_nextitem_dataset, tmp_path / "data")
    (data / "manifest.json").write_text("[1, 2]")
    err = cli_error(["train", "--data", str(data), "--model", "sasrec", *TINY,
                           "--out", str(tmp_path / "runs")])
    assert "manifest.json" in err
