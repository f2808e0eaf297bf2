#!/usr/bin/env bash
# The suite regression-checks its own explanation quality: run experiment=ci cold (a fresh, temporary store, so
# nothing stale is reused) and compare the table with the committed baseline under a tolerance policy.
# Exit 0 pass, 1 regression, 2 usage error. .ci/run calls it after the tests.
#
#   bash scripts/ci_regression.sh                    # check; report in results/runs/ci/compare.{md,json}
#   bash scripts/ci_regression.sh --update-baseline  # deliberately refresh results/baselines/ci, then commit it
#
# Environment (all optional; relative paths are taken from the folder the script is called from):
#   PYTHON                interpreter with xaibench installed (default: .venv/bin/python)
#   XAIBENCH_CI_BASELINE  baseline table (default: results/baselines/ci/table.parquet)
#   XAIBENCH_CI_CURRENT   check this existing table or sweep folder instead of running the sweep
#   XAIBENCH_CI_POLICY    tolerance policy: a name in conf/compare/ or a .yaml file (default: default)
#   XAIBENCH_CI_RESULTS   results_dir of the sweep (default: results/runs); compared: its sweep folder <it>/ci
#   XAIBENCH_CI_OUT       folder for compare.md / compare.json (default: the current sweep folder or table's)
set -uo pipefail
here=$PWD
from_here() { case "$1" in /*|"") printf '%s' "$1" ;; *) printf '%s/%s' "$here" "$1" ;; esac; }
PYTHON=${PYTHON:-}
case "$PYTHON" in */*) PYTHON=$(from_here "$PYTHON") ;; esac   # a path, not a command name on PATH
baseline=$(from_here "${XAIBENCH_CI_BASELINE:-}")
policy=${XAIBENCH_CI_POLICY:-default}
case "$policy" in *.yaml|*.yml) policy=$(from_here "$policy") ;; esac   # a file, not a name in conf/compare/
results=$(from_here "${XAIBENCH_CI_RESULTS:-}")
current=$(from_here "${XAIBENCH_CI_CURRENT:-}")
out=$(from_here "${XAIBENCH_CI_OUT:-}")
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-.venv/bin/python}
baseline=${baseline:-results/baselines/ci/table.parquet}
results=${results:-results/runs}
sweep=(-m experiment=ci)

update=0
case "${1:-}" in
  "") ;;
  --update-baseline) update=1 ;;
  *) echo "usage: $0 [--update-baseline]" >&2; exit 2 ;;
esac

if [[ -z "$current" ]]; then
  store=$(mktemp -d)
  trap 'rm -rf "$store"' EXIT
  echo "ci regression: xaibench ${sweep[*]} (fresh store)"
  "$PYTHON" -m xaibench "${sweep[@]}" "store_dir=$store" "results_dir=$results"
  rc=$?
  # 2: the sweep could not start (one line printed). 1: some cells errored; compare names them (ok -> error).
  if [[ $rc -eq 2 ]]; then exit 2; fi
  # The sweep folder, not its table.parquet: a killed run leaves the previous run's table in place and the folder's
  # sweep.json says it did not finish, so compare reports the run as partial (and --update-baseline refuses it).
  current=$results/ci
fi

if [[ $update -eq 1 ]]; then
  exec "$PYTHON" -m xaibench compare "$baseline" "$current" --update-baseline \
    --command "xaibench ${sweep[*]} store_dir=<fresh temporary store> (bash scripts/ci_regression.sh --update-baseline)"
fi

if [[ -z "$out" ]]; then if [[ -d "$current" ]]; then out=$current; else out=$(dirname "$current"); fi; fi
mkdir -p "$out"
exec "$PYTHON" -m xaibench compare "$baseline" "$current" --policy "$policy" \
  --report "$out/compare.md" --json "$out/compare.json"
