#!/usr/bin/env bash
# Set up xaibench in ./.venv: keeps an existing torch (GPU box), else installs the CPU wheel torch==2.13.0 first,
# then installs the package with its test/launcher extras, constrained so pip never swaps torch for a CUDA build.
# Idempotent: a second run with unchanged pyproject.toml returns at once.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
TORCH_CPU=2.13.0

if [ ! -x .venv/bin/python ]; then
  if "$PY" -c "import torch" >/dev/null 2>&1; then
    echo "setup: torch found in $PY; creating .venv with system site-packages to keep it"
    "$PY" -m venv --system-site-packages .venv
  else
    "$PY" -m venv .venv
  fi
fi
VPY=.venv/bin/python

# Optional system tools: pdflatex + poppler for the test that compiles the report's LaTeX tables. Installed where
# apt-get is available as root; never fails setup (the test then skips with the reason).
if ! command -v pdflatex >/dev/null 2>&1 || ! command -v pdftohtml >/dev/null 2>&1; then
  if command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
    echo "setup: installing texlive-latex-base texlive-latex-recommended poppler-utils (LaTeX table checks)"
    tex=(texlive-latex-base texlive-latex-recommended poppler-utils)
    { DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${tex[@]}" >/dev/null 2>&1 \
      || { apt-get update -q >/dev/null 2>&1 \
           && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${tex[@]}" >/dev/null 2>&1; }
    } || echo "setup: could not install the LaTeX tools; tests that compile LaTeX will skip"
  fi
fi

# Optional: headless Chromium for the test that opens the HTML report and screenshots it. Same rules: root and
# apt-get only, never fails setup (the test then skips with the reason).
if ! command -v chromium >/dev/null 2>&1 && ! command -v chromium-browser >/dev/null 2>&1; then
  if command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
    echo "setup: installing chromium (headless check of the HTML report)"
    { DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends chromium >/dev/null 2>&1 \
      || { apt-get update -q >/dev/null 2>&1 \
           && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends chromium >/dev/null 2>&1; }
    } || echo "setup: could not install chromium; the HTML report test will skip"
  fi
fi

stamp=.venv/.xaibench-setup
want=$(cat pyproject.toml scripts/setup.sh scripts/install_torch.sh | sha256sum | cut -d' ' -f1)
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ] && "$VPY" -c "import xaibench" >/dev/null 2>&1; then
  exit 0
fi
PIP=("$VPY" -m pip install --disable-pip-version-check --progress-bar off -q)

# A pip configuration that lists index folders which do not exist (these machines' /etc/pip.conf) makes pip warn
# once per package and folder: 100+ lines before anything else a new user reads. Only those lines are left out;
# every other line of the command and its exit status are kept.
IGNORED_INDEX="^WARNING: Location 'file://[^']*' is ignored: it is neither a file nor a directory\.$"
quietly() {
  local rc
  set +o pipefail
  { "$@" 2>&1 1>&3 3>&- | { grep -v "$IGNORED_INDEX" >&2 || true; }; } 3>&1
  rc=${PIPESTATUS[0]}
  set -o pipefail
  return "$rc"
}

if ! "$VPY" -c "import torch" >/dev/null 2>&1; then
  echo "setup: installing torch==$TORCH_CPU (CPU wheel)"
  quietly bash scripts/install_torch.sh "$VPY" "$TORCH_CPU"
fi
torch_version=$("$VPY" -c "import torch; print(torch.__version__.split('+')[0])" 2>/dev/null)
echo "torch==$torch_version" > .venv/constraints.txt
echo "setup: installing xaibench and its dependencies (torch pinned to $torch_version)"
quietly "${PIP[@]}" -c .venv/constraints.txt -e ".[dev]"
echo "$want" > "$stamp"
echo "setup: done"
