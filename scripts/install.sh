#!/usr/bin/env bash
# Create $VENV (default .venv) and install raynas with its test extras into it.
# torch: an existing torch (e.g. a CUDA build on a GPU machine) is kept. With none installed,
# the CPU build torch==2.13.0 is installed first, so the project's `torch` range does not pull
# a multi-GB CUDA build on a CPU-only machine. Set RAYNAS_TORCH to another requirement
# (e.g. RAYNAS_TORCH="torch==2.6.0") or PIP_INDEX_URL / PIP_EXTRA_INDEX_URL to choose the
# wheel source.
set -euo pipefail
PYTHON=${PYTHON:-python3}
VENV=${VENV:-.venv}
if [ ! -x "$VENV/bin/python" ]; then
  "$PYTHON" -m venv "$VENV"
fi
PY="$VENV/bin/python"
"$PY" -m pip install --quiet --upgrade pip
if ! "$PY" -c "import torch" 2>/dev/null; then
  echo "install.sh: no torch in $VENV; installing ${RAYNAS_TORCH:-torch==2.13.0} (CPU build)"
  "$PY" -m pip install --quiet "${RAYNAS_TORCH:-torch==2.13.0}"
  "$PY" -c "import torch" || { echo "install.sh: torch did not install" >&2; exit 1; }
fi
"$PY" -m pip install --quiet -e ".[test]"
"$PY" -c "import raynas, search_spaces, schedulers, ray, torch; print('install.sh: raynas ready (torch', torch.__version__, ', ray', ray.__version__ + ')')"
