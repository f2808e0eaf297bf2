#!/usr/bin/env bash
# The issue-11 GPU checks as ONE device call (a session is lent 15 device-minutes in all):
#   1. the fast engine vs plain Quantus on CUDA (wall time after synchronize), faithfulness and stability;
#   2. a real CUDA out-of-memory backoff (a memory cap makes the first chunks fail; the forward halves and retries);
#   3. the quickstart sweep with device=auto: every row's `device` column must say cuda.
# On the device tool:  run(command="bash benchmarks/gpu/check.sh", carry=[".whl"], timeout_s=540)
# after `bash benchmarks/gpu/fetch_wheels.sh` here. Here (no GPU) `DEVICE=cpu bash benchmarks/gpu/check.sh` checks
# the plumbing with .venv's python. Results land in $OUT (the device tool brings them back) or benchmarks/out/gpu.
set -uo pipefail
cd "$(dirname "$0")/../.."
DEVICE=${DEVICE:-cuda}
OUT=${OUT:-benchmarks/out/gpu}
mkdir -p "$OUT"
PY=python3
if [ -d .whl ] && [ "$DEVICE" != cpu ]; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl \
    && export PYTHONPATH=/tmp/site || exit 1
else
  PY=.venv/bin/python
fi
export PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH} PYTHONUNBUFFERED=1 WANDB_MODE=disabled
[ "$DEVICE" = cpu ] || nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv | tee "$OUT/gpu.txt"
status=0
echo "== 1. fast engine vs plain Quantus ($DEVICE)"
timeout 300 $PY benchmarks/bench_scoring.py --device "$DEVICE" --repeats "${REPEATS:-3}" \
  --out "$OUT/bench_scoring_${DEVICE}.json" 2>&1 | tee "$OUT/bench_scoring.log" || status=1
echo "== 2. out-of-memory backoff ($DEVICE)"
timeout 120 $PY benchmarks/gpu/oom_backoff.py --device "$DEVICE" --out "$OUT/oom_backoff.json" 2>&1 \
  | tee "$OUT/oom_backoff.log" || status=1
echo "== 3. quickstart sweep, device=auto"
timeout 180 $PY -m xaibench -m experiment=quickstart device=auto store_dir=/tmp/xb-store \
  results_dir=/tmp/xb-runs 2>&1 | tail -25 | tee "$OUT/quickstart.log" || status=1
$PY - "$OUT" <<'PY' || status=1
import sys, xaibench
table = xaibench.load("/tmp/xb-runs/quickstart")
devices = sorted(table["device"].astype(str).unique())
print("device column:", devices, "rows:", len(table))
open(f"{sys.argv[1]}/quickstart_devices.txt", "w").write(" ".join(devices) + "\n")
PY
exit $status
