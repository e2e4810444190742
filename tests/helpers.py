"""Helpers shared by tests (importable as ``helpers``; pytest puts tests/ on sys.path)."""

from __future__ import annotations

import contextlib
import importlib.util
import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

REPO = Path(__file__).resolve().parents[1]
EXAMPLES = REPO / "examples"
#: The genuine CIFAR-10 subset: $RAYNAS_DATA, else the shared data folder next to the repo.
CIFAR_ROOT = Path(os.environ.get("RAYNAS_DATA") or REPO.parent / "shared" / "data")
HAS_CIFAR = (CIFAR_ROOT / "cifar-10-mini").is_dir() or bool(os.environ.get("RAYNAS_DATA"))


def cli_env() -> dict[str, str]:
    """Environment for ``raynas`` subprocesses: loopback Ray, the repo importable."""
    env = dict(os.environ)
    env["RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"] = "0"
    env["PYTHONPATH"] = str(REPO) + os.pathsep + env.get("PYTHONPATH", "")
    return env


RAYNAS = [sys.executable, "-m", "raynas.cli"]


def free_port() -> int:
    """A TCP port of 127.0.0.1 that nothing listens on now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def tensorboard(folder: Path, runs: int, timeout_s: float = 60) -> Iterator[str]:
    """``raynas tensorboard folder`` on 127.0.0.1 at a free port, waited for until its scalars
    API lists ``runs`` runs (or ``timeout_s`` passed); yields its URL and stops it after."""
    port = free_port()
    proc = subprocess.Popen(
        [*RAYNAS, "tensorboard", str(folder), "--port", str(port)],
        env=cli_env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.time() + timeout_s
        while time.time() < deadline:
            try:
                with urllib.request.urlopen(f"{url}/data/plugin/scalars/tags", timeout=2) as r:
                    if len(json.loads(r.read())) >= runs:
                        break
            except OSError:
                pass
            time.sleep(0.5)
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=20)


def load_benchmark(name: str) -> ModuleType:
    """``benchmarks/<name>.py`` imported as a module (benchmarks/ is not a package)."""
    spec = importlib.util.spec_from_file_location(
        f"{name}_bench", REPO / "benchmarks" / f"{name}.py"
    )
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while it executes
    spec.loader.exec_module(module)
    return module


def table_tuner(space, searcher, storage, name: str, num_samples: int, max_concurrent=1):
    """A real Tuner of ``searcher`` over the NB201 table trainable (val_acc, max)."""
    from ray import tune

    from raynas import trainables

    return tune.Tuner(
        trainables.make("table", space),
        param_space=space.tune_space(),
        tune_config=tune.TuneConfig(
            metric="val_acc",
            mode="max",
            search_alg=searcher,
            num_samples=num_samples,
            max_concurrent_trials=max_concurrent,
            reuse_actors=True,
        ),
        run_config=tune.RunConfig(storage_path=str(storage), name=name, verbose=0),
    )


def table_loop(searcher, space, n: int, start: int = 0, dataset: str = "cifar10") -> list[dict]:
    """Sequential suggest/complete of trials ``t{start}..`` on the NB201 table (val_acc)."""
    from raynas.benchmarks import nb201

    out = []
    for i in range(start, start + n):
        config = searcher.suggest(f"t{i}")
        out.append(config)
        acc = nb201.table().lookup(space.to_str(space.decode(config)), dataset).val_acc
        searcher.on_trial_complete(f"t{i}", {"val_acc": acc})
    return out


def read_events(folder: str) -> dict[str, dict]:
    """Every event file of a trial folder read back: {kind: {tag: [events]}}."""
    import glob

    from tensorboard.backend.event_processing import event_accumulator as ea

    found: dict[str, dict] = {"scalars": {}, "images": {}, "tensors": {}}
    files = glob.glob(f"{folder}/events.out.tfevents*")
    for file in files:
        acc = ea.EventAccumulator(file, size_guidance={ea.IMAGES: 0, ea.TENSORS: 0})
        acc.Reload()
        tags = acc.Tags()
        for tag in tags["scalars"]:
            found["scalars"][tag] = acc.Scalars(tag)
        for tag in tags["images"]:
            found["images"][tag] = acc.Images(tag)
        for tag in tags["tensors"]:
            found["tensors"][tag] = acc.Tensors(tag)
    return found
