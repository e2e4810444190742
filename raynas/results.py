"""Read a finished or interrupted experiment folder: leaderboard, trial states, best arch."""

from __future__ import annotations

import json
import math
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from raynas.config import ConfigError, ExperimentConfig
from raynas.experiment import load_experiment_config


@dataclass
class Summary:
    config: ExperimentConfig
    trials: pd.DataFrame  # one row per trial: trial_id, status, config/*, last metrics
    states: Counter
    wall_s: float
    path: Path | None = None

    def ranked(self) -> pd.DataFrame:
        """Trials with a numeric metric, best first."""
        metric = self.config.metric
        if metric not in self.trials:
            return self.trials.iloc[0:0]
        df = self.trials[pd.to_numeric(self.trials[metric], errors="coerce").notna()]
        return df.sort_values(metric, ascending=self.config.mode == "min", kind="stable")


def load(path: str | Path) -> Summary:
    """Summarise the experiment in ``path`` (a folder written by ``raynas run``)."""
    from ray.tune import ExperimentAnalysis

    path = Path(path).expanduser().resolve()
    config = load_experiment_config(path)
    try:
        analysis = ExperimentAnalysis(str(path))
    except Exception as e:  # Tune raises several types for a missing/corrupt state
        raise ConfigError(f"cannot read the experiment state in {path}: {e}") from None
    rows = []
    starts, ends = [], []
    for trial in analysis.trials:
        result = trial.last_result or {}
        row: dict[str, Any] = {"trial_id": trial.trial_id, "status": trial.status}
        row.update({k: v for k, v in result.items() if not isinstance(v, dict)})
        row.update({f"config/{k}": v for k, v in (trial.config or {}).items()})
        rows.append(row)
        if "timestamp" in result and "time_total_s" in result:
            ends.append(float(result["timestamp"]))
            starts.append(float(result["timestamp"]) - float(result["time_total_s"]))
    trials = pd.DataFrame(rows)
    states = Counter(trials["status"]) if len(trials) else Counter()
    wall = (max(ends) - min(starts)) if ends else 0.0
    return Summary(config, trials, states, wall, path)


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return (
            "nan" if math.isnan(value) else f"{value:.4g}" if abs(value) < 1e4 else f"{value:.0f}"
        )
    return str(value)


def format_report(summary: Summary, top: int = 10) -> str:
    """Plain-text leaderboard as printed by ``raynas report``."""
    cfg = summary.config
    lines = [
        f"experiment: {cfg.name}   space: {cfg.space.name}   searcher: {cfg.searcher.name}   "
        f"scheduler: {cfg.scheduler.name}   trainable: {cfg.trainable.name}",
        f"trials: {sum(summary.states.values())} of num_samples={cfg.num_samples}   "
        + "   ".join(f"{s.lower()}: {n}" for s, n in sorted(summary.states.items())),
        f"wall time: {summary.wall_s:.1f} s",
        "",
        f"top {top} by {cfg.metric} ({cfg.mode}):",
    ]
    ranked = summary.ranked().head(top)
    columns = [
        c
        for c in (cfg.metric, "test_acc", "params_m", "flops_m", "cost_s", "training_iteration")
        if c in ranked
    ]
    columns = list(dict.fromkeys(columns))
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
    widths = [max(len(r[i]) for r in table) for i in range(len(header) - 1)]
    for r in table:
        lines.append(
            "  ".join(c.ljust(w) for c, w in zip(r[:-1], widths, strict=False)) + "  " + r[-1]
        )
    if len(table) == 1:
        lines.append("(no trial reported the metric yet)")
    if summary.path is not None:
        from schedulers.decisions import summarise_decisions

        decisions = summarise_decisions(summary.path)
        if decisions:
            lines += ["", decisions]
    return "\n".join(lines)


def best(summary: Summary) -> dict[str, Any]:
    """The best trial as exported by ``raynas export``: config, arch, genotype, metrics."""
    import search_spaces

    ranked = summary.ranked()
    if ranked.empty:
        raise ConfigError(
            f"no trial of {summary.config.name!r} reported {summary.config.metric!r}"
        )
    row = ranked.iloc[0]
    config = {k.removeprefix("config/"): v for k, v in row.items() if k.startswith("config/")}
    space = search_spaces.get(summary.config.space.name, **summary.config.space.options)
    if summary.config.trainable.name == "darts":
        # A DARTS trial ignores its sampled cell; its result is the derived genotype.
        genotype = space.from_str(str(row["arch"]))
        config = space.encode(genotype)
    else:
        genotype = space.decode(config)
    metrics = {
        k: (None if isinstance(v, float) and math.isnan(v) else v)
        for k, v in row.items()
        if not k.startswith("config/") and isinstance(v, int | float | str)
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
