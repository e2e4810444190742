"""Training sanity: real training with the ``train`` trainable's Trainer, no Tune.

1. An NB201 cell network (the best CIFAR-10 cell of the shipped table, C=16, N=1) trained on
   scikit-learn's digits for 10 epochs: validation accuracy per epoch (target >= 95%).
2. The same cell at the NB201 size (C=16, N=5) on the genuine CIFAR-10 subset (9k train / 1k
   val / 1k test, 32x32, standard augmentation) for ``--cifar-epochs`` epochs: val/test
   accuracy and seconds per epoch on this CPU.

Usage: python benchmarks/training_sanity.py [--root DIR] [--cifar-epochs 3] [--threads 2]
"""

from __future__ import annotations

import argparse
import os
import sys
import time

import torch

import search_spaces
from raynas.benchmarks import nb201
from raynas.trainables.train import Trainer, TrainOptions


def run(space, arch: str, options: TrainOptions, label: str) -> None:
    trainer = Trainer(space, space.encode(space.from_str(arch)), options)
    print(
        f"\n## {label}: {options.dataset}, build={options.build}, epochs={options.epochs}, "
        f"batch={options.batch_size}, lr={options.lr}, params={trainer.params / 1e6:.3f}M, "
        f"train/val/test={len(trainer.splits.train)}/{len(trainer.splits.val)}/"
        f"{len(trainer.splits.test)}"
    )
    print("epoch  train_loss  train_acc  val_acc  test_acc  seconds")
    for _ in range(options.epochs):
        start = time.perf_counter()
        m = trainer.step()
        seconds = time.perf_counter() - start
        print(
            f"{m['epoch']:>5}  {m['train_loss']:>10.4f}  {m['train_acc']:>9.2f}  "
            f"{m['val_acc']:>7.2f}  {m.get('test_acc', float('nan')):>8.2f}  {seconds:>7.1f}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--root",
        default=os.environ.get("RAYNAS_DATA"),
        help="folder with cifar-10-batches-py (default $RAYNAS_DATA)",
    )
    parser.add_argument("--cifar-epochs", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--skip-cifar", action="store_true")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    space = search_spaces.get("nb201")
    arch, val = nb201.table().optimum("cifar10")
    print(
        f"# command: python benchmarks/training_sanity.py {' '.join(sys.argv[1:])}; "
        f"torch threads {args.threads}; load {os.getloadavg()}"
    )
    print(f"# architecture: {arch} (table cifar10 val {val:.2f})")
    run(
        space,
        arch,
        TrainOptions(dataset="digits", epochs=10, build={"C": 16, "N": 1}, eval_test=True),
        "digits",
    )
    if not args.skip_cifar:
        run(
            space,
            arch,
            TrainOptions(
                dataset="cifar10",
                root=args.root,
                epochs=args.cifar_epochs,
                batch_size=96,
                lr=0.1,
                build={"C": 16, "N": 5},
                eval_test=True,
            ),
            "cifar10 subset",
        )


if __name__ == "__main__":
    main()
