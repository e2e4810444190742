"""Bad input through the real ``raynas`` CLI: exit code, traceback or not, the message.

Each case runs ``raynas ...`` in a subprocess (its Ray, if it started one, under a private
RAY_TMPDIR) and prints one row: the exit code, whether a traceback was printed, whether a Ray
session was started, whether anything was left that blocks the corrected rerun (an experiment
folder holding Tune state that did not exist before), the lines on stderr, and the message.
Every row should read rc 2, traceback no, Ray no (except the rows marked as needing Ray: an
unreachable cluster address), blocks no, 1 line.

    python benchmarks/cli_bad_inputs.py            # prints the table
    python benchmarks/cli_bad_inputs.py --out benchmarks/results/cli_bad_inputs.txt
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
EXAMPLES = REPO / "examples"
RANDOM = str(EXAMPLES / "nb201_random.yaml")
TRAIN = str(EXAMPLES / "cifar10_train.yaml")
CIFAR = Path(os.environ.get("RAYNAS_DATA") or REPO.parent / "shared" / "data")
RAYNAS = [sys.executable, "-m", "raynas.cli"]


def write(path: Path, text: str | bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text)
    return path


def cifar_copy(work: Path, truncate: bool = False, empty: bool = False) -> Path:
    root = work / ("trunc" if truncate else "empty" if empty else "data")
    dst = root / "cifar-10-batches-py"
    dst.mkdir(parents=True, exist_ok=True)
    if not empty:
        for f in (CIFAR / "cifar-10-mini" / "cifar-10-batches-py").iterdir():
            shutil.copyfile(f, dst / f.name)
    if truncate:
        with open(dst / "data_batch_1", "r+b") as f:
            f.truncate(100_000)
    return root


def taken(work: Path) -> Path:
    """A folder a run killed before any trial finished leaves (Tune's state, no result)."""
    write(work / "taken" / "nb201-random" / "experiment_state-2026-01-01_00-00-00.json", "{}")
    return work / "taken"


# (name, argv given the work folder, storage folder given the work folder or None)
Case = tuple[str, Callable[[Path], list[str]]]
CASES: list[Case] = [
    ("experiment file missing", lambda w: ["run", str(w / "nope.yaml")]),
    ("experiment file empty", lambda w: ["run", str(write(w / "empty.yaml", ""))]),
    ("invalid YAML", lambda w: ["run", str(write(w / "bad.yaml", "space: [nb201\n"))]),
    ("not UTF-8", lambda w: ["run", str(write(w / "latin.yaml", b"space: nb\xe9\n"))]),
    ("YAML list, not a mapping", lambda w: ["run", str(write(w / "list.yaml", "- nb201\n"))]),
    ("key given twice", lambda w: ["run", str(write(w / "d.yaml", "space: nb201\nspace: x\n"))]),
    ("unknown top-level key", lambda w: ["run", RANDOM, "--set", "num_sample=5"]),
    ("unknown space", lambda w: ["run", RANDOM, "--set", "space=nb301"]),
    ("unknown searcher", lambda w: ["run", RANDOM, "--set", "searcher=evolutoin"]),
    ("unknown scheduler", lambda w: ["run", RANDOM, "--set", "scheduler=hyperband2"]),
    ("unknown trainable", lambda w: ["run", RANDOM, "--set", "trainable=tables"]),
    ("unknown searcher option", lambda w: ["run", RANDOM, "--set", "searcher.options.pop=3"]),
    ("unknown space option", lambda w: ["run", RANDOM, "--set", "space.options.depth=3"]),
    (
        "bad trainable option value",
        lambda w: ["run", RANDOM, "--set", "trainable.options.delay_s=-1"],
    ),
    ("unknown trainable option", lambda w: ["run", TRAIN, "--set", "trainable.options.epoch=3"]),
    ("unknown dataset", lambda w: ["run", TRAIN, "--set", "trainable.options.dataset=mnist"]),
    ("num_samples 0", lambda w: ["run", RANDOM, "--set", "num_samples=0"]),
    ("mode maximize", lambda w: ["run", RANDOM, "--set", "mode=maximize"]),
    ("max_failures -2", lambda w: ["run", RANDOM, "--set", "max_failures=-2"]),
    ("time_budget_s 0", lambda w: ["run", RANDOM, "--set", "time_budget_s=0"]),
    ("--set without =", lambda w: ["run", RANDOM, "--set", "num_samples"]),
    ("--set into a scalar", lambda w: ["run", RANDOM, "--set", "metric.x=1"]),
    ("name with a slash", lambda w: ["run", RANDOM, "--name", "a/b"]),
    ("metric never reported", lambda w: ["run", RANDOM, "--set", "metric=accuracy"]),
    (
        "objective never reported",
        lambda w: [
            "run",
            RANDOM,
            "--set",
            "searcher=evolution",
            "--set",
            "searcher.options.objectives={val_acc: max, latency_ms: min}",
        ],
    ),
    ("resources.cpu 0", lambda w: ["run", RANDOM, "--set", "resources.cpu=0"]),
    ("resources.gpu 4 (no GPU here)", lambda w: ["run", RANDOM, "--set", "resources.gpu=4"]),
    ("resources.cpu 4096", lambda w: ["run", RANDOM, "--set", "resources.cpu=4096"]),
    (
        "storage_path is a file",
        lambda w: ["run", RANDOM, "--storage-path", str(write(w / "f", "x"))],
    ),
    (
        "storage_path under a file",
        lambda w: ["run", RANDOM, "--storage-path", str(write(w / "g", "x") / "s")],
    ),
    (
        "storage URI, unknown scheme",
        lambda w: ["run", RANDOM, "--storage-path", "nosuch://bucket/x"],
    ),
    ("CIFAR root not given", lambda w: ["run", TRAIN]),
    (
        "CIFAR root not given (proxy seeding)",
        lambda w: ["run", str(EXAMPLES / "nb201_proxy_seeded.yaml")],
    ),
    ("CIFAR root missing", lambda w: ["run", TRAIN, "--set", f"trainable.options.root={w}/none"]),
    (
        "CIFAR root is a file",
        lambda w: ["run", TRAIN, "--set", f"trainable.options.root={write(w / 'h', 'x')}"],
    ),
    (
        "CIFAR folder without files",
        lambda w: ["run", TRAIN, "--set", f"trainable.options.root={cifar_copy(w, empty=True)}"],
    ),
    (
        "CIFAR batch truncated",
        lambda w: [
            "run",
            TRAIN,
            "--set",
            f"trainable.options.root={cifar_copy(w, truncate=True)}",
        ],
    ),
    ("name taken, no trial finished", lambda w: ["run", RANDOM, "--storage-path", str(taken(w))]),
    (
        "name taken, finished run",
        lambda w: ["run", RANDOM, "--storage-path", str(w / "done"), "--name", "done"],
    ),
    ("--address unreachable", lambda w: ["run", RANDOM, "--address", "127.0.0.1:1"]),
    ("--address without a port", lambda w: ["run", RANDOM, "--address", "somehost"]),
    ("resume a missing folder", lambda w: ["resume", str(w / "missing")]),
    ("resume a folder that is no experiment", lambda w: ["resume", str(w)]),
    ("report a missing folder", lambda w: ["report", str(w / "missing")]),
    (
        "export to a missing folder",
        lambda w: ["export", str(w / "done" / "done"), "--out", str(w / "no" / "x.json")],
    ),
]


def state_folders(root: Path) -> set[Path]:
    return {p.parent for p in root.rglob("experiment_state-*.json")}


def run_case(argv: list[str], work: Path, ray_tmp: Path, env: dict[str, str]) -> dict:
    before = state_folders(work)
    sessions = set((ray_tmp / "ray").glob("session_2*"))
    if argv[0] == "run" and "--storage-path" not in argv:
        argv = [*argv, "--storage-path", str(work / "res")]
    start = time.perf_counter()
    proc = subprocess.run([*RAYNAS, *argv], env=env, capture_output=True, text=True, timeout=300)
    err = proc.stderr.strip()
    return {
        "rc": proc.returncode,
        "traceback": "Traceback" in proc.stderr + proc.stdout,
        "ray": bool(set((ray_tmp / "ray").glob("session_2*")) - sessions),
        "blocks": bool(state_folders(work) - before),
        "lines": len(err.splitlines()),
        "message": err.splitlines()[-1] if err else "(nothing on stderr)",
        "s": time.perf_counter() - start,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", help="also write the table to this file")
    parser.add_argument("--width", type=int, default=170, help="message column width")
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="rn-bad-"))
    ray_tmp = work / "t"
    env = {**os.environ, "RAY_TMPDIR": str(ray_tmp), "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0"}
    env.pop("RAYNAS_DATA", None)
    env["PYTHONPATH"] = str(REPO) + os.pathsep + env.get("PYTHONPATH", "")
    # A finished experiment for "name taken, finished run" and "export" (starts Ray once).
    subprocess.run(
        [
            *RAYNAS,
            "run",
            RANDOM,
            "--storage-path",
            str(work / "done"),
            "--name",
            "done",
            "--set",
            "num_samples=2",
            "-q",
        ],
        env=env,
        check=True,
        capture_output=True,
    )
    rows = []
    try:
        for name, argv in CASES:
            row = run_case(argv(work), work, ray_tmp, env)
            rows.append((name, row))
            print(f"{name}: rc {row['rc']} ({row['s']:.1f} s)", file=sys.stderr, flush=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)

    lines = [
        f"{len(rows)} kinds of bad input through `python -m raynas.cli` (one subprocess each)",
        "",
        f"{'#':>2}  {'bad input':<38} {'rc':>2}  {'traceback':<9}  {'Ray':<3}  {'blocks':<6}  "
        f"{'lines':>5}  message (last line on stderr)",
    ]
    for i, (name, r) in enumerate(rows, 1):
        message = r["message"].replace(str(work), "<tmp>").replace(str(REPO), "<repo>")
        if len(message) > args.width:
            message = message[: args.width - 3] + "..."
        lines.append(
            f"{i:>2}  {name:<38} {r['rc']:>2}  {'yes' if r['traceback'] else 'no':<9}  "
            f"{'yes' if r['ray'] else 'no':<3}  {'yes' if r['blocks'] else 'no':<6}  "
            f"{r['lines']:>5}  {message}"
        )
    ok = sum(
        r["rc"] == 2 and not r["traceback"] and not r["blocks"] and r["lines"] == 1
        for _, r in rows
    )
    lines += ["", f"rc 2, no traceback, one line, nothing blocking a rerun: {ok} of {len(rows)}"]
    lines.append(f"started Ray: {sum(r['ray'] for _, r in rows)} of {len(rows)}")
    text = "\n".join(lines)
    print(text)
    if args.out:
        Path(args.out).write_text(text + "\n")


if __name__ == "__main__":
    main()
