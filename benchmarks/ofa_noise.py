"""OFA noise ceiling: do random ``mobilenetv3`` subnets differ more than seed noise on a task?

Before rank fidelity can be measured, the scratch ranking it is measured against must agree
with itself. For one task (dataset, image size, training images, epochs, lr, batch), this
trains each of ``--subnets`` random subnets from scratch (``ofa.py``'s ``train_from_scratch``:
the ``train`` trainable's ``Trainer``, one thread) with ``--scratch-seeds`` seeds (other
initial weights and batch order, same data split), and prints one line per training, then
Spearman(seed 0; seed 1) with a bootstrap 95% interval, the spread of the subnets' accuracies
against the mean seed-to-seed difference, and the seconds per training.

Subnet ``i`` is ``space.sample(numpy.random.default_rng(seed_i))`` for the ``--pilot-seeds``
(990-999 by default: pilot seeds, never the seed the Numbers report).

    python benchmarks/ofa_noise.py --dataset cifar10 --root DATA --image-size 16 \
        --subset 4000 --val-fraction 1000 --epochs 8 --lr 0.1 --batch-size 64
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

from ofa import bootstrap_ci, line_printer, spearman, train_from_scratch  # noqa: E402

DATA = os.environ.get("RAYNAS_DATA") or str(Path(__file__).resolve().parents[2] / "shared/data")


def add_data_args(parser: argparse.ArgumentParser) -> None:
    """The task's arguments: dataset, root, image size, training images, validation, width."""
    parser.add_argument("--dataset", default="cifar10")
    parser.add_argument("--root", default=DATA)
    parser.add_argument("--image-size", type=int, default=None)
    parser.add_argument("--subset", type=int, default=0, help="training images (0: all)")
    parser.add_argument("--val-fraction", type=float, default=0.1, help="fraction or count")
    parser.add_argument("--width-mult", type=float, default=0.35)


def data_options(args: argparse.Namespace) -> dict:
    """The data options (``raynas.data.load``'s) of ``add_data_args``' arguments."""
    return {
        "dataset": args.dataset,
        "root": args.root if args.dataset != "digits" else None,
        "image_size": args.image_size,
        "subset": args.subset or None,
        "val_fraction": args.val_fraction if args.val_fraction < 1 else int(args.val_fraction),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_data_args(parser)
    parser.add_argument("--epochs", type=int, default=8)
    parser.add_argument("--lr", type=float, default=0.05)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--pilot-seeds", type=int, nargs="+", default=list(range(990, 1000)))
    parser.add_argument("--scratch-seeds", type=int, default=2)
    parser.add_argument("--out", help="also write the printed lines to this file")
    args = parser.parse_args(argv)
    if len(args.pilot_seeds) < 3:
        parser.error("--pilot-seeds: give at least 3 (a Spearman of fewer subnets means nothing)")
    torch.set_num_threads(1)

    import search_spaces

    space = search_spaces.get("mobilenetv3", width_mult=args.width_mult)
    data = {**data_options(args), "seed": 0}
    train = {"lr": args.lr, "batch_size": args.batch_size}
    lines, say = line_printer()

    say(f"# {' '.join(sys.argv)}")
    say(f"# data {data}, {args.epochs} epochs, {train}, width {args.width_mult}, 1 thread")
    say(f"# load at start {' '.join(f'{v:.1f}' for v in os.getloadavg())}")
    say(f"{'pilot':>5} {'seed':>4} {'val_acc':>7} {'secs':>6}  arch")
    accs: dict[int, list[float]] = {}
    secs: list[float] = []
    genotypes = {p: space.sample(np.random.default_rng(p)) for p in args.pilot_seeds}
    for k in range(args.scratch_seeds):
        for p, g in genotypes.items():
            acc, s = train_from_scratch(space, g, data, args.epochs, train, k)
            accs.setdefault(k, []).append(acc)
            secs.append(s)
            say(f"{p:>5} {k:>4} {acc:>7.2f} {s:>6.1f}  {space.to_str(g)}")
    a0 = accs[0]
    say("")
    say(
        f"seed 0: mean {np.mean(a0):.2f}, range {min(a0):.2f}-{max(a0):.2f} "
        f"(sd {np.std(a0, ddof=1):.2f}); seconds per training {np.mean(secs):.1f} "
        f"(median {np.median(secs):.1f})"
    )
    if args.scratch_seeds > 1:
        a1 = accs[1]
        lo, hi = bootstrap_ci(a0, a1)
        say(
            f"Spearman(seed 0; seed 1) = {spearman(a0, a1):.3f}  95% CI [{lo:.3f}, {hi:.3f}]; "
            f"mean |seed 0 - seed 1| {np.mean(np.abs(np.subtract(a0, a1))):.2f} points; "
            f"sd of the subnets' two-seed means {np.std(np.add(a0, a1) / 2, ddof=1):.2f}"
        )
    say(f"# load at end {' '.join(f'{v:.1f}' for v in os.getloadavg())}")
    if args.out:
        Path(args.out).write_text("\n".join(lines) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
