"""scripts/install.sh with VENV_SYSTEM_SITE=1 keeps the torch its Python already has.

The "image" is this test venv: its torch stands for a GPU image's CUDA build. The install runs
offline (PIP_NO_INDEX, a setuptools wheel as the only find-links), so it cannot fetch a torch.
"""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from helpers import REPO, load_benchmark

pytestmark = pytest.mark.slow


def test_install_in_a_system_site_venv_keeps_the_existing_torch(tmp_path):
    import ray
    import torch

    wheels = load_benchmark("ray_up").offline_wheelhouse(tmp_path / "wheels")
    venv = tmp_path / "node-venv"
    env = {k: v for k, v in os.environ.items() if not k.startswith("PIP_")}
    env.update(
        PYTHON=sys.executable,  # a venv's Python, like an image's /opt/pytorch
        VENV=str(venv),
        VENV_SYSTEM_SITE="1",
        RAYNAS_EXTRAS="cluster",
        PIP_NO_INDEX="1",
        PIP_FIND_LINKS=str(wheels),
    )
    proc = subprocess.run(
        ["bash", "scripts/install.sh"], cwd=REPO, env=env, capture_output=True, text=True
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "installing torch" not in proc.stdout

    py = str(venv / "bin" / "python")
    probe = subprocess.run(
        [py, "-c", "import torch, raynas, ray; print(torch.__file__, raynas.__file__)"],
        capture_output=True,
        text=True,
        check=True,
    )
    torch_file, raynas_file = probe.stdout.split()
    assert torch_file == torch.__file__  # the image's torch, not a new copy
    assert raynas_file == str(REPO / "raynas" / "__init__.py")
    assert not list(venv.glob("lib/python*/site-packages/torch"))
    # `ray` on the node's PATH runs this venv's Python (so Ray's workers import raynas).
    version = subprocess.run(
        [str(venv / "bin" / "ray"), "--version"], capture_output=True, text=True, check=True
    )
    assert ray.__version__ in version.stdout
