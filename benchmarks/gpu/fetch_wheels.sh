#!/usr/bin/env bash
# Download, on a machine with a package registry, the wheels the GPU box lacks (its image has torch, numpy,
# pandas, pyarrow, scipy, scikit-learn, scikit-image, matplotlib, yaml, joblib; not these) into ./.whl, which
# git ignores and the device tool carries (`carry: [".whl"]`). Versions are this project's pins (pip list).
set -euo pipefail
cd "$(dirname "$0")/../.."
rm -rf .whl && mkdir -p .whl
PLATFORMS=(--platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 --platform manylinux_2_17_x86_64
           --platform manylinux2014_x86_64 --platform manylinux1_x86_64 --platform any)
python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp "${PLATFORMS[@]}" \
  -d .whl captum==0.9.0 quantus==0.6.0 hydra-core==1.3.8 omegaconf==2.3.1 cachetools==8.0.2
# Hydra 1.3 needs antlr4 4.9.3, published as a source archive only: build its (pure-Python) wheel here.
python3 -m pip wheel -q --no-deps -w .whl antlr4-python3-runtime==4.9.3
ls -la .whl && du -sh .whl
