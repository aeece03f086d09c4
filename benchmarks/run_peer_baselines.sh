#!/usr/bin/env bash
# Measure the peer libraries on this machine, one job after another (so the jobs do not compete
# for the 2 cores). Each job's JSON line goes to benchmarks/results/peers/<job>.json, its stderr
# to <job>.err. Jobs whose .json already holds a result are skipped (delete it to re-run), and so
# are jobs another instance of this script is running (<job>.running holds that instance's pid),
# so two instances can split a job list between them. Usage:
#   bash benchmarks/run_peer_baselines.sh [JOB...]     # default: all jobs below, in this order
# Jobs: prepare-ml-100k prepare-amazon-beauty prepare-yelp-a din-deepctr din-rechub
#       train-SASRec train-GRU4Rec train-LightSANs train-BERT4Rec
# Environment: EPOCHS (RecBole, default 1), CTR_EPOCHS (default 1), THREADS (default 2),
#              CHRONOREC_DATA (default ../shared/data beside the project).
set -uo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
DATA=${CHRONOREC_DATA:-$ROOT/../shared/data}
VENVS=$ROOT/benchmarks/.venvs
OUT=$ROOT/benchmarks/results/peers
PEERS=$ROOT/benchmarks/peers
EPOCHS=${EPOCHS:-1}
CTR_EPOCHS=${CTR_EPOCHS:-1}
THREADS=${THREADS:-2}
CHRONO_PY=${CHRONO_PY:-$ROOT/.venv/bin/python}
mkdir -p "$OUT"

[ -x "$VENVS/recbole/bin/python" ] || { echo "peer venvs missing: bash benchmarks/setup_peers.sh" >&2; exit 1; }

# Inputs the jobs need: atomic files for the CSV datasets, the ml-100k CTR export.
ATOMIC=$ROOT/benchmarks/results/atomic
CTR=$ROOT/benchmarks/results/ctr/ml-100k
[ -f "$ATOMIC/yelp-a/yelp-a.inter" ] && [ -f "$ATOMIC/amazon-beauty/amazon-beauty.inter" ] \
  || CHRONOREC_DATA=$DATA "$CHRONO_PY" "$PEERS/to_atomic.py" amazon-beauty yelp-a --out "$ATOMIC"
[ -f "$CTR/train.parquet" ] || "$CHRONO_PY" "$PEERS/make_ctr_export.py" --data "$DATA/ml-100k" --out "$CTR"

run() {  # run JOB CMD... : record the last stdout line as the job's result
  local job=$1; shift
  if [ -s "$OUT/$job.json" ]; then echo "skip $job (have $OUT/$job.json)"; return; fi
  local lock=$OUT/$job.running
  if [ -f "$lock" ] && kill -0 "$(cat "$lock")" 2>/dev/null; then
    echo "skip $job (running in pid $(cat "$lock"))"; return
  fi
  echo $$ > "$lock"
  echo "$(date +%T) start $job (load $(cut -d' ' -f1 /proc/loadavg))"
  "$@" > "$OUT/$job.out" 2> "$OUT/$job.err"
  local rc=$?
  rm -f "$lock"
  if [ $rc -eq 0 ] && tail -n 1 "$OUT/$job.out" | grep -q '^{'; then
    tail -n 1 "$OUT/$job.out" > "$OUT/$job.json"
    echo "$(date +%T) done  $job: $(cat "$OUT/$job.json" | cut -c1-200)"
  else
    echo "$(date +%T) FAILED $job (rc=$rc), see $OUT/$job.err"
  fi
  rm -f "$OUT/$job.out"
}

job() {
  case $1 in
    prepare-ml-100k) run "$1" "$VENVS/recbole/bin/python" "$PEERS/recbole_prepare.py" \
        --data-path "$DATA" --dataset ml-100k --threads "$THREADS" ;;
    prepare-amazon-beauty|prepare-yelp-a) run "$1" "$VENVS/recbole/bin/python" "$PEERS/recbole_prepare.py" \
        --data-path "$ATOMIC" --dataset "${1#prepare-}" --threads "$THREADS" ;;
    din-deepctr) run "$1" "$VENVS/deepctr/bin/python" "$PEERS/deepctr_din.py" \
        --data "$CTR" --epochs "$CTR_EPOCHS" --threads "$THREADS" ;;
    din-rechub) run "$1" "$VENVS/rechub/bin/python" "$PEERS/rechub_din.py" \
        --data "$CTR" --epochs "$CTR_EPOCHS" --threads "$THREADS" ;;
    train-*) run "$1" "$VENVS/recbole/bin/python" "$PEERS/recbole_train.py" \
        --data-path "$DATA" --dataset ml-100k --model "${1#train-}" --epochs "$EPOCHS" --threads "$THREADS" ;;
    *) echo "unknown job $1" >&2; return 2 ;;
  esac
}

JOBS=("$@")
[ ${#JOBS[@]} -gt 0 ] || JOBS=(prepare-ml-100k prepare-amazon-beauty prepare-yelp-a din-deepctr din-rechub
                             train-SASRec train-GRU4Rec train-LightSANs train-BERT4Rec)
for j in "${JOBS[@]}"; do job "$j"; done
