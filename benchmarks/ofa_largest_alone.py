"""The largest OFA subnet trained alone on digits 16x16 (the supernet's data), per epoch.

What the supernet's largest subnet is compared with: the same network trained alone
(``ofa.py``'s ``scratch_trainer``, one thread) for the full phase's budget (6 epochs, batch
64, lr 0.1) and for the whole schedule's (16 epochs, batch 64, lr 0.1), on the split the
supernet uses (1,078 train / 360 val, seed 0). Prints the val accuracy after every epoch.

    python benchmarks/ofa_largest_alone.py
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

from ofa import _genotype, scratch_trainer  # noqa: E402


def main() -> None:
    torch.set_num_threads(1)
    import search_spaces
    from raynas.nn.ofa import LARGEST

    space = search_spaces.get("mobilenetv3", width_mult=0.35)
    genotype = space.decode(space.encode(_genotype(LARGEST)))
    data = {"dataset": "digits", "image_size": 16, "subset": None, "val_fraction": 0.25, "seed": 0}
    for epochs, batch, lr in ((6, 64, 0.1), (16, 64, 0.1)):
        trainer = scratch_trainer(space, genotype, data, epochs, {"lr": lr, "batch_size": batch})
        start, accs = time.perf_counter(), []
        while trainer.epoch < epochs:
            accs.append(round(trainer.step()["val_acc"], 2))
        print(
            f"largest alone, {epochs} epochs, batch {batch}, lr {lr}: per epoch {accs}; "
            f"{time.perf_counter() - start:.0f} s",
            flush=True,
        )


if __name__ == "__main__":
    main()
