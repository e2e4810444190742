"""``raynas`` command line: run, resume, status, report, export, tensorboard, spaces,
check-cluster, latency-table.

Exit codes: 0 when every trial finished; 2 for a user error (bad experiment file, unknown
names, missing folders, unreachable storage or cluster), one line on stderr; 3 when the run
finished but some trials errored (they are named with their error files); 130 when the run was
interrupted by Ctrl-C (143 by SIGTERM, 129 by SIGHUP: the state is saved and the resume
command printed). Bugs keep their traceback. Every command that
takes an experiment folder also takes its URI (``s3://bucket/raynas/<name>``). Heavy imports
(Ray, torch) happen after argument parsing.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

EXIT_USER_ERROR = 2
EXIT_TRIALS_ERRORED = 3
EXIT_INTERRUPTED = 130
_FOLDER_HELP = "experiment folder (<storage_path>/<name>) or its URI"


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="raynas", description="Neural Architecture Search on Ray Tune."
    )
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    r = sub.add_parser("run", help="run an experiment file", description="Run an experiment.")
    r.add_argument("file", help="experiment YAML file")
    r.add_argument("--address", help="Ray cluster address (e.g. auto); default: local Ray")
    r.add_argument("--name", help="experiment name (default: from the file, else its stem)")
    r.add_argument("--storage-path", help="where results go (local folder or URI)")
    r.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a config key, e.g. --set num_samples=50 --set searcher.options.seed=3",
    )
    r.add_argument(
        "--restart",
        action="store_true",
        help="if the experiment folder already holds a run, move it aside "
        "(<name>.old-<time>, nothing is deleted) and start over",
    )
    loud = r.add_mutually_exclusive_group()
    loud.add_argument("-q", "--quiet", action="store_true", help="print only the final summary")
    loud.add_argument(
        "-v", "--verbose", action="store_true", help="Tune's progress tables and messages"
    )

    s = sub.add_parser(
        "resume",
        help="continue an interrupted experiment",
        description="Resume an interrupted experiment from its folder.",
    )
    s.add_argument("path", help=_FOLDER_HELP)
    s.add_argument("--address", help="Ray cluster address; default: local Ray")

    st = sub.add_parser(
        "status",
        help="one screen on a running or finished experiment",
        description="Trials by state, rate, best so far, nodes, scheduler decisions, time "
        "since the last result; reads the experiment folder, so it works from any terminal.",
    )
    st.add_argument("path", help=_FOLDER_HELP)
    st.add_argument("--address", help="also list the cluster's nodes as Ray sees them (e.g. auto)")

    rep = sub.add_parser(
        "report",
        help="leaderboard of an experiment",
        description="Print the top architectures, trial states and wall time; with --plot "
        "also write pictures of the search (PNG). Several experiments: one report each, and "
        "their best-so-far curves in one picture.",
    )
    rep.add_argument("path", nargs="+", help=_FOLDER_HELP)
    rep.add_argument("--top", type=_positive_int, default=10, help="rows in the leaderboard")
    rep.add_argument(
        "--plot",
        metavar="DIR",
        help="write PNGs into DIR: best so far, Pareto front, op frequency, scheduler "
        "decisions, DARTS alpha (those that apply)",
    )

    e = sub.add_parser(
        "export",
        help="best architecture as JSON",
        description="Write the best architecture (config, string, genotype).",
    )
    e.add_argument("path", help=_FOLDER_HELP)
    e.add_argument("--out", help="output file (default: stdout)")
    e.add_argument(
        "--target",
        help="hardware target (with --max-latency-ms): the best trial within that latency",
    )
    e.add_argument("--max-latency-ms", type=float, help="latency budget on --target (ms)")
    e.add_argument(
        "--weights",
        metavar="FILE",
        help="subnet trainable: also write the chosen subnet's inherited weights (state dict "
        "+ genotype; loads without the supernet)",
    )

    t = sub.add_parser(
        "tensorboard",
        help="start TensorBoard on 127.0.0.1 over an experiment",
        description="Serve TensorBoard over an experiment folder.",
    )
    t.add_argument("path", help=f"{_FOLDER_HELP} (or any local folder of experiments)")
    t.add_argument(
        "--refresh-s",
        type=float,
        default=30.0,
        help="with a URI: seconds between downloads of new events (default 30)",
    )
    t.add_argument("--port", type=int, default=6006)
    t.add_argument("--host", default="127.0.0.1", help="bind address (default loopback)")

    c = sub.add_parser(
        "check-cluster",
        help="check a `ray up` cluster file",
        description="Check a cluster file with Ray's own validation plus its provider keys.",
    )
    c.add_argument("file", help="cluster YAML file (e.g. cluster.yaml, clusters/local.yaml)")

    lt = sub.add_parser(
        "latency-table",
        help="build (or show) a hardware target's latency table on this machine",
        description="Measure the mobilenetv3 latency table of a hardware target (cpu-b1, "
        "cpu-b64, cuda-b64, ...) on this machine and cache it, or read the cached one.",
    )
    lt.add_argument("target", help="hardware target, e.g. cpu-b1, cpu-b64, cuda-b64")
    lt.add_argument("--resolution", type=_positive_int, required=True, help="input image size")
    lt.add_argument("--width-mult", type=float, required=True, help="channel multiplier")
    lt.add_argument("--classes", type=_positive_int, default=10, help="classifier outputs")
    lt.add_argument("--rebuild", action="store_true", help="measure again even when cached")

    sub.add_parser(
        "spaces",
        help="list search spaces and their sizes",
        description="List the registered search spaces.",
    )
    return p


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer >= 1, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected an integer >= 1, got {value}")
    return value


def _fail(message: str) -> int:
    print(f"raynas: error: {message}", file=sys.stderr)
    return EXIT_USER_ERROR


def interrupted_code() -> int:
    """Exit code of an interrupted run: 128 + the signal that stopped it (Ctrl-C: 130,
    SIGTERM: 143, SIGHUP: 129), 130 when no signal did."""
    from raynas import stop

    signum = stop.received()
    return 128 + signum if signum else EXIT_INTERRUPTED


def _local_ray_env(address: str | None) -> None:
    # An embedded local Ray binds to loopback only; must be set before Ray is imported.
    if not address or address.split(":")[0] in ("127.0.0.1", "localhost"):
        os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")


def _finish(location: str) -> int:
    """Print the outcome of a Tuner run; 130 if trials are left unfinished, 3 if some errored."""
    from raynas import results

    summary = results.load(location)
    shown = summary.location or location
    print(results.format_report(summary, top=5))
    finished = summary.states.get("TERMINATED", 0) + summary.states.get("ERROR", 0)
    expected = results.expected_trials(summary.config)
    if finished < expected and not summary.config.time_budget_s:
        print(
            f"\ninterrupted: {finished} of {expected} trials finished; "
            f"continue with: raynas resume {shown}",
            file=sys.stderr,
        )
        return interrupted_code()
    errored = summary.states.get("ERROR", 0)
    try:
        top = results.best(summary)
    except ValueError:
        top = None
    if top is not None:
        value = top["metrics"][top["metric"]]
        print(f"\nbest architecture: {top['arch']}  ({top['metric']}={results._fmt(value)})")
    print(f"results: {shown}")
    if errored:
        print(
            f"\n{errored} of {finished} trials errored (listed above); `raynas resume {shown}` "
            "runs them again",
            file=sys.stderr,
        )
        return EXIT_TRIALS_ERRORED
    return 0 if top is not None else 1


def run_overrides(sets: list[str], name: str | None, storage_path: str | None) -> list[str]:
    """``run``'s overrides: the ``--set`` ones, then ``--name`` and ``--storage-path`` as
    literal strings, not YAML scalars, so a name like 2024-06-01 or a path holding " #"
    stays as typed (a JSON string is a YAML double-quoted scalar)."""
    overrides = list(sets)
    if name:
        overrides.append(f"name={json.dumps(name)}")
    if storage_path:
        overrides.append(f"storage_path={json.dumps(storage_path)}")
    return overrides


def _restart_command(args: argparse.Namespace) -> str:
    """The ``raynas run`` command line the user typed, with ``--restart`` added."""
    import shlex

    words = ["raynas", "run", args.file]
    for flag, value in (
        ("--address", args.address),
        ("--name", args.name),
        ("--storage-path", args.storage_path),
    ):
        if value:
            words += [flag, value]
    for text in args.set:
        words += ["--set", text]
    words += ["--restart"] + (["-q"] if args.quiet else []) + (["-v"] if args.verbose else [])
    return shlex.join(words)


def cmd_run(args: argparse.Namespace) -> int:
    _local_ray_env(args.address)
    from raynas import config as cfgmod
    from raynas import experiment

    cfg = cfgmod.load(args.file, run_overrides(args.set, args.name, args.storage_path))
    experiment.run(
        cfg,
        address=args.address,
        verbose=0 if args.quiet else 2 if args.verbose else 1,
        restart=args.restart,
        restart_hint=f"`{_restart_command(args)}`",
    )
    return _finish(experiment.experiment_location(cfg).uri)


def cmd_resume(args: argparse.Namespace) -> int:
    _local_ray_env(args.address)
    from raynas import experiment

    experiment.resume(args.path, address=args.address)
    return _finish(args.path)


def cmd_status(args: argparse.Namespace) -> int:
    if args.address:
        _local_ray_env(args.address)
    from raynas import status

    print(status.format_status(status.collect(args.path, address=args.address)))
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    from raynas import results

    if args.plot and Path(args.plot).exists() and not Path(args.plot).is_dir():
        return _fail(f"--plot {args.plot} is a file, not a folder")
    summaries = [results.load(path) for path in args.path]
    print("\n\n".join(results.format_report(s, top=args.top) for s in summaries))
    if args.plot:
        from raynas import plots

        for file in plots.write_plots(summaries, args.plot):
            print(f"wrote {file}")
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    from raynas import results

    summary = results.load(args.path)
    chosen = results.best(summary, args.target, args.max_latency_ms)
    if args.weights:
        from raynas.trainables import subnet

        subnet.export(summary.config, chosen, args.weights)
        print(f"wrote {args.weights}")
    text = json.dumps(chosen, indent=2)
    if args.out:
        try:
            Path(args.out).write_text(text + "\n")
        except OSError as e:
            return _fail(f"cannot write {args.out}: {e.strerror or e}")
        print(f"wrote {args.out}")
    else:
        print(text)
    return 0


def cmd_tensorboard(args: argparse.Namespace) -> int:
    from raynas import storage
    from raynas.tensorboard import command, serve_mirrored

    if storage.is_uri(args.path) and not storage.locate(args.path).is_local:
        if args.refresh_s <= 0:
            return _fail(f"--refresh-s must be > 0, got {args.refresh_s}")
        return serve_mirrored(args.path, port=args.port, host=args.host, refresh_s=args.refresh_s)
    path = storage.locate(args.path).local_path()
    if not path.is_dir():
        return _fail(f"experiment folder not found: {path}")
    print(
        f"TensorBoard at http://{args.host}:{args.port}/ over {path} (Ctrl-C to stop)", flush=True
    )
    # Replace this process: signals (Ctrl-C, SIGTERM) reach TensorBoard itself, no orphan.
    cmd = command(str(path), port=args.port, host=args.host)
    os.execv(cmd[0], cmd)
    return 0  # not reached


def cmd_spaces(args: argparse.Namespace) -> int:
    import search_spaces

    for name in search_spaces.names():
        space = search_spaces.get(name)
        size = space.size()
        shown = f"{size:,}" if size < 10**9 else f"{size:.3e}"
        print(f"{name:<12} {len(space.tune_space()):>3} keys   {shown:>12} architectures")
    return 0


def cmd_latency_table(args: argparse.Namespace) -> int:
    from raynas.config import ConfigError
    from raynas.hardware import targets

    try:
        table = targets.table(
            args.target,
            args.resolution,
            args.width_mult,
            args.classes,
            build=True,
            rebuild=args.rebuild,
            progress=lambda line: print(line, flush=True),
        )
    except ValueError as e:  # a bad target name, width or a missing device
        raise ConfigError(str(e)) from None
    how = "read from the cache" if table.from_cache else "measured"
    print(f"{args.target}: table {how}: {table.path} (device {table.device})")
    return 0


def cmd_check_cluster(args: argparse.Namespace) -> int:
    from raynas import cluster

    print(cluster.check_file(args.file).format())
    return 0


COMMANDS = {
    "run": cmd_run,
    "resume": cmd_resume,
    "status": cmd_status,
    "report": cmd_report,
    "export": cmd_export,
    "tensorboard": cmd_tensorboard,
    "spaces": cmd_spaces,
    "check-cluster": cmd_check_cluster,
    "latency-table": cmd_latency_table,
}


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    from raynas.config import ConfigError

    try:
        return COMMANDS[args.command](args)
    except ConfigError as e:
        return _fail(str(e))
    except KeyboardInterrupt:
        print("\ninterrupted", file=sys.stderr)
        return EXIT_INTERRUPTED


if __name__ == "__main__":
    sys.exit(main())
