"""Per-epoch val accuracy of one random mobilenetv3 subnet trained from scratch on a task.

Why a task is near chance after a few CPU epochs: prints, per epoch, the training loss, the val
accuracy and the seconds so far of the subnet ``space.sample(default_rng(--pilot-seed))``
trained alone (``ofa.py``'s ``scratch_trainer``: the ``train`` trainable's ``Trainer``, one
thread) on the genuine CIFAR-10 subset with 2,000 validation images.

    python benchmarks/ofa_scratch_curve.py 32 8000 6 0.1 64    # size, images, epochs, lr, batch
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

from ofa import scratch_trainer  # noqa: E402
from ofa_noise import DATA  # noqa: E402


def main() -> None:
    size, subset, epochs = (int(v) for v in sys.argv[1:4])
    lr, batch = float(sys.argv[4]), int(sys.argv[5])
    torch.set_num_threads(1)
    import search_spaces

    space = search_spaces.get("mobilenetv3", width_mult=0.35)
    genotype = space.sample(np.random.default_rng(990))  # pilot seed
    data = {
        "dataset": "cifar10",
        "root": DATA,
        "image_size": size,
        "subset": subset,
        "val_fraction": 2000,
        "seed": 0,
    }
    trainer = scratch_trainer(space, genotype, data, epochs, {"lr": lr, "batch_size": batch})
    start = time.perf_counter()
    while trainer.epoch < epochs:
        m = trainer.step()
        print(
            size, subset, lr, batch, m["epoch"], round(m["train_loss"], 3),
            round(m["val_acc"], 2), round(time.perf_counter() - start, 1), flush=True,
        )  # fmt: skip


if __name__ == "__main__":
    main()
