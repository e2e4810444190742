"""Console lines ``raynas run`` prints for the 20-trial demo, by verbosity and terminal.

Runs ``raynas run examples/nb201_random.yaml --set num_samples=20`` (NB201 table trials) with
the default output, ``-q`` and ``-v``, stdout to a pipe (a log or CI) and, for the default,
to a pseudo-terminal; counts the lines on stdout and stderr, the widest line, and (terminal)
how often the status line was redrawn in place.

    python benchmarks/cli_output_lines.py --out benchmarks/results/cli_output_lines.txt
"""

from __future__ import annotations

import argparse
import os
import pty
import select
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DEMO = [
    "run",
    str(REPO / "examples" / "nb201_random.yaml"),
    "--set",
    "num_samples=20",
]


def _env(ray_tmp: Path) -> dict[str, str]:
    env = {**os.environ, "RAY_TMPDIR": str(ray_tmp), "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0"}
    env["PYTHONPATH"] = str(REPO) + os.pathsep + env.get("PYTHONPATH", "")
    return env


def run_piped(argv: list[str], env: dict[str, str]) -> tuple[int, str, str]:
    proc = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=600)
    return proc.returncode, proc.stdout, proc.stderr


def run_tty(argv: list[str], env: dict[str, str]) -> tuple[int, str, str]:
    """stdout on a pseudo-terminal (80 columns), stderr piped."""
    master, slave = pty.openpty()
    proc = subprocess.Popen(argv, env=env, stdout=slave, stderr=subprocess.PIPE)
    os.close(slave)
    chunks = []
    while True:
        ready, _, _ = select.select([master], [], [], 0.5)
        if ready:
            try:
                data = os.read(master, 65536)
            except OSError:
                break
            if not data:
                break
            chunks.append(data)
        elif proc.poll() is not None:
            break
    os.close(master)
    err = proc.stderr.read().decode(errors="replace")
    proc.wait()
    return proc.returncode, b"".join(chunks).decode(errors="replace"), err


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", help="also write the table to this file")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="rn-out-"))
    env = _env(work / "t")
    rows = []
    try:
        for label, flags, tty in (
            ("default, log (pipe)", [], False),
            ("default, terminal", [], True),
            ("-q, log (pipe)", ["-q"], False),
            ("-v, log (pipe)", ["-v"], False),
        ):
            name = "demo-" + label.split(",")[0].strip("-") + ("-tty" if tty else "")
            argv = [sys.executable, "-m", "raynas.cli", *DEMO, "--storage-path", str(work)]
            argv += ["--name", name, *flags]
            start = time.perf_counter()
            rc, out, err = (run_tty if tty else run_piped)(argv, env)
            seconds = time.perf_counter() - start
            out_lines = out.replace("\r\n", "\n").split("\n")
            redraws = out.count("\r\033[K")
            everything = [*out_lines, *err.splitlines()]
            rows.append(
                (
                    label,
                    rc,
                    len([x for x in out_lines if x.strip()]),
                    len(err.splitlines()),
                    max((len(x.split("\r")[-1]) for x in everything), default=0),
                    redraws,
                    seconds,
                )
            )
            print(f"{label}: rc {rc}, {seconds:.0f} s", file=sys.stderr, flush=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    lines = [
        "raynas run examples/nb201_random.yaml --set num_samples=20 (20 NB201 table trials)",
        "",
        f"{'output':<22} {'rc':>2}  {'stdout lines':>12}  {'stderr lines':>12}  "
        f"{'widest':>6}  {'redraws':>7}  {'seconds':>7}",
    ]
    for label, rc, n_out, n_err, widest, redraws, seconds in rows:
        lines.append(
            f"{label:<22} {rc:>2}  {n_out:>12}  {n_err:>12}  {widest:>6}  {redraws:>7}  "
            f"{seconds:>7.0f}"
        )
    lines += [
        "",
        "stdout lines: non-empty lines, the final summary included (-q prints only that);",
        "terminal: a status line redrawn in place counts once; widest: characters of the",
        "longest line (the summary's leaderboard rows, which hold whole NB201 arch strings).",
    ]
    text = "\n".join(lines)
    print(text)
    if args.out:
        Path(args.out).write_text(text + "\n")


if __name__ == "__main__":
    main()
