#!/usr/bin/env bash
# Install the CPU build of torch==VERSION into PYTHON, never PyPI's Linux torch (the CUDA build: several GB, and
# useless on a CPU machine). Usage: scripts/install_torch.sh PYTHON VERSION
#   1. a wheel pip finds without any index (its find-links, e.g. /opt/wheels on the project's machines), then
#      torch's own dependencies from the configured indexes;
#   2. else PyTorch's CPU index, or $XAIBENCH_TORCH_INDEX_URL (a mirror of it).
set -euo pipefail
VPY=$1
VERSION=$2
PIP=("$VPY" -m pip install --disable-pip-version-check --progress-bar off -q)
if "${PIP[@]}" --no-index --no-deps "torch==$VERSION" >/dev/null 2>&1; then
  "${PIP[@]}" "torch==$VERSION"
else
  index=${XAIBENCH_TORCH_INDEX_URL:-https://download.pytorch.org/whl/cpu}
  echo "setup: no local torch==$VERSION wheel; installing the CPU build from $index"
  "${PIP[@]}" --index-url "$index" "torch==$VERSION"
fi
