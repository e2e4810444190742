"""Largest vs smallest vs a random OFA subnet trained from scratch on CIFAR-10, per epoch.

Why a CPU-sized scratch reference ranks subnets by how fast they learn, not by their capacity:
trains the ``mobilenetv3`` space's largest subnet (depth 4, kernel 7, expand 6 everywhere), its
smallest (depth 2, kernel 3, expand 3) and one random subnet (``space.sample`` with the pilot seed
990, never a reported seed) alone, with ``ofa.py``'s ``scratch_trainer`` (the ``train``
trainable's ``Trainer``, one thread), on the genuine CIFAR-10 subset (``--images`` training
images, 2,000 validation images, split seed 0), for each ``--runs`` setting ``SIZE:LR``
(image size, learning rate; batch ``--batch-size``, default 64; cosine), and prints per epoch
the training loss, the val accuracy and the seconds so far. ``--nets`` picks other networks
(``largest``, ``smallest``, ``random<seed>``). ``--job K/N`` runs the K-th of N shares of the
(net, setting) pairs, so two processes can share the work; ``--summary LOG ...`` prints the
table of their lines.

    python benchmarks/ofa_size_curves.py --job 0/2 > a.log & python ... --job 1/2 > b.log
    python benchmarks/ofa_size_curves.py --summary a.log b.log
    python benchmarks/ofa_size_curves.py --nets random990 --images 8000 --epochs 6 --runs 32:0.1
"""

from __future__ import annotations

import argparse
import os
import re
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

from ofa import _genotype, scratch_trainer  # noqa: E402
from ofa_noise import DATA  # noqa: E402

NETS = ("largest", "smallest", "random990")
LINE = re.compile(
    r"(\S+) size (\d+) lr ([\d.]+) epoch (\d+) loss ([\d.]+) val ([\d.]+) s ([\d.]+)"
)


def genotype_of(space, net: str):
    """The named subnet: ``largest``, ``smallest`` or ``random<seed>``."""
    from raynas.nn.ofa import LARGEST, SMALLEST

    if net.startswith("random"):
        return space.sample(np.random.default_rng(int(net[len("random") :])))
    stages = {"largest": LARGEST, "smallest": SMALLEST}[net]
    return space.decode(space.encode(_genotype(stages)))


def _share(pairs: list[tuple[str, str]], n: int) -> list[list[tuple[str, str]]]:
    """Split the (net, setting) pairs over ``n`` jobs, longest first to the least loaded job
    (rough cost: the largest net ~8x the smallest per epoch, a random one ~2.5x; ~2x per
    doubling of the image size at these sizes)."""
    weight = {"largest": 8.0, "smallest": 1.0}
    cost = {p: weight.get(p[0], 2.5) * int(p[1].split(":")[0]) / 32 for p in pairs}
    jobs: list[list[tuple[str, str]]] = [[] for _ in range(n)]
    load = [0.0] * n
    for pair in sorted(pairs, key=lambda p: -cost[p]):
        j = load.index(min(load))
        jobs[j].append(pair)
        load[j] += cost[pair]
    return jobs


def run(args: argparse.Namespace) -> None:
    import search_spaces

    torch.set_num_threads(1)
    space = search_spaces.get("mobilenetv3", width_mult=args.width_mult)
    k, n = (int(v) for v in args.job.split("/"))
    pairs = _share([(net, run) for run in args.runs for net in args.nets], n)[k]
    print(f"# job {args.job}, load at start {os.getloadavg()[0]:.1f}", flush=True)
    for net, setting in pairs:
        size, lr = int(setting.split(":")[0]), float(setting.split(":")[1])
        data = {
            "dataset": "cifar10",
            "root": args.root,
            "image_size": size,
            "subset": args.images,
            "val_fraction": 2000,
            "seed": 0,
        }
        train = {"lr": lr, "batch_size": args.batch_size}
        trainer = scratch_trainer(space, genotype_of(space, net), data, args.epochs, train)
        start = time.perf_counter()
        while trainer.epoch < args.epochs:
            m = trainer.step()
            print(
                f"{net} size {size} lr {lr:g} epoch {m['epoch']} loss {m['train_loss']:.3f} "
                f"val {m['val_acc']:.2f} s {time.perf_counter() - start:.1f}",
                flush=True,
            )
    print(f"# load at end {os.getloadavg()[0]:.1f}", flush=True)


def summary(logs: list[str]) -> None:
    """Val accuracy per epoch, one row per (net, size, lr), from the jobs' lines."""
    curves: dict[tuple[str, int, str], dict[int, tuple[float, float]]] = {}
    for log in logs:
        for line in Path(log).read_text().splitlines():
            m = LINE.fullmatch(line.strip())
            if m:
                key = (m.group(1), int(m.group(2)), m.group(3))
                curves.setdefault(key, {})[int(m.group(4))] = (
                    float(m.group(6)),
                    float(m.group(7)),
                )
    epochs = max(max(c) for c in curves.values())
    print(
        f"{'net':>10} {'size':>4} {'lr':>5} " + " ".join(f"{e:>5}" for e in range(1, epochs + 1))
    )
    for (net, size, lr), c in sorted(curves.items(), key=lambda kv: (kv[0][1], kv[0][2])):
        accs = " ".join(
            f"{c[e][0]:>5.1f}" if e in c else f"{'-':>5}" for e in range(1, epochs + 1)
        )
        print(f"{net:>10} {size:>4} {lr:>5} {accs}   {c[max(c)][1] / max(c):.1f} s/epoch")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", default=DATA)
    parser.add_argument("--width-mult", type=float, default=0.35)
    parser.add_argument("--images", type=int, default=5000, help="training images")
    parser.add_argument("--epochs", type=int, default=8)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument(
        "--nets", nargs="+", default=list(NETS), help="largest, smallest, random<seed>"
    )
    parser.add_argument("--runs", nargs="+", default=["32:0.1", "32:0.03", "64:0.1"])
    parser.add_argument("--job", default="0/1", help="K/N: the K-th of N shares of the work")
    parser.add_argument("--summary", nargs="+", metavar="LOG", help="print the table of logs")
    args = parser.parse_args(argv)
    if args.summary:
        summary(args.summary)
    else:
        run(args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
