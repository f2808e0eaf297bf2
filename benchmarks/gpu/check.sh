#!/usr/bin/env bash
# The issue-11 GPU checks as ONE device call (a session is lent 15 device-minutes in all):
#   1. a real CUDA out-of-memory backoff (a memory cap makes the first chunks fail; they halve and retry) in the
#      metrics' forward chunks, the stability metrics' re-explanations and the explanation stage (oom_backoff.py);
#   2. the fast engine vs plain Quantus on CUDA (wall time after synchronize), faithfulness (target >= 10x);
#   3. the quickstart sweep with device=auto: every scored row's `device` and `explain_device` must say cuda
#      (`model_device`: cpu, where the suite trains), `oom_backoffs` 0;
#   4. the fast engine vs plain Quantus on CUDA, stability (last: what the time limit may cut).
# On the device tool:  run(command="bash benchmarks/gpu/check.sh", carry=[".whl"], timeout_s=540)
# after `bash benchmarks/gpu/fetch_wheels.sh` here. Here (no GPU) `DEVICE=cpu bash benchmarks/gpu/check.sh` checks
# the plumbing with .venv's python (PYTHON=... for another). Results land in $OUT (the device tool brings them
# back) or benchmarks/out/gpu. Each step's wall seconds are printed and written to $OUT/timings.txt.
set -uo pipefail
cd "$(dirname "$0")/../.."
DEVICE=${DEVICE:-cuda}
OUT=${OUT:-benchmarks/out/gpu}
mkdir -p "$OUT"
PY=python3
WHEELS="captum quantus hydra_core omegaconf antlr4_python3_runtime cachetools"  # what fetch_wheels.sh downloads
if [ "$DEVICE" != cpu ]; then
  # On the box, before any device minute goes into a step: every wheel is there, once (two versions of one stop
  # pip's whole install; without .whl the steps ran .venv/bin/python, which the box has not, and all failed).
  for wheel in $WHEELS; do
    found=$(ls .whl/"$wheel"-*.whl 2>/dev/null | wc -l)
    [ "$found" = 1 ] || { echo "check.sh: error: .whl/ holds $found wheel(s) of $wheel (1 needed): run" \
      "'bash benchmarks/gpu/fetch_wheels.sh' where a registry is reachable, then run this with carry=[\".whl\"]" >&2
      exit 2; }
  done
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl \
    && export PYTHONPATH=/tmp/site || exit 1
else
  PY=${PYTHON:-$([ -x .venv/bin/python ] && echo .venv/bin/python || echo python3)}  # a worktree has no .venv
  [ "${BOX_IMPORTS:-1}" = 0 ] || export PYTHONPATH=$PWD/benchmarks/gpu/box_imports  # as on the box: no wandb, shap..
fi
export PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH} PYTHONUNBUFFERED=1 WANDB_MODE=disabled
# Everything the steps import, in seconds: a missing package fails here, not after minutes of the steps before it.
$PY -c "import captum, quantus, hydra, omegaconf, torch, xaibench.cli, xaibench.metrics.quantus_adapter" || {
  echo "check.sh: error: $PY cannot import what the checks need (above); add the missing wheel to" \
    "benchmarks/gpu/fetch_wheels.sh" >&2; exit 2; }
[ "$DEVICE" = cpu ] || nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv | tee "$OUT/gpu.txt"
status=0
# The limits are the GPU box's; a CPU dry run on a shared machine takes longer (LIMIT_SCALE, default 4 there).
LIMIT_SCALE=${LIMIT_SCALE:-$([ "$DEVICE" = cpu ] && echo 4 || echo 1)}
step() {  # step NAME SECONDS COMMAND...: run with a time limit, record its status and wall seconds
  local name=$1 limit=$(($2 * LIMIT_SCALE)) start=$SECONDS rc; shift 2
  echo "== $name ($DEVICE)"
  timeout "$limit" "$@"; rc=$?
  echo "$name: rc=$rc, $((SECONDS - start)) s" | tee -a "$OUT/timings.txt"
  [ $rc -eq 0 ] || status=1
}
: > "$OUT/timings.txt"; : > "$OUT/all.log"  # 7 files in $OUT at most (the device tool brings back 8)
# Most important first; the limits add up to 500 s (the device call: timeout_s=540, wheels installed in ~10 s).
step "1. out-of-memory backoff" 60 bash -c "$PY benchmarks/gpu/oom_backoff.py --device $DEVICE \
  --out $OUT/oom_backoff.json 2>&1 | tee -a $OUT/all.log"
BENCH="$PY benchmarks/bench_scoring.py --device $DEVICE --repeats ${REPEATS:-3} --store /tmp/xb-bench-store"
step "2. fast vs plain Quantus: faithfulness" 170 bash -c "$BENCH --metrics faithfulness_correlation \
  faithfulness_estimate monotonicity_correlation pixel_flipping --out $OUT/bench_faithfulness_${DEVICE}.json \
  2>&1 | tee -a $OUT/all.log"
rm -rf /tmp/xb-store /tmp/xb-runs
step "3. quickstart sweep, device=auto" 120 bash -c "$PY -m xaibench -m experiment=quickstart device=auto \
  store_dir=/tmp/xb-store results_dir=/tmp/xb-runs 2>&1 | tail -25 | tee -a $OUT/all.log"
$PY - "$OUT" "$DEVICE" <<'PY' || status=1
import sys, xaibench
out, device = sys.argv[1], sys.argv[2]
table = xaibench.load("/tmp/xb-runs/quickstart")
scored = table[table["status"] == "ok"]
lines = [f"{c}: {sorted(scored[c].astype(str).unique())}" for c in ("device", "explain_device", "model_device",
                                                                      "oom_backoffs")]
print("\n".join(lines), f"\nrows: {len(table)}, scored: {len(scored)}")
open(f"{out}/quickstart_devices.txt", "w").write("\n".join(lines) + "\n")
want = "cuda" if device != "cpu" else "cpu"
ok = set(scored["device"]) == {want} and set(scored["explain_device"]) == {want} and len(scored) > 0
print("OK" if ok else f"FAILED: scored rows should say {want} in device and explain_device", file=sys.stderr)
sys.exit(0 if ok else 1)
PY
step "4. fast vs plain Quantus: stability" 150 bash -c "$BENCH --metrics avg_sensitivity \
  local_lipschitz_estimate max_sensitivity relative_input_stability relative_output_stability \
  --out $OUT/bench_stability_${DEVICE}.json 2>&1 | tee -a $OUT/all.log"
exit $status
