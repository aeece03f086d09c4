"""Convert a long ``user_id,item_id,timestamp`` CSV into a RecBole atomic ``.inter`` file.

Used to feed amazon-beauty and yelp-a (``/work/shared/data/<name>/interactions.csv``) to the
RecBole runners. Rows are written in the source file's order; RecBole's time ordering is a stable
sort, so same-timestamp ties (day-granular Amazon data) keep the published chronological order.
No filtering, no re-indexing: ids stay as in the source.

Runs in any Python with polars (e.g. the chronorec venv):

    /work/main/.venv/bin/python benchmarks/peers/to_atomic.py amazon-beauty yelp-a
    # -> benchmarks/results/atomic/<name>/<name>.inter
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import polars as pl

ROOT = Path(__file__).resolve().parents[2]


def data_root() -> Path:
    """Shared data folder: $CHRONOREC_DATA, else ../shared/data beside the project."""
    root = Path(os.environ.get("CHRONOREC_DATA", ROOT.parent / "shared" / "data"))
    if not root.is_dir():
        sys.exit(f"data folder {root} not found; set CHRONOREC_DATA")
    return root


def convert(src: Path, dst_dir: Path, name: str) -> Path:
    """Write ``dst_dir/<name>.inter`` from ``src`` and return its path."""
    df = pl.read_csv(src, columns=["user_id", "item_id", "timestamp"])
    dst_dir.mkdir(parents=True, exist_ok=True)
    out = dst_dir / f"{name}.inter"
    df = df.rename(
        {"user_id": "user_id:token", "item_id": "item_id:token", "timestamp": "timestamp:float"}
    )
    df.write_csv(out, separator="\t")
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("names", nargs="+", help="dataset folder names under the data root")
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "atomic",
                    help="output root; files go to OUT/<name>/<name>.inter")
    ap.add_argument("--file", default="interactions.csv", help="CSV file inside each dataset folder")
    args = ap.parse_args()
    root = data_root()
    for name in args.names:
        out = convert(root / name / args.file, args.out / name, name)
        print(f"{name}: {out} ({pl.scan_csv(out, separator=chr(9)).select(pl.len()).collect().item()} rows)")


if __name__ == "__main__":
    main()
