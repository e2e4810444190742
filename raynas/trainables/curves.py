"""``curves`` trainable: replays the stored learning curve of an NB201 cell, one epoch a report.

The curves come from ``raynas.benchmarks.curve_table`` (by default the shipped CIFAR-10 dataset:
real training runs, see ``raynas/benchmarks/ATTRIBUTION.md``). Each report holds every stored
metric of that epoch (``epoch``, ``train_loss``, ``train_acc``, ``val_loss``, ``val_acc``,
``tse``, ``tse_ema``, ``params_m``, ``flops_m``, ``cost_s``) and ``arch``; Tune's
``training_iteration`` equals ``epoch``. With ``time_scale > 0`` each epoch first sleeps
``cost_s * time_scale`` seconds, so the wall-clock order of results follows the real training
cost; with 0 (default) a whole curve replays in milliseconds. Every epoch is checkpointed
(unless ``checkpoint=False``), so PAUSE, failure retries and ``raynas resume`` continue from
the next epoch. Any scheduler x searcher combination is so benchmarked through a real Tuner.

It is a class ``tune.Trainable`` (the other trainables are functions): a trial that a scheduler
stops early frees its actor for the next trial (``reset_config``), where a stopped function
trainable's actor is replaced (measured over 210 replayed trials: ASHA's run took 1.2x FIFO's
wall time with a function trainable, 0.4x with this class).
The last epoch's result carries ``done=True`` and so reaches schedulers through
``on_trial_complete``, as with any class trainable.

Only stored architectures can be replayed: give the searcher the stored ones
(``raynas.benchmarks.curve_table.points_to_evaluate``); any other is a ``ValueError``.
"""

from __future__ import annotations

import json
import os
import time

from raynas.benchmarks import curve_table as curvedata
from search_spaces.base import SearchSpace

CHECKPOINT_FILE = "curve.json"


def make(
    space: SearchSpace,
    path: str | None = None,
    seed: int | None = None,
    time_scale: float = 0.0,
    checkpoint: bool = True,
) -> type:
    """Replay trainable for the ``nb201`` space.

    Args:
        space: the nb201 space (its macro options do not matter: the curve is what was stored).
        path: a curve table (parquet, see ``raynas.benchmarks.curve_table``); None: the
            shipped one.
        seed: which training seed's curve to replay; None: the lowest stored for the arch.
        time_scale: sleep ``cost_s * time_scale`` seconds per epoch (0: no sleep).
        checkpoint: save the epoch reached with each report (PAUSE/restore); False saves
            the checkpoint I/O in large benchmarks whose schedulers never pause.

    Raises:
        ValueError: another space, a bad option, an unreadable table, or a seed not stored.
        FileNotFoundError: no table at ``path``.
    """
    if space.name != "nb201":
        raise ValueError(f"the curves trainable needs the nb201 space, got {space.name!r}")
    if isinstance(time_scale, bool) or not isinstance(time_scale, int | float):
        raise ValueError(f"time_scale must be a number >= 0, got {time_scale!r}")
    if not 0 <= time_scale <= 1e3:
        raise ValueError(f"time_scale must be in [0, 1000], got {time_scale!r}")
    if not isinstance(checkpoint, bool):
        raise ValueError(f"checkpoint must be true or false, got {checkpoint!r}")
    table = curvedata.table(path)  # fails here, before Ray starts, on a missing/bad file
    if seed is not None and seed not in table.seeds:
        raise ValueError(
            f"seed {seed!r} not stored in {table.path}; stored seeds: "
            f"{', '.join(map(str, table.seeds))}"
        )
    table_path = table.path
    from ray import tune

    class CurvesTrainable(tune.Trainable):
        """Replays the stored curve of the config's architecture (see the module doc)."""

        def setup(self, config: dict) -> None:
            self.arch = space.to_str(space.decode(config))
            self.curve = curvedata.table(table_path).curve(self.arch, seed)
            self.epoch = 0

        def step(self) -> dict:
            row = self.curve[self.epoch]
            if time_scale:
                time.sleep(float(row["cost_s"]) * time_scale)
            self.epoch += 1
            return {
                **row,
                "arch": self.arch,
                "done": self.epoch >= len(self.curve),
                "should_checkpoint": checkpoint,
            }

        def save_checkpoint(self, checkpoint_dir: str) -> None:
            with open(os.path.join(checkpoint_dir, CHECKPOINT_FILE), "w", encoding="utf-8") as f:
                json.dump({"arch": self.arch, "epoch": self.epoch}, f)

        def load_checkpoint(self, checkpoint_dir: str) -> None:
            with open(os.path.join(checkpoint_dir, CHECKPOINT_FILE), encoding="utf-8") as f:
                state = json.load(f)
            if state.get("arch") != self.arch:
                raise ValueError(
                    f"checkpoint is for architecture {state.get('arch')!r}, not {self.arch!r}"
                )
            self.epoch = int(state["epoch"])

        def reset_config(self, new_config: dict) -> bool:
            self.setup(new_config)
            return True

    CurvesTrainable.__name__ = CurvesTrainable.__qualname__ = "curves_trainable"
    return CurvesTrainable
