"""TensorBoard views of a search and the ``raynas tensorboard`` server.

What a user sees first is the search: TensorBoard orders its groups of charts by name, and
``search/`` comes before ``trial/``.

``SearchProgressCallback`` writes the view of the search as a whole under
``<experiment>/search``: the metric of every completed trial and the best so far, against the
number of completed trials, the best architecture as text, and the pictures of
``raynas.plots`` (best so far, op frequency) as images, redrawn as the search goes on. With a
URI storage path the file is written into Tune's driver staging folder, which Tune uploads to
the experiment folder with its own state (the images of the end, drawn after Tune's last
upload, are copied there by the callback).

``TrialBoard`` replaces Tune's per-trial TensorBoardX logger (in each trial's folder):

* scalars are named ``trial/<key>`` and Tune's bookkeeping keys (``done``, ``time_*``,
  ``iterations_since_restore``...) are left out;
* a trial's curves are written once it has reported twice: a trial of a single result (a
  table lookup, a training-free proxy) would be one point per chart, so it gets only the
  scalars of its HParams metrics (the experiment's metric and objectives and the standard
  metrics it reported);
* HParams: every trial is a session whose hyperparameters are its architecture string
  (``arch``) and its config keys; no trial writes an HParams "experiment", so TensorBoard
  builds the table from all sessions (every trial's values, every metric), not from the
  first trial's.
"""

from __future__ import annotations

import logging
import math
import numbers
import os
import sys
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from ray.tune import Callback
from ray.tune.logger import TBXLoggerCallback
from ray.tune.result import AUTO_RESULT_KEYS
from ray.tune.utils import flatten_dict

from raynas.event_writer import summary_writer

log = logging.getLogger(__name__)

#: Prefix of the per-trial scalars (sorted after ``search/``).
TRIAL_PREFIX = "trial/"
#: Tune's bookkeeping keys: no chart of a trial.
SKIPPED_KEYS = frozenset(AUTO_RESULT_KEYS) | {
    "done",
    "trial_id",
    "experiment_tag",
    "should_checkpoint",
}
#: Metrics shown in HParams for a trial of a single result, besides the experiment's own.
HPARAMS_METRICS = (
    "val_acc",
    "test_acc",
    "val_loss",
    "train_loss",
    "params_m",
    "flops_m",
    "latency_ms",
)


def _is_number(value: Any) -> bool:
    return (
        isinstance(value, numbers.Real)
        and not isinstance(value, bool)
        and math.isfinite(float(value))
    )


class TrialBoard(TBXLoggerCallback):
    """Tune's per-trial TensorBoard logger, arranged so that TensorBoard opens on the search
    (see the module docstring).

    Args:
        metrics: the experiment's metric(s) (e.g. its ``metric`` and ``objectives``), shown in
            HParams before the standard ones.
    """

    def __init__(self, metrics: Sequence[str] = ()) -> None:
        super().__init__()
        self.metrics = tuple(dict.fromkeys([*metrics, *HPARAMS_METRICS]))
        self._first: dict = {}  # trial -> its first result, until a second one comes
        self._last: dict = {}  # trial -> its last result
        self._curves: set[str] = set()  # ids of the trials that reported twice

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state["_trial_writer"], state["_first"], state["_last"] = {}, {}, {}
        return state

    def log_trial_result(self, iteration: int, trial, result: dict) -> None:
        if trial not in self._trial_writer:
            self.log_trial_start(trial)
        self._last[trial] = result
        if trial.trial_id not in self._curves:
            first = self._first.pop(trial, None)
            if first is None:
                self._first[trial] = result
                return
            self._curves.add(trial.trial_id)
            self._write(trial, first)
        self._write(trial, result)

    def _write(self, trial, result: Mapping[str, Any], keys: Sequence[str] | None = None):
        writer = self._trial_writer[trial]
        step = result.get("training_iteration") or 0
        kept = {k: v for k, v in result.items() if k not in SKIPPED_KEYS}
        for key, value in flatten_dict(kept, delimiter="/").items():
            if keys is not None and key not in keys:
                continue
            tag = TRIAL_PREFIX + key
            if _is_number(value):
                writer.add_scalar(tag, float(value), global_step=step)
            elif keys is None and isinstance(value, list | np.ndarray) and len(value):
                try:  # e.g. the darts trainable's alpha_normal
                    writer.add_histogram(tag, np.asarray(value, dtype=float), global_step=step)
                except (ValueError, TypeError):
                    pass
        writer.flush()

    def _metrics_of(self, result: Mapping[str, Any]) -> list[str]:
        return [m for m in self.metrics if _is_number(result.get(m))]

    def log_trial_end(self, trial, failed: bool = False) -> None:
        if trial not in self._trial_writer:
            return
        last = self._last.pop(trial, None) or {}
        first = self._first.pop(trial, None)
        if first is not None:  # a single result: only what HParams shows of it
            self._write(trial, first, keys=self._metrics_of(first))
        writer = self._trial_writer.pop(trial)
        self._trial_result.pop(trial, None)
        self._log_session(writer, trial, last)
        writer.close()

    def _log_session(self, writer, trial, last: Mapping[str, Any]) -> None:
        from tensorboardX.summary import hparams

        params: dict[str, Any] = {}
        if isinstance(last.get("arch"), str):
            params["arch"] = last["arch"]
        for key, value in flatten_dict(dict(trial.evaluated_params or {})).items():
            if hasattr(value, "item"):  # numpy scalars
                value = value.item()
            if isinstance(value, str | bool | int | float):
                params[key] = value
            elif value is not None:
                params[key] = str(value)
        if not params:
            return
        metrics = {TRIAL_PREFIX + m: float(last[m]) for m in self._metrics_of(last)}
        try:
            _, start, end = hparams(hparam_dict=params, metric_dict=metrics)
        except Exception:  # a value tensorboardX refuses: the trial's scalars are written
            log.exception("could not write the HParams session of trial %s", trial)
            return
        writer.file_writer.add_summary(start)
        writer.file_writer.add_summary(end)


class SearchProgressCallback(Callback):
    """Writes ``search/<metric>`` and ``search/best_<metric>`` per completed trial, and the
    ``search/best_so_far``, ``search/op_frequency`` and (multi-objective) ``search/pareto_front``
    images after 16, 32, 64... completed trials and at the end of the experiment (each drawing
    takes the driver ~0.7 s, ``benchmarks/plots.py``).

    Picklable: the writer is opened lazily and never pickled; the counters survive a resume
    through ``get_state``/``set_state``.
    """

    def __init__(
        self,
        experiment_dir: str | None,
        metric: str,
        mode: str,
        label: str = "search",
        choices: Mapping[str, Sequence[Any]] | None = None,
        objectives: Mapping[str, str] | None = None,
    ) -> None:
        """
        Args:
            experiment_dir: the experiment folder; None: Tune's driver staging folder.
            metric: the experiment's metric.
            mode: ``max`` or ``min``.
            label: the curve's label in the best-so-far image (e.g. ``name (searcher)``).
            choices: the architecture keys and their values, for the op-frequency image;
                None: no such image (e.g. the darts trainable, whose trials ignore them).
            objectives: a multi-objective search's ``{metric: "max" | "min"}`` (two or more),
                for the ``search/pareto_front`` image; None: no such image.
        """
        # None: the driver staging folder of the experiment, found from its trials
        self.logdir = None if experiment_dir is None else os.path.join(experiment_dir, "search")
        self.metric = metric
        self.mode = mode
        self.label = label
        self.choices = None if choices is None else {k: list(v) for k, v in choices.items()}
        self.objectives = dict(objectives) if objectives and len(objectives) >= 2 else None
        self.completed = 0
        self.best: float | None = None
        self.best_arch: str | None = None
        self._writer = None

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state["_writer"] = None
        return state

    def get_state(self) -> dict[str, Any]:
        return {"completed": self.completed, "best": self.best, "best_arch": self.best_arch}

    def set_state(self, state: dict[str, Any]) -> None:
        self.completed = state.get("completed", 0)
        self.best = state.get("best")
        self.best_arch = state.get("best_arch")

    def _better(self, value: float) -> bool:
        if self.best is None:
            return True
        return value > self.best if self.mode == "max" else value < self.best

    def on_trial_complete(self, iteration: int, trials: list, trial, **info) -> None:
        result = trial.last_result or {}
        value = result.get(self.metric)
        if not isinstance(value, int | float) or math.isnan(value):
            log.warning("trial %s completed without a numeric %r", trial, self.metric)
            return
        self.completed += 1
        if self._better(value):
            self.best, self.best_arch = float(value), result.get("arch")
        writer = self._get_writer(trial)
        if writer is None:
            return
        writer.add_scalar(f"search/{self.metric}", value, self.completed)
        writer.add_scalar(f"search/best_{self.metric}", self.best, self.completed)
        if self.best_arch is not None:
            writer.add_text("search/best_arch", str(self.best_arch), self.completed)
        writer.flush()
        if self.completed >= 16 and self.completed & (self.completed - 1) == 0:
            self._draw(trials)  # after 16, 32, 64... trials: a few drawings in a long run

    def _get_writer(self, trial):
        if self._writer is None:
            logdir = self.logdir
            if logdir is None:
                staging = getattr(trial.storage, "experiment_driver_staging_path", None)
                if staging is None:
                    return None
                logdir = os.path.join(staging, "search")
            self._writer = summary_writer(logdir)
        return self._writer

    def on_experiment_end(self, trials: list, **info) -> None:
        self._draw(trials)
        if self._writer is not None:
            logdir = self._writer.log_dir
            self._writer.close()
            self._writer = None
            if self.logdir is None and trials:
                _upload(logdir, trials[0].storage)

    def _draw(self, trials: list) -> None:
        try:
            self._write_images(trials)
        except Exception:  # a picture must not fail the experiment
            log.exception("could not draw the search's images for TensorBoard")

    def _write_images(self, trials: list) -> None:
        """``raynas.plots``' best-so-far and op-frequency pictures as ``search/`` images."""
        import pandas as pd

        from raynas import plots

        frame = plots.finished(pd.DataFrame([_row(t) for t in trials]))
        values = pd.to_numeric(frame.get(self.metric, pd.Series(dtype=float)), errors="coerce")
        if not trials or not values.notna().any():
            return
        writer = self._get_writer(trials[0])
        if writer is None:
            return
        figures = {
            "search/best_so_far": plots.best_so_far_figure(
                {self.label: (values, self.metric, self.mode)}
            )
        }
        if self.choices:
            configs = frame[[c for c in frame if c.startswith("config/")]]
            configs = configs.rename(columns=lambda c: c.removeprefix("config/"))
            table = plots.op_frequencies(configs, self.choices)
            if table.size:
                figures["search/op_frequency"] = plots.op_frequency_figure(table, len(configs))
        objectives = getattr(self, "objectives", None)  # None in a callback pickled before
        if objectives:
            from raynas.pareto import front

            best = front(frame, objectives)
            if len(best):
                figures["search/pareto_front"] = plots.pareto_figure(frame, best, objectives)
        for tag, fig in figures.items():
            writer.add_image(tag, plots.figure_image(fig), self.completed, dataformats="HWC")
        writer.flush()


def _upload(folder: str, storage) -> None:
    """Copy the driver staging folder's ``search`` folder to the experiment folder at a URI.

    Tune calls ``on_experiment_end`` after its last upload of the staging folder, so what was
    written then (the images) would stay on the driver's machine.
    """
    import pyarrow.fs

    target = f"{storage.experiment_fs_path}/{os.path.basename(folder)}"
    try:
        pyarrow.fs.copy_files(folder, target, destination_filesystem=storage.storage_filesystem)
    except Exception as e:  # storage away: the scalars uploaded during the run remain
        log.warning("could not upload %s to %s: %s", folder, target, e)


def _row(trial) -> dict[str, Any]:
    """A Tune trial as a row of ``raynas.results.Summary.trials``."""
    row: dict[str, Any] = {"trial_id": trial.trial_id, "status": trial.status}
    row.update({k: v for k, v in (trial.last_result or {}).items() if not isinstance(v, dict)})
    row.update({f"config/{k}": v for k, v in (trial.config or {}).items()})
    return row


def command(logdir: str, port: int = 6006, host: str = "127.0.0.1") -> list[str]:
    """The TensorBoard server command over ``logdir`` bound to ``host`` (loopback default)."""
    return [
        sys.executable,
        "-m",
        "tensorboard.main",
        "--logdir",
        logdir,
        "--host",
        host,
        "--port",
        str(port),
    ]


def serve_mirrored(uri: str, port: int = 6006, host: str = "127.0.0.1", refresh_s: float = 30.0):
    """Serve TensorBoard over an experiment at a URI: a local mirror of its event files,
    refreshed every ``refresh_s`` seconds while TensorBoard runs; returns TensorBoard's exit
    code. Ctrl-C or SIGTERM stops both."""
    import signal
    import subprocess
    import time

    from raynas import storage

    loc = storage.locate(uri)
    local = storage.mirror(loc)
    print(
        f"TensorBoard at http://{host}:{port}/ over {loc.shown} (a local copy in {local}, "
        f"refreshed every {refresh_s:g} s; Ctrl-C to stop)",
        flush=True,
    )
    child = subprocess.Popen(command(str(local), port=port, host=host))

    def stop(signum, frame):
        child.terminate()

    previous = signal.signal(signal.SIGTERM, stop)
    try:
        while child.poll() is None:
            deadline = time.monotonic() + refresh_s
            while child.poll() is None and time.monotonic() < deadline:
                time.sleep(0.2)
            if child.poll() is None:
                try:
                    storage.mirror(loc, local)
                except Exception as e:  # storage away for a moment: serve what we have
                    log.warning("could not refresh the copy of %s: %s", loc.shown, e)
    except KeyboardInterrupt:
        child.terminate()
    finally:
        signal.signal(signal.SIGTERM, previous)
        try:
            child.wait(timeout=10)
        except subprocess.TimeoutExpired:
            child.kill()
    return 0 if child.returncode in (0, -signal.SIGTERM) else child.returncode
