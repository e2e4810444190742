#!/usr/bin/env bash
# Create $VENV (default .venv) and install raynas with the extras $RAYNAS_EXTRAS (default
# "test") into it.
# torch: an existing torch (e.g. a CUDA build on a GPU machine) is kept. With none installed,
# the CPU build torch==2.13.0 is installed first, so the project's `torch` range does not pull
# a multi-GB CUDA build on a CPU-only machine. Set RAYNAS_TORCH to another requirement
# (e.g. RAYNAS_TORCH="torch==2.6.0") or PIP_INDEX_URL / PIP_EXTRA_INDEX_URL to choose the
# wheel source.
# VENV_SYSTEM_SITE=1 creates the venv with --system-site-packages, so it sees the packages of
# $PYTHON's installation, also when $PYTHON is itself a venv (a GPU image's CUDA torch): the
# cluster files use it on every node. An existing $VENV is kept as it is.
set -euo pipefail
PYTHON=${PYTHON:-python3}
VENV=${VENV:-.venv}
EXTRAS=${RAYNAS_EXTRAS:-test}
if [ ! -x "$VENV/bin/python" ]; then
  if [ "${VENV_SYSTEM_SITE:-0}" = 1 ]; then
    "$PYTHON" -m venv --system-site-packages "$VENV"
    # A venv made from a venv's Python (an image's /opt/pytorch) would see only the base
    # installation's packages: list $PYTHON's own site-packages in a .pth, after the new venv's.
    base_site=$("$PYTHON" -c 'import site, sys; sys.prefix != sys.base_prefix and print("\n".join(site.getsitepackages()))')
    if [ -n "$base_site" ]; then
      purelib=$("$VENV/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
      printf '%s\n' "$base_site" >"$purelib/_raynas_base_env.pth"
    fi
  else
    "$PYTHON" -m venv "$VENV"
  fi
fi
PY="$VENV/bin/python"
"$PY" -m pip install --quiet --upgrade pip
if ! "$PY" -c "import importlib.util as u, sys; sys.exit(u.find_spec('torch') is None)"; then
  echo "install.sh: no torch in $VENV; installing ${RAYNAS_TORCH:-torch==2.13.0} (CPU build)"
  "$PY" -m pip install --quiet "${RAYNAS_TORCH:-torch==2.13.0}"
  "$PY" -c "import torch" || { echo "install.sh: torch did not install" >&2; exit 1; }
fi
"$PY" -m pip install --quiet -e ".[$EXTRAS]"
# `ray up` and `ray down` run `ray` from PATH on each node, and Ray's workers run the Python
# that started Ray. When ray comes from the system site-packages the venv has no `ray` script:
# add one that runs this venv's Python (which also sees raynas).
if [ ! -e "$VENV/bin/ray" ]; then
  printf '#!/bin/sh\nexec "%s" -m ray.scripts.scripts "$@"\n' \
    "$(cd "$VENV" && pwd)/bin/python" >"$VENV/bin/ray"
  chmod +x "$VENV/bin/ray"
fi
"$PY" -c "import raynas, search_spaces, schedulers, ray, torch; print('install.sh: raynas ready (torch', torch.__version__, 'from', torch.__file__.rsplit('/torch/', 1)[0] + ', ray', ray.__version__ + ')')"
