"""Pictures of a search, drawn with matplotlib (Agg, no display) from ``raynas.results``.

``write_plots(summaries, folder)`` writes the PNGs that ``raynas report PATH... --plot DIR``
prints; only those that apply to the experiments are written:

* ``best_so_far.png``: the best metric so far against the number of finished trials, one
  curve per experiment (labelled ``name (searcher)``), one panel per metric;
* ``pareto_front.png``: every finished trial on the first two objectives of a multi-objective
  run, the non-dominated ones joined;
* ``target_fronts.png``: for an experiment whose trials report ``latency_ms_<target>`` for
  hardware targets (``raynas.hardware.targets``), one panel per target: every finished trial's
  metric against that target's latency, the target's Pareto front joined (drawn instead of
  ``pareto_front.png``);
* ``op_frequency.png``: how often each value (op, input, depth...) of each architecture key
  was chosen over the finished trials;
* ``scheduler_decisions.png``: what a decision-logging scheduler (``lce``, ``tse``) saw of
  every trial against its ``time_attr``, where it stopped which trial, and its stops and
  completions over wall-clock time;
* ``alpha_<trial>.png``: softmax(α) of every edge against the epoch, for each trial of the
  ``darts`` trainable.

With several experiments the per-experiment files are prefixed with the experiment's name.
The figure functions take plain data (``pandas`` frames, lists of records), so the
search-level TensorBoard callback draws the same pictures from Tune's trials.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from raynas.config import ConfigError
from raynas.trainables import SEARCH_IN_TRIAL

#: The decision log of raynas's schedulers (one JSON object per line) in an experiment folder.
DECISIONS_FILE = "scheduler_decisions.jsonl"
_DPI = 100


def _figure(width: float, height: float):
    # matplotlib's object API with the Agg canvas: no pyplot, no global backend, no display.
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=_DPI, layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def figure_image(fig) -> np.ndarray:
    """The figure rendered as an (H, W, 3) uint8 RGB array (for TensorBoard images)."""
    fig.canvas.draw()
    return np.asarray(fig.canvas.buffer_rgba())[..., :3].copy()


# ------------------------------------------------------------------------------ data
def finished(trials: pd.DataFrame) -> pd.DataFrame:
    """The finished trials (Tune status TERMINATED, early-stopped ones included), in the order
    they finished (their last result's ``timestamp``, then their id)."""
    if "status" not in trials:
        return trials.iloc[0:0]
    done = trials[trials["status"] == "TERMINATED"]
    keys = [c for c in ("timestamp", "trial_id") if c in done]
    return done.sort_values(keys, kind="stable") if keys else done


def best_so_far(values: Sequence[float], mode: str) -> np.ndarray:
    """The running best of ``values`` (max or min by ``mode``); NaN before the first number,
    and a NaN value does not change the best."""
    out = np.full(len(values), np.nan)
    best = math.nan
    for i, v in enumerate(values):
        v = float(v)
        if not math.isnan(v) and (math.isnan(best) or (v > best if mode == "max" else v < best)):
            best = v
        out[i] = best
    return out


def op_frequencies(
    configs: pd.DataFrame, choices: Mapping[str, Sequence[Any]] | None = None
) -> pd.DataFrame:
    """Fraction of the rows of ``configs`` (one architecture per row, one column per key) that
    chose each value of each key.

    Args:
        configs: architecture keys as columns (without the ``config/`` prefix).
        choices: the allowed values of each key (e.g. a Tune categorical's ``categories``);
            keys missing here use the values seen. Only these keys are counted when given.

    Returns:
        Rows: keys; columns: every value of any key (as text), in first-seen order; NaN where
        a value is not a choice of that key.
    """
    keys = list(choices) if choices else list(configs.columns)
    keys = [k for k in keys if k in configs]
    columns: dict[str, None] = {}
    options = {}
    for key in keys:
        seen = list(dict.fromkeys(configs[key].dropna().tolist()))
        allowed = list((choices or {}).get(key) or seen)
        options[key] = [str(v) for v in allowed]
        columns.update(dict.fromkeys(options[key]))
    table = pd.DataFrame(np.nan, index=keys, columns=list(columns), dtype=float)
    n = len(configs)
    for key in keys:
        counts = configs[key].astype(str).value_counts()
        for value in options[key]:
            table.loc[key, value] = counts.get(value, 0) / n if n else 0.0
    return table


def architecture_configs(summary) -> tuple[pd.DataFrame, dict[str, list]]:
    """The architecture keys of the finished trials of ``summary`` and each key's choices.

    For the ``darts`` trainable (whose trials ignore their sampled cell) each trial's derived
    genotype (``arch``) is encoded instead. Keys whose choices are unknown (not a categorical
    of the space) are left out.
    """
    import search_spaces

    done = finished(summary.trials)
    cfg = summary.config
    try:
        space = search_spaces.get(cfg.space.name, **cfg.space.options)
        domains = space.tune_space()
    except (TypeError, ValueError):  # a space that no longer builds: use what was chosen
        space, domains = None, {}
    choices = categorical_choices(domains) or None
    if cfg.trainable.name in SEARCH_IN_TRIAL and space is not None and "arch" in done:
        rows = [space.encode(space.from_str(str(a))) for a in done["arch"].dropna()]
        return pd.DataFrame(rows), choices or {}
    configs = done[[c for c in done if c.startswith("config/")]]
    configs = configs.rename(columns=lambda c: c.removeprefix("config/"))
    if choices is None:
        choices = {
            k: list(dict.fromkeys(configs[k].dropna()))
            for k in configs
            if configs[k].map(lambda v: isinstance(v, str)).all()
        }
    return configs, choices


def categorical_choices(domains: Mapping[str, Any]) -> dict[str, list]:
    """The values of each categorical key of a Tune search space (``space.tune_space()``)."""
    return {k: list(d.categories) for k, d in domains.items() if hasattr(d, "categories")}


def read_decisions(folder: Path) -> list[dict[str, Any]]:
    """The records of the scheduler decision log in an experiment folder ([] when it has
    none); a torn or malformed line is skipped."""
    path = Path(folder) / DECISIONS_FILE
    if not path.is_file():
        return []
    out = []
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(record, dict):
            out.append(record)
    return out


# ------------------------------------------------------------------------------ figures
def best_so_far_figure(curves: Mapping[str, tuple[pd.Series, str, str]]):
    """Best-so-far against finished trials.

    Args:
        curves: label -> (the metric of each finished trial in finish order, metric, mode).
            Curves of the same metric share a panel.
    """
    panels: dict[tuple[str, str], list[str]] = {}
    for label, (_, metric, mode) in curves.items():
        panels.setdefault((metric, mode), []).append(label)
    fig = _figure(7.0, 4.2 * len(panels))
    axes = fig.subplots(len(panels), 1, squeeze=False)[:, 0]
    for ax, ((metric, mode), labels) in zip(axes, panels.items(), strict=True):
        for i, label in enumerate(labels):
            values = pd.to_numeric(curves[label][0], errors="coerce").to_numpy(float)
            x = np.arange(1, len(values) + 1)
            colour = f"C{i % 10}"
            ax.plot(x, values, ".", color=colour, alpha=0.3, markersize=5)
            ax.step(x, best_so_far(values, mode), where="post", color=colour, label=label)
        ax.set_xlabel("finished trials")
        ax.set_ylabel(f"best {metric} so far ({mode})")
        ax.grid(alpha=0.3)
        ax.legend(loc="lower right" if mode == "max" else "upper right", fontsize="small")
    fig.suptitle("best so far (dots: each trial)")
    return fig


def _pareto_axes(
    ax, trials: pd.DataFrame, front: pd.DataFrame, x: str, x_mode: str, y: str, y_mode: str
) -> None:
    xs = pd.to_numeric(trials[x], errors="coerce")
    ys = pd.to_numeric(trials[y], errors="coerce")
    ax.scatter(xs, ys, s=14, color="0.6", label=f"trials ({len(trials)})")
    f = front.sort_values(x)
    ax.plot(
        pd.to_numeric(f[x], errors="coerce"),
        pd.to_numeric(f[y], errors="coerce"),
        "o-",
        color="C3",
        markersize=6,
        # the edge of the region the front dominates
        drawstyle="steps-pre" if x_mode == "max" else "steps-post",
        label=f"non-dominated ({len(front)})",
    )
    ax.set_xlabel(f"{x} ({x_mode})")
    ax.set_ylabel(f"{y} ({y_mode})")
    ax.grid(alpha=0.3)
    ax.legend(fontsize="small")


def pareto_figure(trials: pd.DataFrame, front: pd.DataFrame, objectives: Mapping[str, str]):
    """Finished trials on the first two objectives, the Pareto front highlighted."""
    (x, x_mode), (y, y_mode) = list(objectives.items())[:2]
    fig = _figure(6.5, 5.0)
    ax = fig.subplots()
    _pareto_axes(ax, trials, front, x, x_mode, y, y_mode)
    extra = list(objectives)[2:]
    title = "Pareto front"
    if extra:
        title += f" (first two objectives; also ranked on {', '.join(extra)})"
    ax.set_title(title)
    return fig


def target_fronts_figure(
    trials: pd.DataFrame, fronts: Mapping[str, tuple[dict[str, str], pd.DataFrame]]
):
    """One panel per hardware target: every finished trial's accuracy against that target's
    latency, the target's Pareto front highlighted (``Summary.target_fronts``)."""
    fig = _figure(5.0 * len(fronts), 4.5)
    axes = fig.subplots(1, len(fronts), squeeze=False)[0]
    for ax, (target, (objectives, front)) in zip(axes, fronts.items(), strict=True):
        (y, y_mode), (x, x_mode) = list(objectives.items())
        _pareto_axes(ax, trials, front, x, x_mode, y, y_mode)
        ax.set_title(f"target {target}")
    fig.suptitle("Pareto front per hardware target")
    return fig


def op_frequency_figure(table: pd.DataFrame, n_trials: int):
    """A heatmap of ``op_frequencies``: rows keys, columns values, cells the fraction."""
    rows, cols = table.shape
    fig = _figure(
        max(5.0, 1.0 + 0.75 * cols + 0.08 * max(map(len, table.index))), 1.6 + 0.35 * rows
    )
    ax = fig.subplots()
    data = np.ma.masked_invalid(table.to_numpy(float))
    image = ax.imshow(data, aspect="auto", cmap="viridis", vmin=0.0, vmax=1.0)
    ax.set_xticks(range(cols), table.columns, rotation=40, ha="right", fontsize="small")
    ax.set_yticks(range(rows), table.index, fontsize="small")
    if rows * cols <= 300:
        for (i, j), v in np.ndenumerate(table.to_numpy(float)):
            if not math.isnan(v):
                colour = "black" if v > 0.6 else "white"
                ax.text(j, i, f"{v:.0%}", ha="center", va="center", fontsize=7, color=colour)
    fig.colorbar(image, ax=ax, label="fraction of trials")
    ax.set_title(f"choices over {n_trials} finished trials")
    return fig


def decisions_figure(records: Sequence[Mapping[str, Any]]):
    """What a scheduler saw of each trial and where it stopped it, and stops over time.

    Args:
        records: the decision log's records (``read_decisions``).
    """
    results = [
        r
        for r in records
        if r.get("t") is not None and isinstance(r.get("obs"), dict) and not r.get("repeat")
    ]
    kinds = sorted({str(r.get("scheduler")) for r in results})
    time_attr = next((str(r.get("time_attr")) for r in results), "t")
    observed = next((k for r in results for k in r["obs"]), "value")
    fig = _figure(12.0, 4.6)
    left, right = fig.subplots(1, 2)
    by_trial: dict[str, list] = {}
    for r in results:
        by_trial.setdefault(str(r["trial_id"]), []).append(r)
    start = min((float(r["time"]) for r in results if "time" in r), default=0.0)
    stops, completions = [], []
    for rows in by_trial.values():
        rows = sorted({float(r["t"]): r for r in rows}.values(), key=lambda r: float(r["t"]))
        t = [float(r["t"]) for r in rows]
        y = [_first_number(r["obs"]) for r in rows]
        early = next((r for r in rows if r.get("decision") == "STOP" and r.get("early")), None)
        colour = "C3" if early else "C0"
        left.plot(t, y, "-", color=colour, alpha=0.5, linewidth=1)
        if early is not None:
            left.plot(float(early["t"]), _first_number(early["obs"]), "x", color="C3")
            stops.append(float(early.get("time", start)) - start)
        elif rows[-1].get("decision") == "STOP":
            left.plot(t[-1], y[-1], "o", color="C0", markersize=3)
            completions.append(float(rows[-1].get("time", start)) - start)
    left.set_xlabel(time_attr)
    left.set_ylabel(f"{observed} (what the scheduler saw)")
    left.set_title(f"{len(stops)} stopped early (x), {len(completions)} ran to the end (o)")
    left.grid(alpha=0.3)
    for times, label, colour in ((stops, "stopped early", "C3"), (completions, "ended", "C0")):
        times = sorted(times)
        right.step(times, np.arange(1, len(times) + 1), where="post", color=colour, label=label)
    right.set_xlabel("seconds since the first decision")
    right.set_ylabel("trials")
    right.set_title("decisions over time")
    right.grid(alpha=0.3)
    right.legend(fontsize="small")
    fig.suptitle(f"scheduler decisions ({', '.join(kinds)})")
    return fig


def _first_number(obs: Mapping[str, Any]) -> float:
    for value in obs.values():
        if isinstance(value, int | float) and not isinstance(value, bool):
            return float(value)
    return math.nan


def alpha_figure(
    history: pd.DataFrame, edges: Mapping[str, Sequence[str]], ops: Sequence[str], title: str
):
    """softmax(α) of every edge against the epoch: one panel per edge, one line per op.

    Args:
        history: one row per epoch with ``epoch`` and ``alpha_<cell type>`` (edges x ops).
        edges: cell type -> edge labels (one per α row).
        ops: op names (one per α column).
        title: the figure's title.
    """
    cells = [t for t in edges if f"alpha_{t}" in history]
    n = sum(len(edges[t]) for t in cells)
    columns = min(n, 7)
    rows = math.ceil(n / columns)
    fig = _figure(2.3 * columns + 1.8, 2.3 * rows + 0.9)
    axes = fig.subplots(rows, columns, squeeze=False, sharex=True, sharey=True).ravel()
    epochs = pd.to_numeric(history["epoch"], errors="coerce").to_numpy(float)
    i = 0
    for t in cells:
        alphas = np.array([_as_array(a) for a in history[f"alpha_{t}"]])  # epochs x edges x ops
        weights = np.exp(alphas - alphas.max(axis=-1, keepdims=True))
        weights /= weights.sum(axis=-1, keepdims=True)
        for e, label in enumerate(edges[t]):
            ax = axes[i]
            for o, op in enumerate(ops):
                ax.plot(epochs, weights[:, e, o], color=f"C{o % 10}", label=op)
            ax.set_title(f"{t} {label}", fontsize="small")
            ax.grid(alpha=0.3)
            i += 1
    for ax in axes[i:]:
        ax.set_visible(False)
    handles, labels = axes[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="outside right center", fontsize="small")
    fig.supxlabel("epoch")
    fig.supylabel("softmax(α)")
    fig.suptitle(title)
    return fig


def _as_array(value: Any) -> np.ndarray:
    return np.asarray(json.loads(value) if isinstance(value, str) else value, dtype=float)


def alpha_labels(summary, shape: tuple[int, int]) -> tuple[list[str], list[str]]:
    """Edge and op labels of a ``darts`` trial's α of ``shape`` (edges, ops) in the
    experiment's space; ``edge i`` / ``op j`` where the space does not say."""
    import search_spaces

    edges = [f"edge {i}" for i in range(shape[0])]
    ops = [f"op {j}" for j in range(shape[1])]
    try:
        domains = search_spaces.get(summary.config.space.name, **summary.config.space.options)
        domains = domains.tune_space()
    except (TypeError, ValueError):
        return edges, ops
    if summary.config.space.name == "nb201":
        keys = [k for k in domains if k.startswith("edge.")]
        if len(keys) == shape[0] and len(domains[keys[0]].categories) == shape[1]:
            return [k.removeprefix("edge.") for k in keys], list(domains[keys[0]].categories)
    first = next((d for k, d in domains.items() if k.endswith(".op0")), None)
    if first is not None and len(first.categories) + 1 == shape[1]:  # DARTS: "none" first
        nodes = sum(1 for k in domains if re.fullmatch(r"normal\.n\d+\.op0", k))
        labels = [f"{n + 2}<-{i}" for n in range(nodes) for i in range(n + 2)]
        if len(labels) == shape[0]:
            edges = labels
        ops = ["none", *first.categories]
    return edges, ops


# ------------------------------------------------------------------------------ writing
def write_plots(summaries: Sequence, folder: str | Path) -> list[Path]:
    """Write the PNGs that apply to ``summaries`` (from ``raynas.results.load``) into
    ``folder`` (created when missing) and return their paths.

    Raises:
        ConfigError: ``folder`` is not a folder (or cannot be made), or no experiment has a
            finished trial that reported its metric.
    """
    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        raise ConfigError(f"--plot {folder} is a file, not a folder")
    curves = {}
    for summary in summaries:
        cfg = summary.config
        done = finished(summary.trials)
        values = pd.to_numeric(done.get(cfg.metric, pd.Series(dtype=float)), errors="coerce")
        if values.notna().any():
            curves[_unique(f"{cfg.name} ({cfg.searcher.name})", curves)] = (
                values,
                cfg.metric,
                cfg.mode,
            )
    if not curves:
        names = ", ".join(repr(s.location or s.config.name) for s in summaries)
        raise ConfigError(f"nothing to plot: no finished trial reported its metric in {names}")
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise ConfigError(f"cannot create --plot folder {folder}: {e.strerror or e}") from None
    written = [_save(best_so_far_figure(curves), folder / "best_so_far.png")]
    prefixes: dict[str, None] = {}
    for summary in summaries:
        prefix = ""
        if len(summaries) > 1:
            prefix = _unique(_safe(str(summary.config.name)), prefixes) + "-"
            prefixes[prefix[:-1]] = None
        written += _experiment_plots(summary, folder, prefix)
    return written


def _experiment_plots(summary, folder: Path, prefix: str) -> list[Path]:
    out = []
    done = finished(summary.trials)
    objectives = summary.objectives()
    fronts = summary.target_fronts() if len(done) else {}
    if any(len(front) for _, front in fronts.values()):
        fig = target_fronts_figure(done, fronts)
        out.append(_save(fig, folder / f"{prefix}target_fronts.png"))
    elif objectives and len(done):
        front = summary.pareto_front()
        if len(front):
            fig = pareto_figure(done, front, objectives)
            out.append(_save(fig, folder / f"{prefix}pareto_front.png"))
    configs, choices = architecture_configs(summary)
    table = op_frequencies(configs, choices) if len(configs) else pd.DataFrame()
    if table.size:
        fig = op_frequency_figure(table, len(configs))
        out.append(_save(fig, folder / f"{prefix}op_frequency.png"))
    records = read_decisions(summary.path) if summary.path is not None else []
    if any(r.get("t") is not None and isinstance(r.get("obs"), dict) for r in records):
        out.append(_save(decisions_figure(records), folder / f"{prefix}scheduler_decisions.png"))
    if summary.config.trainable.name in SEARCH_IN_TRIAL:
        for trial_id in summary.trials.get("trial_id", []):
            history = summary.history(trial_id)
            alpha = [c for c in history if c.startswith("alpha_") and "entropy" not in c]
            if not alpha or "epoch" not in history:
                continue
            shape = _as_array(history[alpha[0]].iloc[0]).shape
            edges, ops = alpha_labels(summary, shape)
            cells = {c.removeprefix("alpha_"): edges for c in alpha}
            title = f"{summary.config.name}: trial {trial_id}"
            fig = alpha_figure(history, cells, ops, title)
            out.append(_save(fig, folder / f"{prefix}alpha_{_safe(str(trial_id))}.png"))
    return out


def _save(fig, path: Path) -> Path:
    fig.savefig(path, dpi=_DPI)
    return path


def _safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", name).strip("._") or "experiment"


def _unique(name: str, taken: Mapping[str, Any]) -> str:
    out, i = name, 2
    while out in taken:
        out, i = f"{name}-{i}", i + 1
    return out
