#!/usr/bin/env bash
# Create the peer-library venvs under benchmarks/.venvs/ (git-ignored): recbole, deepctr, rechub,
# fuxictr.
# Idempotent: a venv is (re)installed only when its pin list changed or its import check fails.
#   bash benchmarks/setup_peers.sh            # all four
#   bash benchmarks/setup_peers.sh recbole    # just one (recbole | deepctr | rechub | fuxictr)
# Environment: PYTHON (default python3.11), PEER_VENVS (default benchmarks/.venvs).
# torch is always pinned to 2.13.0: the CPU wheel pip finds locally; any looser spec lets pip
# fetch a multi-GB CUDA build. Why each other pin is there: docs/benchmarks.md.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
PYTHON=${PYTHON:-python3.11}
VENVS=${PEER_VENVS:-$HERE/.venvs}

# --- pins --------------------------------------------------------------------------------------
RECBOLE_PINS=(
  "recbole==1.2.1"
  "torch==2.13.0"
  "numpy<2"            # RecBole 1.2.1 uses np.float/np.int-era APIs and numpy-1 pickles
  "pandas<3"           # RecBole's atomic-file reader relies on pandas 2 behaviour
  "ray==2.6.3"         # recbole requires ray<=2.6.3; recbole.quick_start imports ray.tune
  "setuptools<81"      # ray 2.6.3 imports pkg_resources, removed from setuptools 81
)
RECBOLE_CHECK='
import ray, recbole, numpy, pandas, torch
from recbole.config import Config
from recbole.data import create_dataset, data_preparation
from recbole.utils import get_model, get_trainer, init_seed
from recbole.model.sequential_recommender import SASRec, GRU4Rec, BERT4Rec, LightSANs
from recbole.quick_start import run_recbole
print("recbole", recbole.__version__, "ray", ray.__version__, "numpy", numpy.__version__,
      "pandas", pandas.__version__, "torch", torch.__version__)'

DEEPCTR_PINS=(
  "deepctr-torch==0.3.0"
  "torch==2.13.0"
  "scikit-learn"
  "pandas"
  "pyarrow"            # Parquet reading in benchmarks/peers/ctrdata.py
  "requests"           # imported by deepctr_torch/utils.py but not declared by the wheel
)
DEEPCTR_CHECK='
import sys, types
import requests
requests.get = lambda *a, **k: types.SimpleNamespace(status_code=404, text="")  # no version check
import deepctr_torch, torch, numpy, pyarrow, sklearn
from deepctr_torch.models import DIN
from deepctr_torch.inputs import SparseFeat, VarLenSparseFeat
print("deepctr-torch", deepctr_torch.__version__, "numpy", numpy.__version__, "torch", torch.__version__)'

RECHUB_PINS=(
  "torch-rechub==0.9.0"
  "torch==2.13.0"
  "pyarrow"            # Parquet reading in benchmarks/peers/ctrdata.py
)
RECHUB_CHECK='
import torch_rechub, torch, numpy, pandas, pyarrow, sklearn
from torch_rechub.models.ranking import DIN
from torch_rechub.trainers import CTRTrainer
from torch_rechub.basic.features import SparseFeature, SequenceFeature
from torch_rechub.utils.data import DataGenerator
print("torch-rechub", torch_rechub.__version__, "numpy", numpy.__version__, "torch", torch.__version__)'

FUXICTR_PINS=(
  "fuxictr==2.3.10"    # the compared version; its wheel also ships model_zoo/ (LongCTR DIN)
  "torch==2.13.0"      # fuxictr does not declare torch at all
  "pyarrow"            # Parquet reading in benchmarks/peers/ctrdata.py (fuxictr needs it too)
)
FUXICTR_CHECK='
import fuxictr, ray, torch, numpy, pandas, polars, pyarrow, sklearn
from fuxictr.features import FeatureMap
from fuxictr.pytorch.models import BaseModel
from fuxictr.pytorch.layers import DIN_Attention
from model_zoo.LongCTR.DIN import DIN
from model_zoo.LongCTR.longctr_dataloader import ParquetDataset, BatchCollator
print("fuxictr", fuxictr.__version__, "ray", ray.__version__, "numpy", numpy.__version__,
      "pandas", pandas.__version__, "torch", torch.__version__)'

# --- machinery ---------------------------------------------------------------------------------
make_venv() {  # make_venv NAME CHECK PIN...
  local name=$1 check=$2; shift 2
  local dir=$VENVS/$name stamp=$VENVS/$name/.pins
  local want; want=$(printf '%s\n' "$@")
  if [ -x "$dir/bin/python" ] && [ "$(cat "$stamp" 2>/dev/null)" = "$want" ] \
     && (cd /tmp && "$dir/bin/python" -W ignore -c "$check") >/dev/null 2>&1; then
    echo "[$name] up to date: $(cd /tmp && "$dir/bin/python" -W ignore -c "$check" 2>/dev/null | tail -n 1)"
    return
  fi
  echo "[$name] installing: $*"
  [ -x "$dir/bin/python" ] || "$PYTHON" -m venv "$dir"
  "$dir/bin/python" -m pip install -q --disable-pip-version-check "$@"
  (cd /tmp && "$dir/bin/python" -W ignore -c "$check") | sed "s/^/[$name] /"
  printf '%s\n' "$want" > "$stamp"
  "$dir/bin/python" -m pip freeze --disable-pip-version-check > "$dir/freeze.txt"
}

command -v "$PYTHON" >/dev/null || { echo "need $PYTHON (Python 3.11)" >&2; exit 1; }
"$PYTHON" -c 'import sys; assert sys.version_info[:2] == (3, 11), sys.version' \
  || { echo "$PYTHON is not Python 3.11" >&2; exit 1; }
mkdir -p "$VENVS"

TARGETS=("$@")
[ ${#TARGETS[@]} -gt 0 ] || TARGETS=(recbole deepctr rechub fuxictr)
for t in "${TARGETS[@]}"; do
  case $t in
    recbole) make_venv recbole "$RECBOLE_CHECK" "${RECBOLE_PINS[@]}" ;;
    deepctr) make_venv deepctr "$DEEPCTR_CHECK" "${DEEPCTR_PINS[@]}" ;;
    rechub)  make_venv rechub "$RECHUB_CHECK" "${RECHUB_PINS[@]}" ;;
    fuxictr) make_venv fuxictr "$FUXICTR_CHECK" "${FUXICTR_PINS[@]}" ;;
    *) echo "unknown venv $t (recbole | deepctr | rechub | fuxictr)" >&2; exit 2 ;;
  esac
done
