"""Read a finished or interrupted experiment folder: leaderboard, trial states, best arch.

The folder may be local or at a URI (``s3://...``); a URI is read through an incremental local
mirror of its small files (``raynas.storage.mirror``).
"""

from __future__ import annotations

import json
import math
import numbers
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from raynas import storage
from raynas.config import ConfigError, ExperimentConfig
from raynas.experiment import CONFIG_FILE, load_experiment_config
from raynas.progress import format_duration, format_value
from raynas.trainables import SEARCH_IN_TRIAL


@dataclass
class Summary:
    config: ExperimentConfig
    trials: pd.DataFrame  # one row per trial: trial_id, status, config/*, last metrics
    states: Counter
    wall_s: float  # first driver start (else first trial start) to the last result
    path: Path | None = None
    #: The experiment folder as the user named it (a URI's secrets masked); ``path`` is the
    #: local folder read (the mirror of a URI).
    location: str | None = None
    #: Seconds the experiment's drivers ran, over all runs and resumes (None: not recorded).
    active_s: float | None = None
    #: trial id -> the trial's folder, relative to ``path``.
    trial_dirs: dict[str, str] = field(default_factory=dict)

    def history(self, trial_id: str) -> pd.DataFrame:
        """Every result a trial reported (its ``result.json``), one row per result in order;
        empty when the trial's folder or file is missing."""
        folder = self.trial_dirs.get(trial_id)
        if self.path is None or folder is None:
            return pd.DataFrame()
        try:
            text = (self.path / folder / "result.json").read_text(errors="replace")
        except OSError:
            return pd.DataFrame()
        rows = []
        for line in text.splitlines():
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError:  # a torn last line of a running trial
                continue
        return pd.DataFrame([r for r in rows if isinstance(r, dict)])

    def errored(self) -> pd.DataFrame:
        """Trials in state ERROR with ``error_file`` (relative to the experiment folder) and
        ``error`` (the last line of Tune's error text, when it could be read)."""
        if "status" not in self.trials:
            return self.trials.iloc[0:0]
        return self.trials[self.trials["status"] == "ERROR"]

    def objectives(self) -> dict[str, str] | None:
        """The searcher's objectives ``{metric: "max" | "min"}`` in order, when it has several
        (the ``objectives`` searcher option); None otherwise."""
        objectives = self.config.searcher.options.get("objectives")
        if not isinstance(objectives, Mapping) or len(objectives) < 2:
            return None
        return {str(m): str(mode) for m, mode in objectives.items()}

    def pareto_front(self) -> pd.DataFrame:
        """Trials no other trial dominates over ``objectives()`` (at least as good on every
        objective, better on one), among those that reported all of them as finite numbers;
        best first by the first objective (then the next ones). Empty without objectives."""
        from raynas.pareto import front

        return front(self.trials, self.objectives() or {})

    def target_fronts(self) -> dict[str, tuple[dict[str, str], pd.DataFrame]]:
        """Per hardware target whose latency the trials report (a ``latency_ms_<target>``
        column, ``raynas.hardware.targets``): ``target -> ({metric: mode, latency column:
        "min"}, front)``, the trials no other trial beats on both the experiment's metric and
        that target's latency (as ``pareto_front``). Empty when no trial reports one."""
        from raynas.hardware.targets import METRIC_PREFIX
        from raynas.pareto import front

        cfg = self.config
        out = {}
        for column in self.trials.columns:
            if str(column).startswith(METRIC_PREFIX) and column != cfg.metric:
                objectives = {cfg.metric: cfg.mode, str(column): "min"}
                out[str(column).removeprefix(METRIC_PREFIX)] = (
                    objectives,
                    front(self.trials, objectives),
                )
        return out

    def ranked(self) -> pd.DataFrame:
        """Trials with a numeric metric, best first."""
        metric = self.config.metric
        if metric not in self.trials:
            return self.trials.iloc[0:0]
        df = self.trials[pd.to_numeric(self.trials[metric], errors="coerce").notna()]
        return df.sort_values(metric, ascending=self.config.mode == "min", kind="stable")


def load(path: str | Path) -> Summary:
    """Summarise the experiment in ``path`` (a folder or URI written by ``raynas run``)."""
    loc = storage.locate(path)
    config = load_experiment_config(loc)
    local = storage.mirror(loc)
    try:
        trials_read = load_trials(local)
    except Exception as e:  # Tune raises several types for a missing/corrupt state
        raise ConfigError(f"cannot read the experiment state in {loc.shown}: {e}") from None
    final = _journaled_endings(loc, local)
    rows = []
    starts, ends = [], []
    trial_dirs = {}
    for trial in trials_read:
        if trial.status in ("RUNNING", "PENDING", "PAUSED") and trial.trial_id in final:
            status, run_metadata = final[trial.trial_id]
            trial.set_status(status)
            trial.restore_run_metadata(run_metadata)
        result = trial.last_result or {}
        row: dict[str, Any] = {"trial_id": trial.trial_id, "status": trial.status}
        row.update({k: v for k, v in result.items() if not isinstance(v, dict)})
        row.update({f"config/{k}": v for k, v in (trial.config or {}).items()})
        error = trial.run_metadata.error_filename
        if trial.status == "ERROR" and error:
            relative = f"{trial.storage.trial_dir_name}/{error}"
            row["error_file"] = relative
            row["error"] = _last_line(local / relative)
        rows.append(row)
        trial_dirs[trial.trial_id] = trial.storage.trial_dir_name
        if "timestamp" in result and "time_total_s" in result:
            ends.append(float(result["timestamp"]))
            starts.append(float(result["timestamp"]) - float(result["time_total_s"]))
    trials = pd.DataFrame(rows)
    states = Counter(trials["status"]) if len(trials) else Counter()
    from raynas import beacon

    wall = (max(ends) - min(starts)) if ends else 0.0
    active = None
    driver = beacon.times(beacon.read(loc))
    if driver is not None:
        first, active, beat = driver
        try:  # `raynas run` writes raynas.yaml just before it starts Ray
            written = loc.info(CONFIG_FILE).mtime
            first = min(first, written.timestamp()) if written is not None else first
        except OSError:
            pass
        wall = max(wall, (max(ends) if ends else beat) - first)
    return Summary(
        config, trials, states, wall, local, loc.shown, trial_dirs=trial_dirs, active_s=active
    )


def _journaled_endings(loc, local: Path) -> dict[str, tuple[str, str]]:
    """Trials whose ending the crash record's journal holds, when no driver runs the
    experiment: trial id -> (TERMINATED or ERROR, Tune's run metadata JSON with the last
    result). Tune's saved state can lag behind (a trial that finished in the last seconds
    before a kill) or be wrong (Tune 2.60 saves a trial that failed for good after its actor
    was lost as still RUNNING, and one that HyperBandForBOHB stopped while it was paused at a
    rung as still PAUSED)."""
    from raynas import beacon
    from raynas.journal import journal_path, read

    if beacon.driver_state(beacon.read(loc)) == "running":
        return {}
    out = {}
    for event in read(journal_path(local)):
        if event["event"] in ("finished", "errored"):
            status = "TERMINATED" if event["event"] == "finished" else "ERROR"
            out[event["trial_id"]] = (status, event["trial"][1])
    return out


def load_trials(folder: Path) -> list:
    """The trials of the newest Tune experiment state in ``folder`` (as Tune's
    ``ExperimentAnalysis`` reads them, without reading every trial's result file: each trial's
    last result is in the state).

    Raises:
        ValueError: the folder holds no experiment state.
    """
    from ray.tune.experiment import Trial
    from ray.tune.utils.serialization import _loads_with_cloudpickle

    states = sorted(p.name for p in folder.glob("experiment_state-*.json"))
    if not states:
        raise ValueError(f"no experiment_state-*.json in {folder}")
    state = _loads_with_cloudpickle((folder / states[-1]).read_bytes())
    trials = []
    for json_state, run_metadata in state["trial_data"]:
        trial = Trial.from_json_state(json_state, stub=True)
        trial.restore_run_metadata(run_metadata)
        trials.append(trial)
    return trials


def _last_line(file: Path) -> str | None:
    """The last non-empty line of a text file (the exception of a Tune error.txt)."""
    try:
        lines = [line for line in file.read_text(errors="replace").splitlines() if line.strip()]
    except OSError:
        return None
    return lines[-1].strip()[:300] if lines else None


_fmt = format_value  # the one way numbers are shown (4 significant digits)


def expected_trials(config: ExperimentConfig) -> int:
    """Trials the experiment runs: ``num_samples`` times the trainable's grid (darts sweep)."""
    from raynas import trainables

    return config.num_samples * trainables.grid_size(
        config.trainable.name, **config.trainable.options
    )


def format_trial_count(summary: Summary) -> str:
    """``12 of num_samples=12``, or ``2 of 2 = num_samples 1 x 2 grid values`` for a sweep."""
    cfg = summary.config
    n = sum(summary.states.values())
    total = expected_trials(cfg)
    if total == cfg.num_samples:
        return f"{n} of num_samples={cfg.num_samples}"
    grid = total // cfg.num_samples
    return f"{n} of {total} = num_samples {cfg.num_samples} x {grid} grid values"


def format_wall_time(summary: Summary) -> str:
    """``41s`` (from ``raynas run``'s start, Ray's start-up included, to the last result, or
    to the last driver beat before any result), with the time the drivers ran when known."""
    text = f"{format_duration(summary.wall_s)} (first start to last result)"
    if summary.active_s is not None:
        text += f", drivers running {format_duration(summary.active_s)}"
    return text


def format_report(summary: Summary, top: int = 10) -> str:
    """Plain-text leaderboard as printed by ``raynas report``."""
    cfg = summary.config
    lines = [
        f"experiment: {cfg.name}   space: {cfg.space.name}   searcher: {cfg.searcher.name}   "
        f"scheduler: {cfg.scheduler.name}   trainable: {cfg.trainable.name}",
        f"trials: {format_trial_count(summary)}   "
        + "   ".join(f"{s.lower()}: {n}" for s, n in sorted(summary.states.items())),
        f"wall time: {format_wall_time(summary)}",
        "",
        f"top {top} architectures by {cfg.metric} ({cfg.mode}; trials: how many evaluated it):",
    ]
    ranked = summary.ranked()
    if "arch" in ranked:  # searchers such as TPE suggest an architecture again: list it once
        key = _evaluation_key(ranked)
        counts = key.value_counts()
        ranked = ranked[~(key.duplicated() & ranked["arch"].notna())]
        ranked = ranked.assign(trials=key[ranked.index].map(counts).fillna(1).astype(int))
    ranked = ranked.head(top)
    columns = [
        c
        for c in (cfg.metric, "test_acc", "params_m", "flops_m", "cost_s", "training_iteration")
        if c in ranked
    ]
    columns = list(dict.fromkeys(columns))
    if "trials" in ranked:
        columns.append("trials")
    header = ["rank", "trial_id", *columns, "arch"]
    table = [header]
    for rank, (_, row) in enumerate(ranked.iterrows(), start=1):
        table.append(
            [
                str(rank),
                str(row["trial_id"]),
                *(_fmt(row[c]) for c in columns),
                str(row.get("arch", "")),
            ]
        )
    lines += _align(table)
    if len(table) == 1:
        lines.append("(no trial reported the metric yet)")
    objectives = summary.objectives()
    fronts = summary.target_fronts()
    for target, (target_objectives, front) in fronts.items():
        lines += ["", f"hardware target {target}:"]
        lines += _format_front(front, target_objectives)
    if objectives and not fronts:
        lines += ["", *_format_front(summary.pareto_front(), objectives)]
    errors = format_errors(summary)
    if errors:
        lines += ["", errors]
    if summary.path is not None:
        from raynas.decision_report import summarise_decisions

        decisions = summarise_decisions(summary.path)
        if decisions:
            lines += ["", decisions]
    return "\n".join(lines)


def _evaluation_key(ranked: pd.DataFrame) -> pd.Series:
    """What makes two trials the same evaluation: the architecture they report AND the same
    config. A searcher that suggests an architecture again gives an equal config; trials that
    report one architecture from different configs (supernets or one-shot searches of several
    seeds, which all report the architecture they found) stay separate rows."""
    config = [c for c in ranked.columns if c.startswith("config/")]
    parts = ranked[["arch", *config]].astype(str)
    return parts.apply("\x1f".join, axis=1)


def format_errors(summary: Summary, top: int = 10) -> str:
    """The errored trials, each with its error and error file; "" when none errored."""
    errored = summary.errored()
    if errored.empty:
        return ""
    where = summary.location or str(summary.path or "")
    lines = [f"errored trials ({len(errored)}; the error, then its file in {where}):"]
    for _, row in errored.head(top).iterrows():
        error = row.get("error") if isinstance(row.get("error"), str) else "(no error text)"
        lines.append(f"  {row['trial_id']}  {error}")
        if isinstance(row.get("error_file"), str):
            lines.append(f"    {row['error_file']}")
    if len(errored) > top:
        lines.append(f"  ... and {len(errored) - top} more")
    return "\n".join(lines)


def _align(table: list[list[str]]) -> list[str]:
    """Rows with every column but the last (free text) padded to its width."""
    widths = [max(len(r[i]) for r in table) for i in range(len(table[0]) - 1)]
    return [
        "  ".join(c.ljust(w) for c, w in zip(r[:-1], widths, strict=False)) + "  " + r[-1]
        for r in table
    ]


def _format_front(front: pd.DataFrame, objectives: dict[str, str]) -> list[str]:
    names = ", ".join(f"{m} ({mode})" for m, mode in objectives.items())
    lines = [f"pareto front over {names}: {len(front)} non-dominated trials"]
    if front.empty:
        return [*lines, "(no trial reported every objective yet)"]
    table = [["trial_id", *objectives, "arch"]]
    for _, row in front.iterrows():
        table.append(
            [str(row["trial_id"]), *(_fmt(row[m]) for m in objectives), str(row.get("arch", ""))]
        )
    return lines + _align(table)


def best(
    summary: Summary, target: str | None = None, max_latency_ms: float | None = None
) -> dict[str, Any]:
    """The best trial as exported by ``raynas export``: config, arch, genotype, metrics.

    Args:
        summary: the experiment.
        target: with ``max_latency_ms``, a hardware target whose latency the trials report
            (``latency_ms_<target>``): the best trial within that latency budget.
        max_latency_ms: the budget (ms) on ``target``'s latency.

    Raises:
        ConfigError: no trial reported the metric, the target's latency is not reported, or
            no trial is within the budget.
    """
    import search_spaces

    ranked = summary.ranked()
    if ranked.empty:
        raise ConfigError(
            f"no trial of {summary.config.name!r} reported {summary.config.metric!r}"
        )
    if (target is None) != (max_latency_ms is None):
        raise ConfigError("--target and --max-latency-ms go together")
    if target is not None:
        from raynas.hardware.targets import METRIC_PREFIX

        column = METRIC_PREFIX + target
        if column not in ranked:
            have = [c.removeprefix(METRIC_PREFIX) for c in ranked if c.startswith(METRIC_PREFIX)]
            raise ConfigError(
                f"the trials of {summary.config.name!r} report no latency for target "
                f"{target!r}; targets reported: {', '.join(have) or 'none'}"
            )
        latency = pd.to_numeric(ranked[column], errors="coerce")
        within = ranked[latency <= max_latency_ms]
        if within.empty:
            raise ConfigError(
                f"no trial of {summary.config.name!r} has {column} <= {max_latency_ms:g} ms "
                f"(the fastest: {latency.min():.4g} ms)"
            )
        ranked = within
    row = ranked.iloc[0]
    config = {k.removeprefix("config/"): v for k, v in row.items() if k.startswith("config/")}
    space = search_spaces.get(summary.config.space.name, **summary.config.space.options)
    if summary.config.trainable.name in SEARCH_IN_TRIAL:
        # A one-shot trial ignores its sampled cell; its result is the derived genotype.
        genotype = space.from_str(str(row["arch"]))
        config = space.encode(genotype)
    else:
        genotype = space.decode(config)
    # numbers.Number: pandas hands back numpy scalars (np.int64 is no int)
    metrics = {
        k: (None if isinstance(v, numbers.Real) and math.isnan(v) else v)
        for k, v in row.items()
        if not k.startswith("config/") and isinstance(v, numbers.Number | str)
    }
    return json.loads(
        json.dumps(
            {
                "space": summary.config.space.name,
                "space_options": summary.config.space.options,
                "arch": space.to_str(genotype),
                "genotype": space.to_json(genotype),
                "config": config,
                "metric": summary.config.metric,
                "mode": summary.config.mode,
                "metrics": metrics,
            },
            default=_json_default,
        )
    )


def _json_default(value: Any) -> Any:
    if hasattr(value, "item"):
        return value.item()
    return str(value)
