"""SIGKILL the raynas driver at random moments, resume until done, and check what is left.

    python benchmarks/driver_kills.py [--workload table curves] [--kills 6] [--seeds 0 1]
                                      [--address HOST:PORT] [--repo PATH] [--out FILE]

For each workload the loop starts ``raynas run`` (the real CLI in a subprocess; an embedded
local Ray per driver unless ``--address``), SIGKILLs the driver at a moment drawn from the
seed, starts ``raynas resume``, kills that too, ... ``--kills`` times, then resumes until the
CLI exits 0. Each kill is one of three kinds (drawn from the seed):

- ``startup``: at a uniform moment of the driver's start-up (imports, Ray start, Tuner set-up);
- ``running``: once the drivers logged a uniform number of further results (at most an even
  share of the results left, so that every kill lands before the end), plus up to 1 s;
- ``state-write``: from such a moment on, the loop polls the experiment folder every 2 ms and
  kills as soon as a state file changes (Tune's experiment/searcher state copy, raynas's own
  record): a kill during, or right after, a state write.

Kills are placed by progress rather than by clock time so that they land while trials run on
a machine whose load (and so the drivers' start-up, 10-40 s here) varies from run to run.

While the loop runs it reads every experiment state Tune leaves on disk and remembers the
trials each shows TERMINATED. At the end, from the files alone, it checks:

1. the final state holds exactly ``num_samples`` trials, all TERMINATED, with unique ids;
2. no finished trial was dropped: every trial TERMINATED in any state seen during the loop,
   or whose ``result.json`` (in the experiment folder or in any driver's staging folder) holds
   its final result, is TERMINATED in the final state with that result (metric and
   iteration), and every trial folder belongs to a trial of the final state;
3. no trial was evaluated twice beyond those running at a kill: evaluations per trial <=
   1 + (running at kills) / num_samples.

An *evaluation* is a trial run that produced its final result, counted from the result lines
the drivers logged: Tune's driver appends every result it receives to ``result.json`` in its
local staging folder (``<ray temp>/session_*/artifacts/*/<name>/driver_artifacts/<trial>``),
which a SIGKILL does not remove and no later driver rewrites (an embedded Ray starts a new
session folder per driver; a shared cluster's drivers append to the same file). A final
result is the trial's only result for a one-report trainable (``table``) and the result
marked ``done`` otherwise (the last epoch, or the one a scheduler stopped the trial at). A
final result a worker computed but no driver received before its kill is not counted: that
trial was running at the kill, and it runs again. *Running at a kill* is bounded by the
trials in flight: at most ``max_concurrent`` per kill (fewer when fewer were left).

The table is printed and, with ``--out``, written to a file.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import pickle
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "benchmarks"))

from local_cluster import live_glob  # noqa: E402

EXAMPLES = REPO / "examples"
KINDS = ("startup", "running", "state-write")
#: state files a kill "during a state write" watches, in the experiment folder and below
STATE_SUFFIXES = (".json", ".pkl", ".jsonl")


@dataclass(frozen=True)
class Workload:
    """One experiment the loop runs: an example file plus ``--set`` overrides."""

    name: str
    file: Path
    sets: tuple[str, ...]
    num_samples: int
    max_concurrent: int
    metric: str
    #: the trainable reports once per trial (that report is its final result)
    one_report: bool
    #: a driver's start-up, seconds (kills of kind ``startup`` are drawn in 0.2..this)
    startup_s: float
    #: results a trial logs on average (sizes the random kills' spacing)
    results_per_trial: int

    def scaled(self, num_samples: int) -> Workload:
        """The same workload with fewer trials (the test's smaller loop)."""
        sets = tuple(s for s in self.sets if not s.startswith("num_samples="))
        return dataclasses.replace(
            self, sets=(*sets, f"num_samples={num_samples}"), num_samples=num_samples
        )


WORKLOADS = {
    # 200 table trials, evolution, 0.5 s each, 2 at a time: ~60 s of trials on 2 cores.
    "table": Workload(
        name="table",
        file=EXAMPLES / "nb201_evolution.yaml",
        sets=(
            "num_samples=200",
            "trainable.options.delay_s=0.5",
            "searcher.options.population_size=10",
        ),
        num_samples=200,
        max_concurrent=2,
        metric="val_acc",
        one_report=True,
        startup_s=12.0,
        results_per_trial=1,
    ),
    # 8 replayed NB201 curves under LCE, 20 epochs of ~0.2-0.3 s (time_scale 0.2 of the real
    # training time: 4-6 s a trial), 4 at a time, a checkpoint every epoch.
    "curves": Workload(
        name="curves",
        file=EXAMPLES / "nb201_curves_lce.yaml",
        sets=("num_samples=8", "trainable.options.time_scale=0.2", "max_concurrent=4"),
        num_samples=8,
        max_concurrent=4,
        metric="val_acc",
        one_report=False,
        startup_s=12.0,
        results_per_trial=12,
    ),
}


# ----------------------------------------------------------------------------- reading files
def read_state(exp: Path) -> dict[str, dict] | None:
    """trial id -> {status, result} of the newest experiment state in ``exp`` (None: none
    readable). Reads Tune's JSON directly, so the check does not go through raynas."""
    states = sorted(exp.glob("experiment_state-*.json"))
    if not states:
        return None
    try:
        data = json.loads(states[-1].read_bytes())
    except (OSError, ValueError):
        return None
    out = {}
    for trial_json, meta_json in data["trial_data"]:
        trial, meta = json.loads(trial_json), json.loads(meta_json)
        out[trial["trial_id"]] = {
            "status": trial["status"],
            "result": meta.get("last_result") or {},
        }
    return out


def damaged_files(exp: Path) -> list[str]:
    """State files in ``exp`` (top level) that cannot be decoded whole."""
    bad = []
    for f in sorted(exp.iterdir()):
        if not f.is_file() or f.suffix not in (".json", ".pkl"):
            continue
        try:
            data = f.read_bytes()
            if data[:1] == b"\x80":
                pickle.loads(data)
            else:
                json.loads(data)
        except Exception:  # any decoding error: a file cut short
            bad.append(f.name)
    return bad


def result_lines(path: Path) -> list[dict]:
    """The whole JSON lines of a ``result.json`` (a line cut short by a kill is skipped)."""
    out = []
    try:
        text = path.read_text()
    except OSError:
        return out
    for line in text.splitlines():
        try:
            out.append(json.loads(line))
        except ValueError:
            continue
    return out


def staging_dirs(ray_root: Path, name: str) -> list[Path]:
    """Every driver staging folder of experiment ``name`` under a Ray temp/session folder."""
    tail = f"artifacts/*/{name}/driver_artifacts"
    found = [
        *live_glob(ray_root, tail),  # a session folder
        *live_glob(ray_root, f"session_*/{tail}"),  # a Ray temp folder
        *live_glob(ray_root, f"ray/session_*/{tail}"),  # a RAY_TMPDIR
    ]
    return sorted({p.resolve() for p in found})  # session_latest links to a session folder


def state_signature(exp: Path) -> tuple:
    """(name, mtime, size) of every state file in ``exp`` and its hidden raynas folders."""
    sig = []
    for folder in [exp, *(p for p in exp.glob(".raynas*") if p.is_dir())]:
        try:
            entries = list(os.scandir(folder))
        except OSError:
            continue
        for e in entries:
            if e.name.endswith(STATE_SUFFIXES) and e.is_file():
                try:
                    st = e.stat()
                except OSError:
                    continue
                sig.append((folder.name, e.name, st.st_mtime_ns, st.st_size))
    return tuple(sorted(sig))


# ----------------------------------------------------------------------------- the loop
@dataclass
class Kill:
    attempt: int
    kind: str
    at_s: float  # seconds after the driver was started
    finished_on_disk: int  # TERMINATED trials in the newest state right after the kill
    damaged: list[str]  # state files left undecodable by the kill


@dataclass
class Outcome:
    workload: Workload
    seed: int
    exp: Path
    code: str = ""  # the checkout's commit
    kills: list[Kill] = field(default_factory=list)
    attempts: int = 0
    wall_s: float = 0.0
    final_rc: int | None = None
    final: dict[str, dict] = field(default_factory=dict)
    #: trial id -> (metric, iteration, wall time seen) of trials a state on disk showed TERMINATED
    seen_terminated: dict[str, tuple] = field(default_factory=dict)
    evaluations: int = 0
    evaluations_by_trial: Counter = field(default_factory=Counter)
    finished_results: dict[str, set] = field(default_factory=dict)
    trial_folders: int = 0
    empty_folders: int = 0
    orphan_folders: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    lost: list[str] = field(default_factory=list)

    @property
    def running_at_kills(self) -> int:
        """Upper bound of the trials in flight at the kills (max_concurrent each, fewer when
        fewer trials were left unfinished)."""
        n, c = self.workload.num_samples, self.workload.max_concurrent
        return sum(min(c, n - k.finished_on_disk) for k in self.kills)

    @property
    def evals_per_trial(self) -> float:
        return self.evaluations / self.workload.num_samples

    @property
    def target(self) -> float:
        return 1 + self.running_at_kills / self.workload.num_samples


def _revision(repo: Path) -> str:
    out = subprocess.run(
        ["git", "-C", str(repo), "rev-parse", "--short", "HEAD"], capture_output=True, text=True
    )
    return out.stdout.strip() or "?"


def _env(ray_tmp: Path | None, repo: Path) -> dict[str, str]:
    env = dict(os.environ)
    env["RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"] = "0"
    env["PYTHONPATH"] = str(repo) + os.pathsep + env.get("PYTHONPATH", "")
    if ray_tmp is not None:
        env["RAY_TMPDIR"] = str(ray_tmp)
    return env


def _has_state(exp: Path) -> bool:
    """Whether ``exp`` holds a saved state ``raynas resume`` can continue from."""
    return (
        any(exp.glob("experiment_state-*.json")) or (exp / ".raynas-record/state.json").is_file()
    )


def _experiment_file(w: Workload, root: Path) -> Path:
    """``w.file``, or a copy of it whose ``points_to_evaluate`` are cut to ``num_samples``
    (Tune's random search runs every point given, whatever ``num_samples`` says)."""
    import yaml

    spec = yaml.safe_load(w.file.read_text())
    points = (spec.get("searcher") or {}).get("options", {}).get("points_to_evaluate")
    if not points or len(points) <= w.num_samples:
        return w.file
    spec["searcher"]["options"]["points_to_evaluate"] = points[: w.num_samples]
    path = root / w.file.name
    path.write_text(yaml.safe_dump(spec, sort_keys=False))
    return path


def _command(w: Workload, exp: Path, address: str | None) -> list[str]:
    cli = [sys.executable, "-m", "raynas.cli"]
    addr = ["--address", address] if address else []
    if not _has_state(exp):  # killed before its first save: a user runs it again
        sets = [a for s in w.sets for a in ("--set", s)]
        return [
            *cli,
            "run",
            str(_experiment_file(w, exp.parent)),
            "--storage-path",
            str(exp.parent),
            "--name",
            exp.name,
            "-q",
            *sets,
            *addr,
        ]
    return [*cli, "resume", str(exp), *addr]


class _Observer:
    """Reads the newest experiment state now and then; remembers TERMINATED trials."""

    def __init__(self, exp: Path, metric: str, out: Outcome):
        self.exp, self.metric, self.out = exp, metric, out
        self._sig = None
        self._last = 0.0

    def poll(self, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now - self._last < 0.5:
            return
        self._last = now
        states = sorted(self.exp.glob("experiment_state-*.json"))
        if not states:
            return
        try:
            st = states[-1].stat()
        except OSError:
            return
        sig = (states[-1].name, st.st_mtime_ns, st.st_size)
        if sig == self._sig:
            return
        state = read_state(self.exp)
        if state is None:  # being written: next time
            return
        self._sig = sig
        for tid, t in state.items():
            if t["status"] == "TERMINATED" and tid not in self.out.seen_terminated:
                r = t["result"]
                self.out.seen_terminated[tid] = (
                    r.get(self.metric),
                    r.get("training_iteration"),
                    time.time(),
                )


def kill_loop(
    w: Workload,
    root: Path,
    kills: int,
    seed: int,
    address: str | None = None,
    ray_root: Path | None = None,
    attempt_timeout_s: float = 600.0,
    log=print,
    plan: list[tuple[str, float]] | None = None,
    repo: Path = REPO,
) -> Outcome:
    """Run ``w`` in ``root`` through ``kills`` SIGKILLs of its driver, then resume to the end.

    Args:
        w: the workload.
        root: a fresh folder; the experiment goes to ``root/<w.name>``, driver logs to
            ``root/logs``, and (without ``address``) every embedded Ray's files to
            ``root/ray`` (``RAY_TMPDIR``).
        kills: how many times the driver is killed before the loop lets it finish.
        seed: seeds the kinds and moments of the kills.
        address: a running Ray cluster to connect every driver to (None: embedded Ray).
        ray_root: where the drivers' staging folders are (that cluster's session folder)
            when ``address`` is given.
        attempt_timeout_s: a driver running longer than this is a failure of the loop.
        log: progress lines go here.
        plan: the kills to make instead of drawing them, one ``(kind, at)`` per driver: a
            kind of ``KINDS`` with ``at`` seconds after the driver's launch, or
            ``("results", n)``: as soon as the drivers logged ``n`` more final results
            (a kill at a moment of progress, whatever the machine's speed).
        repo: the raynas checkout the CLI runs from (first on ``PYTHONPATH``): another
            worktree measures the code before a change.

    Returns:
        the outcome, checked (``Outcome.problems`` empty when every check passed).
    """
    rng = random.Random(seed)
    # a name of its own: the drivers' staging folders are found by experiment name
    exp = root / f"{w.name}-{uuid.uuid4().hex[:8]}"
    logs = root / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    ray_tmp = None
    if address is None:
        ray_tmp = root / "ray"
        ray_tmp.mkdir(exist_ok=True)
        ray_root = ray_tmp
    out = Outcome(w, seed, exp, code=_revision(repo))
    observer = _Observer(exp, w.metric, out)
    env = _env(ray_tmp, repo)
    t_loop = time.monotonic()
    attempt = 0
    plans = [_Plan.of(kind, at) for kind, at in plan or []]
    counter = _ResultCounter(ray_root, exp.name)
    while True:
        step = None
        if plans:
            step = plans.pop(0)
        elif plan is None and len(out.kills) < kills:
            step = _Plan.draw(rng, w, counter.count(), kills - len(out.kills))
        results_at_start = counter.count()
        with open(logs / f"attempt-{attempt:02d}.log", "w") as logf:
            proc = subprocess.Popen(
                # cwd: `python -m` puts it first on sys.path, before --repo's PYTHONPATH
                _command(w, exp, address),
                env=env,
                stdout=logf,
                stderr=logf,
                cwd=root,
            )
            t0 = time.monotonic()
            armed = None  # state signature when a state-write kill was armed
            due = None  # when the kill (or arming) is due, once its results came in
            killed = None
            try:
                while proc.poll() is None:
                    now = time.monotonic() - t0
                    if now > attempt_timeout_s:
                        proc.kill()
                        raise RuntimeError(f"attempt {attempt} ran over {attempt_timeout_s} s")
                    if exp.is_dir():
                        observer.poll()
                    if step is not None and due is None:
                        if step.after_results is None:
                            due = step.after_s
                        elif counter.count() - results_at_start >= step.after_results:
                            due = now + step.after_s
                    if due is not None and now >= due:
                        if step.kind != "state-write":
                            killed = now
                        elif armed is None:
                            armed = state_signature(exp) if exp.is_dir() else ()
                        elif exp.is_dir() and state_signature(exp) != armed:
                            killed = now
                    if killed is not None:
                        proc.send_signal(signal.SIGKILL)
                        proc.wait()
                        break
                    time.sleep(0.002 if armed is not None else 0.05)
            finally:
                if proc.poll() is None:
                    proc.kill()
                    proc.wait()
        rc = proc.returncode
        if killed is not None:
            observer.poll(force=True)
            on_disk = read_state(exp) if exp.is_dir() else None
            finished = sum(t["status"] == "TERMINATED" for t in (on_disk or {}).values())
            kill = Kill(
                attempt, step.kind, killed, finished, damaged_files(exp) if exp.is_dir() else []
            )
            out.kills.append(kill)
            log(
                f"  [{w.name}] attempt {attempt}: SIGKILL ({kill.kind}) at {killed:.1f} s; "
                f"{finished} trials TERMINATED on disk"
                + (f"; damaged: {', '.join(kill.damaged)}" if kill.damaged else "")
            )
        else:
            log(f"  [{w.name}] attempt {attempt}: exit {rc} after {time.monotonic() - t0:.1f} s")
            if rc != 0:
                tail = (logs / f"attempt-{attempt:02d}.log").read_text()[-2000:]
                out.problems.append(f"attempt {attempt} exited {rc}: ...{tail}")
            out.final_rc = rc
            break
        attempt += 1
    out.attempts = attempt + 1
    out.wall_s = time.monotonic() - t_loop
    _analyse(out, ray_root)
    return out


def _is_final(w: Workload, line: dict) -> bool:
    return (w.metric in line) if w.one_report else bool(line.get("done"))


@dataclass(frozen=True)
class _Plan:
    """When to kill one driver: ``after_s`` seconds after its launch, or ``after_s`` seconds
    after it logged ``after_results`` more results; a ``state-write`` kill then waits for
    the next change of a state file."""

    kind: str
    after_s: float
    after_results: int | None = None

    @classmethod
    def of(cls, kind: str, at: float) -> _Plan:
        """An explicit plan: ``("results", n)`` kills once ``n`` more results were logged;
        any other kind ``at`` seconds after the launch."""
        if kind == "results":
            return cls("running", 0.0, int(at))
        if kind not in KINDS:
            raise ValueError(f"unknown kill kind {kind!r}; expected results or one of {KINDS}")
        return cls(kind, float(at))

    @classmethod
    def draw(cls, rng: random.Random, w: Workload, logged: int, kills_left: int) -> _Plan:
        """A seeded random kill: a start-up kill at a uniform moment of the start-up, or one
        after a uniform number of results (at most an even share of the results left, so
        the other kills land before the end too) plus up to 1 s."""
        kind = rng.choices(KINDS, weights=(0.25, 0.4, 0.35))[0]
        if kind == "startup":
            return cls(kind, rng.uniform(0.2, w.startup_s))
        left = max(1, w.num_samples * w.results_per_trial - logged)
        cap = max(1, left // (kills_left + 1))
        return cls(kind, rng.uniform(0.0, 1.0), rng.randint(1, cap))


class _ResultCounter:
    """Result lines the drivers of one experiment logged, all sessions (files re-read only
    when they grew)."""

    def __init__(self, ray_root: Path | None, name: str) -> None:
        self.ray_root, self.name = ray_root, name
        self._seen: dict[Path, tuple[int, int]] = {}

    def count(self) -> int:
        if self.ray_root is None:
            return 0
        for staging in staging_dirs(self.ray_root, self.name):
            for f in staging.glob("*/result.json"):
                try:
                    size = f.stat().st_size
                except OSError:
                    continue
                if self._seen.get(f, (-1, 0))[0] != size:
                    self._seen[f] = (size, len(result_lines(f)))
        return sum(n for _, n in self._seen.values())


def _analyse(out: Outcome, ray_root: Path | None) -> None:
    w, exp = out.workload, out.exp
    out.final = read_state(exp) or {}
    # evaluations: final results the drivers logged in their staging folders
    finished = defaultdict(set)
    for staging in staging_dirs(ray_root, exp.name) if ray_root else []:
        for f in staging.glob("*/result.json"):
            for line in result_lines(f):
                if _is_final(w, line):
                    out.evaluations += 1
                    out.evaluations_by_trial[line["trial_id"]] += 1
                    finished[line["trial_id"]].add(
                        (line.get(w.metric), line.get("training_iteration"))
                    )
    # trial folders in the experiment folder, and the final results they show
    final_ids = set(out.final)
    for d in sorted(p for p in exp.iterdir() if p.is_dir() and not p.name.startswith(".")):
        if d.name == "search":  # raynas's search-level TensorBoard folder
            continue
        out.trial_folders += 1
        lines = result_lines(d / "result.json")
        if not any(d.iterdir()):
            out.empty_folders += 1
        for line in lines:
            if _is_final(w, line):
                finished[line["trial_id"]].add(
                    (line.get(w.metric), line.get("training_iteration"))
                )
        tid = next((line["trial_id"] for line in lines), None)
        if tid not in final_ids and not any(d.name.endswith(f"_{t}") for t in final_ids):
            out.orphan_folders.append(d.name)
    out.finished_results = dict(finished)

    p = out.problems
    n = w.num_samples
    if out.final_rc != 0:
        p.append(f"the loop did not end with exit 0 (last exit {out.final_rc})")
    states = Counter(t["status"] for t in out.final.values())
    if len(out.final) != n:
        p.append(f"final state holds {len(out.final)} trials, not num_samples={n}")
    if states.get("TERMINATED", 0) != len(out.final):
        p.append(f"final state: {dict(states)} (not all TERMINATED)")
    # (ids are dict keys of the state: count the raw entries for duplicates)
    raw = sorted(exp.glob("experiment_state-*.json"))
    if raw:
        ids = [json.loads(t)["trial_id"] for t, _ in json.loads(raw[-1].read_text())["trial_data"]]
        if len(ids) != len(set(ids)):
            p.append(f"duplicate trial ids in the final state: {len(ids) - len(set(ids))}")
    lost = set()
    for tid, (value, it, _) in out.seen_terminated.items():
        t = out.final.get(tid)
        if not t or t["status"] != "TERMINATED":
            lost.add(tid)
        elif (t["result"].get(w.metric), t["result"].get("training_iteration")) != (value, it):
            lost.add(tid)
    for tid, results in finished.items():
        t = out.final.get(tid)
        if not t or t["status"] != "TERMINATED":
            lost.add(tid)
        elif (t["result"].get(w.metric), t["result"].get("training_iteration")) not in results:
            lost.add(tid)
    out.lost = sorted(lost)
    if lost:
        p.append(f"{len(lost)} finished trials dropped or changed: {', '.join(sorted(lost))}")
    if out.orphan_folders:
        p.append(
            f"{len(out.orphan_folders)} trial folders belong to no trial of the final state: "
            + ", ".join(out.orphan_folders[:5])
        )
    if ray_root is not None and out.evals_per_trial > out.target + 1e-9:
        p.append(
            f"evaluations per trial {out.evals_per_trial:.3f} > target {out.target:.3f} "
            f"({out.evaluations} evaluations, {out.running_at_kills} running at kills)"
        )
    # a trial a state on disk showed TERMINATED must never produce a final result again
    again = [
        tid for tid, c in out.evaluations_by_trial.items() if c > 1 and tid in out.seen_terminated
    ]
    repeated_after = []
    for tid in again:
        seen_at = out.seen_terminated[tid][2]
        stamps = []
        for staging in staging_dirs(ray_root, exp.name):
            for f in staging.glob(f"*{tid}/result.json"):
                stamps += [ln.get("timestamp", 0) for ln in result_lines(f) if _is_final(w, ln)]
        if any(s > seen_at + 1 for s in stamps):
            repeated_after.append(tid)
    if repeated_after:
        p.append(f"trials run again after a state showed them TERMINATED: {repeated_after}")


# ----------------------------------------------------------------------------- report
def table(outcomes: list[Outcome]) -> str:
    head = (
        f"{'code':<8} {'workload':<8} {'seed':>4} {'kills':>5} {'kinds s/r/w':>11} {'damaged':>7} "
        f"{'evals':>5} {'evals/trial':>11} {'target':>6} {'lost':>4} {'trials':>6} "
        f"{'folders':>7} {'orphans':>7} {'wall s':>6}  ok"
    )
    rows = [head, "-" * len(head)]
    for o in outcomes:
        kinds = Counter(k.kind for k in o.kills)
        rows.append(
            f"{o.code:<8} {o.workload.name:<8} {o.seed:>4} {len(o.kills):>5} "
            f"{kinds['startup']:>3}/{kinds['running']:>3}/{kinds['state-write']:>3} "
            f"{sum(bool(k.damaged) for k in o.kills):>7} {o.evaluations:>5} "
            f"{o.evals_per_trial:>11.3f} {o.target:>6.3f} {len(o.lost):>4} "
            f"{len(o.final):>6} {o.trial_folders:>7} {len(o.orphan_folders):>7} "
            f"{o.wall_s:>6.0f}  {'yes' if not o.problems else 'NO'}"
        )
    notes = []
    for o in outcomes:
        for k in o.kills:
            notes.append(
                f"  {o.workload.name} seed {o.seed} attempt {k.attempt}: {k.kind} kill at "
                f"{k.at_s:.1f} s, {k.finished_on_disk} TERMINATED on disk"
                + (f", damaged {k.damaged}" if k.damaged else "")
            )
        for prob in o.problems:
            notes.append(f"  PROBLEM {o.workload.name} seed {o.seed}: {prob}")
    return "\n".join(rows + ["", "kills:", *notes])


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument(
        "--workload", nargs="+", choices=sorted(WORKLOADS), default=["table", "curves"]
    )
    ap.add_argument("--kills", type=int, default=6)
    ap.add_argument("--seeds", type=int, nargs="+", default=[0])
    ap.add_argument("--address", help="a running Ray cluster (default: embedded Ray per driver)")
    ap.add_argument("--ray-root", type=Path, help="that cluster's session folder (--address)")
    ap.add_argument("--root", type=Path, help="work folder (default: a temporary one, removed)")
    ap.add_argument("--out", type=Path, help="also write the table here")
    ap.add_argument(
        "--num-samples", type=int, help="fewer trials than the workload's (smoke runs)"
    )
    ap.add_argument("--repo", type=Path, default=REPO, help="the raynas checkout to run")
    args = ap.parse_args(argv)
    outcomes = []
    for name in args.workload:
        for seed in args.seeds:
            root = (args.root or Path(tempfile.mkdtemp(prefix="driver-kills-"))) / f"{name}-{seed}"
            if root.exists():
                shutil.rmtree(root)
            root.mkdir(parents=True)
            print(f"{name} seed {seed}: {root}", flush=True)
            workload = WORKLOADS[name]
            if args.num_samples:
                workload = workload.scaled(args.num_samples)
            outcomes.append(
                kill_loop(
                    workload,
                    root,
                    args.kills,
                    seed,
                    address=args.address,
                    ray_root=args.ray_root,
                    log=lambda s: print(s, flush=True),
                    repo=args.repo.resolve(),
                )
            )
            if args.root is None and not outcomes[-1].problems:
                shutil.rmtree(root.parent, ignore_errors=True)
    text = table(outcomes)
    print(text)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text + "\n")
    return 0 if all(not o.problems for o in outcomes) else 1


if __name__ == "__main__":
    sys.exit(main())
