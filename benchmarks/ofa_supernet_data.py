"""Which dataset the CPU-sized OFA supernet example trains on: one short run per candidate.

Trains the OFA supernet (``raynas.oneshot.shrinking.ProgressiveShrinking``, the ``supernet``
trainable's engine, one torch thread as in a trial) with the same progressive-shrinking
schedule on each candidate dataset, and prints per epoch the phase, seconds, training loss and
the val accuracy of the largest subnet, the smallest and the mean of 4 fixed random subnets
(each BN-recalibrated on 4 training batches). Then one summary line per candidate.

    python benchmarks/ofa_supernet_data.py                       # every candidate in turn
    python benchmarks/ofa_supernet_data.py --only cifar10-32     # one of them

Candidates: the genuine CIFAR-10 subset (``$RAYNAS_DATA`` or ../shared/data) at 32x32 and at
16x16, and scikit-learn's digits resized from 8x8 to 16x16 (at 8x8 stages 3-5 of the network
see 1x1 maps, where every depthwise kernel size is the same single tap).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from raynas.oneshot.shrinking import ProgressiveShrinking, SupernetOptions  # noqa: E402

DATA = os.environ.get("RAYNAS_DATA") or str(REPO.parent / "shared" / "data")
PHASES = {"full": 6, "kernel": 2, "depth": 2, "expand": 2}
COMMON = {
    "phases": PHASES,
    "batch_size": 64,
    "lr": 0.1,  # the full phase; the elastic phases start from OFA's rates (the default)
    "sandwich": True,
    "kd_ratio": 1.0,
    "eval_subnets": 4,
    "bn_batches": 4,
    "device": "cpu",
}
CANDIDATES = {
    "cifar10-32": {"dataset": "cifar10", "root": DATA, "subset": 4000, "val_fraction": 1000},
    "cifar10-16": {
        "dataset": "cifar10",
        "root": DATA,
        "subset": 4000,
        "val_fraction": 1000,
        "image_size": 16,
    },
    "digits-16": {"dataset": "digits", "image_size": 16},
}
WIDTH = 0.35


def run(name: str, seed: int) -> dict:
    options = SupernetOptions(**{**COMMON, **CANDIDATES[name], "seed": seed})
    engine = ProgressiveShrinking(options, width_mult=WIDTH)
    print(
        f"# {name}: {len(engine.splits.train)} train / {len(engine.splits.val)} val images at "
        f"{engine.splits.image_size}x{engine.splits.image_size}, width {WIDTH}, seed {seed}",
        flush=True,
    )
    print(f"{'candidate':<11} {'ep':>2} {'phase':<6} {'s':>6} {'loss':>6} "
          f"{'largest':>7} {'smallest':>8} {'random':>6}", flush=True)  # fmt: skip
    start = time.perf_counter()
    metrics = {}
    while engine.epoch < options.epochs:
        metrics = engine.step()
        print(
            f"{name:<11} {metrics['epoch']:>2} {metrics['phase']:<6} {metrics['cost_s']:6.1f} "
            f"{metrics['train_loss']:6.3f} {metrics['val_acc_largest']:7.1f} "
            f"{metrics['val_acc_smallest']:8.1f} {metrics['val_acc_random']:6.1f}",
            flush=True,
        )
    return {**metrics, "wall_s": time.perf_counter() - start}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", nargs="*", choices=sorted(CANDIDATES), default=None)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    torch.set_num_threads(1)
    print(f"schedule {PHASES}; {COMMON}")
    finals = {name: run(name, args.seed) for name in args.only or CANDIDATES}
    print("\nsummary (last epoch): candidate, wall s, largest / smallest / random val acc %")
    for name, m in finals.items():
        print(
            f"{name:<11} {m['wall_s']:7.0f} s  {m['val_acc_largest']:5.1f} / "
            f"{m['val_acc_smallest']:5.1f} / {m['val_acc_random']:5.1f}"
        )


if __name__ == "__main__":
    main()
