"""Helpers shared by tests (importable as ``helpers``; pytest puts tests/ on sys.path)."""

from __future__ import annotations

import os
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
EXAMPLES = REPO / "examples"


def cli_env() -> dict[str, str]:
    """Environment for ``raynas`` subprocesses: loopback Ray, the repo importable."""
    env = dict(os.environ)
    env["RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"] = "0"
    env["PYTHONPATH"] = str(REPO) + os.pathsep + env.get("PYTHONPATH", "")
    return env


RAYNAS = [sys.executable, "-m", "raynas.cli"]
