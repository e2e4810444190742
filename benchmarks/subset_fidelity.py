"""Rank fidelity of subset training, of fewer epochs and of zero-cost proxies on NAS-Bench-201.

``--n`` NB201 cells (default 30) are drawn uniformly without replacement from the 15,625
cells with ``numpy.random.default_rng(--seed)`` (``--cells`` prints the sample and exits, so
it can be written down before a run). Each cell is built as a small NB201 macro network
(``--C``, ``--N``; PyTorch's default initialisation, ``torch.manual_seed(0)`` before each
build, so every fidelity of a cell starts from the same weights) and trained with the
``train`` trainable's ``Trainer`` (SGD, cosine LR over ``--epochs``, standard CIFAR
augmentation, one torch thread) on the genuine CIFAR-10 images of ``--root``:
``--train-images`` class-balanced training images and ``--val-images`` held-out validation
images, the same for every cell.

Fidelities, each against the reference (val accuracy after ``--epochs`` epochs on 100% of
the training images):

- ``subset f``: val accuracy after ``--epochs`` epochs on the first ``f`` of the images in
  the trainable's nested class-balanced order (``subset_schedule: [f]``), f in
  ``--fractions``; the 100% run is the reference itself.
- ``epoch k``: val accuracy of the reference run after ``k`` of its epochs (``--epoch-points``;
  the LR schedule is the reference's cosine over ``--epochs``).
- zero-cost proxies (``raynas.estimators.zero_cost``) of the same network at initialisation,
  on one batch of 64 training images (``raynas.estimators.batch.load_batch``).

Columns: ``rho`` is Spearman's rho with the reference over the cells with a 95% bootstrap CI
(``--boot`` resamples of the cells), ``rho table`` the same against the shipped 12-epoch
NB201 table's CIFAR-10 test accuracy (full-size networks, 12 epochs on 50k images: a second
view, not the reference). ``wall s`` is the mean wall time per cell to obtain the fidelity
(training up to it plus one validation pass, or the proxy), ``cpu s`` the mean process CPU
time (the machine is shared, so CPU time is the steadier cost); ``x ref`` the CPU time
relative to the reference's. Non-finite proxy scores rank last.

Cells run in ``--workers`` processes; each finished cell is appended to ``--jsonl``, which a
rerun continues from (cells already there are skipped), so a cut-short run keeps its cells.

Usage::

    python benchmarks/subset_fidelity.py --cells                       # the sample
    python benchmarks/subset_fidelity.py --root /work/shared/data --jsonl run.jsonl
    python benchmarks/subset_fidelity.py --summarise run.jsonl          # table only
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import sys
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from multiprocessing import get_context
from pathlib import Path

import numpy as np

PROXIES = ("naswot", "jacov", "synflow", "snip", "grad_norm", "params", "flops")


def sample_cells(n: int, seed: int) -> list[str]:
    """``n`` distinct NB201 cells, uniform over the table."""
    from raynas.benchmarks import nb201

    table = nb201.table()
    rows = np.random.default_rng(seed).choice(len(table), size=n, replace=False)
    return [table.arch_strs[int(r)] for r in rows]


def _options(args: argparse.Namespace, fraction: float | None) -> dict:
    return {
        "dataset": "cifar10",
        "root": args.root,
        "epochs": args.epochs,
        "batch_size": args.batch_size,
        "lr": args.lr,
        "val_fraction": args.val_images,
        "subset": args.train_images,
        "subset_schedule": None if fraction is None else [fraction],
        "seed": 0,
        "device": "cpu",
        "threads": 1,
        "build": {"C": args.C, "N": args.N},
    }


def _clock() -> tuple[float, float]:
    return time.perf_counter(), time.process_time()


def _since(start: tuple[float, float]) -> tuple[float, float]:
    return time.perf_counter() - start[0], time.process_time() - start[1]


def run_cell(arch: str, args: argparse.Namespace) -> dict:
    """Every fidelity of one cell: ``{"arch", "table_test_acc", "fidelities": {name: {"acc",
    "wall_s", "cpu_s"}}, "load"}``."""
    import torch

    import search_spaces
    from raynas.benchmarks import nb201
    from raynas.estimators import zero_cost as zc
    from raynas.estimators.batch import load_batch
    from raynas.trainables.train import Trainer, TrainOptions

    torch.set_num_threads(1)
    space = search_spaces.get("nb201")
    config = space.encode(space.from_str(arch))
    out: dict = {
        "arch": arch,
        "table_test_acc": nb201.table().lookup(arch, "cifar10").test_acc,
        "fidelities": {},
        "val_images": args.val_images,
        "load": os.getloadavg()[0],
    }
    fid = out["fidelities"]
    for fraction in [*args.fractions, None]:
        trainer = Trainer(space, config, TrainOptions(**_options(args, fraction)))
        start, train_wall, train_cpu = _clock(), 0.0, 0.0
        for epoch in range(1, args.epochs + 1):
            t = _clock()
            trainer.train_epoch()
            trainer.epoch += 1
            wall, cpu = _since(t)
            train_wall, train_cpu = train_wall + wall, train_cpu + cpu
            last = epoch == args.epochs
            if fraction is None and (epoch in args.epoch_points or last):
                t = _clock()
                _, acc = trainer.evaluate("val")
                wall, cpu = _since(t)
                name = "reference" if last else f"epoch {epoch}"
                fid[name] = {"acc": acc, "wall_s": train_wall + wall, "cpu_s": train_cpu + cpu}
        if fraction is not None:
            _, acc = trainer.evaluate("val")
            wall, cpu = _since(start)
            fid[f"subset {fraction:g}"] = {
                "acc": acc,
                "wall_s": wall,
                "cpu_s": cpu,
                "images": trainer.train_images(1),
            }
    inputs, targets, classes, channels = load_batch("cifar10", args.root, 0, 64)
    torch.manual_seed(0)
    model = space.build(space.from_str(arch), num_classes=classes, C=args.C, N=args.N)
    for name in PROXIES:
        t = _clock()
        value = zc.compute(name, model, inputs, targets)
        wall, cpu = _since(t)
        fid[name] = {"acc": value, "wall_s": wall, "cpu_s": cpu}
    return out


def spearman(x, y) -> float:
    from scipy import stats

    x, y = np.asarray(x, float), np.asarray(y, float)
    x = np.where(np.isfinite(x), x, -np.inf)
    if len(x) < 3 or np.all(x == x[0]) or np.all(y == y[0]):
        return math.nan
    return float(stats.spearmanr(x, y).statistic)


def bootstrap_ci(x, y, draws: int, seed: int = 0) -> tuple[float, float]:
    """95% percentile bootstrap interval of Spearman's rho, resampling the cells."""
    x, y = np.asarray(x, float), np.asarray(y, float)
    rng = np.random.default_rng(seed)
    rhos = [spearman(x[i], y[i]) for i in (rng.integers(0, len(x), len(x)) for _ in range(draws))]
    rhos = np.asarray([r for r in rhos if math.isfinite(r)])
    if not len(rhos):
        return math.nan, math.nan
    return float(np.percentile(rhos, 2.5)), float(np.percentile(rhos, 97.5))


def table(records: list[dict], draws: int) -> list[str]:
    """The printed rows: one per fidelity, in the order they were measured."""
    names = [n for n in records[0]["fidelities"] if n != "reference"]
    subsets = sorted((n for n in names if n.startswith("subset")), key=lambda n: float(n[7:]))
    epochs = sorted((n for n in names if n.startswith("epoch")), key=lambda n: int(n[6:]))
    order = [*subsets, "reference", *epochs, *(n for n in names if n in PROXIES)]
    ref = [r["fidelities"]["reference"]["acc"] for r in records]
    tab = [r["table_test_acc"] for r in records]
    ref_cpu = np.mean([r["fidelities"]["reference"]["cpu_s"] for r in records])
    n_val = records[0].get("val_images")
    p = np.mean(ref) / 100
    se = 100 * math.sqrt(p * (1 - p) / n_val) if n_val else math.nan
    noise = f"; binomial SE of one accuracy on {n_val} val images {se:.1f}" if n_val else ""
    lines = [
        f"# reference val acc over the cells: mean {np.mean(ref):.1f}%, sd {np.std(ref):.1f}, "
        f"range {min(ref):.1f}-{max(ref):.1f}{noise}",
        f"{'fidelity':<16} {'rho':>6} {'95% CI':>15} {'rho table':>9} {'95% CI':>15} "
        f"{'wall s':>8} {'cpu s':>8} {'x ref':>6}",
    ]
    for name in order:
        values = [r["fidelities"][name]["acc"] for r in records]
        lo, hi = bootstrap_ci(values, ref, draws)
        tlo, thi = bootstrap_ci(values, tab, draws)
        wall = np.mean([r["fidelities"][name]["wall_s"] for r in records])
        cpu = np.mean([r["fidelities"][name]["cpu_s"] for r in records])
        label = "subset 1 (ref)" if name == "reference" else name
        lines.append(
            f"{label:<16} {spearman(values, ref):6.3f} [{lo:6.3f}, {hi:6.3f}] "
            f"{spearman(values, tab):9.3f} [{tlo:6.3f}, {thi:6.3f}] "
            f"{wall:8.2f} {cpu:8.2f} {cpu / ref_cpu:6.3f}"
        )
    return lines


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--root", default=os.environ.get("RAYNAS_DATA"))
    p.add_argument("--n", type=int, default=30)
    p.add_argument("--seed", type=int, default=2027, help="seed of the cell sample")
    p.add_argument("--C", type=int, default=8)
    p.add_argument("--N", type=int, default=1)
    p.add_argument("--epochs", type=int, default=8)
    p.add_argument("--epoch-points", type=int, nargs="+", default=[1, 2, 5])
    p.add_argument("--fractions", type=float, nargs="+", default=[0.1, 0.25, 0.5])
    p.add_argument("--train-images", type=int, default=2500)
    p.add_argument("--val-images", type=int, default=1000)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--lr", type=float, default=0.05)
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--boot", type=int, default=2000)
    p.add_argument("--jsonl", default=None, help="append finished cells here; rerun continues")
    p.add_argument("--cells", action="store_true", help="print the cell sample and exit")
    p.add_argument("--summarise", metavar="JSONL", help="print the table of a finished run")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    if args.summarise:
        lines = Path(args.summarise).read_text().splitlines()
        records = [json.loads(line) for line in lines if line.strip()]
        for record in records:  # (runs before the key was written used the default 1000)
            record.setdefault("val_images", args.val_images)
        print(f"# {len(records)} cells from {args.summarise}")
        print("\n".join(table(records, args.boot)))
        return 0
    cells = sample_cells(args.n, args.seed)
    if args.cells:
        print("\n".join(cells))
        return 0
    if not args.root:
        raise SystemExit("give --root (a folder holding cifar-10-batches-py) or $RAYNAS_DATA")
    done: dict[str, dict] = {}
    if args.jsonl and Path(args.jsonl).exists():
        for line in Path(args.jsonl).read_text().splitlines():
            if line.strip():
                record = json.loads(line)
                done[record["arch"]] = record
    todo = [c for c in cells if c not in done]
    print(
        f"# subset_fidelity: {args.n} NB201 cells (seed {args.seed}), C={args.C} N={args.N}, "
        f"{args.epochs} epochs, {args.train_images} train / {args.val_images} val images of "
        f"CIFAR-10 ({args.root}), batch {args.batch_size}, lr {args.lr} cosine, 1 thread x "
        f"{args.workers} workers; {platform.processor() or platform.machine()}, "
        f"{os.cpu_count()} cores; {len(done)} cells already done",
        flush=True,
    )
    started = time.perf_counter()
    with ProcessPoolExecutor(args.workers, mp_context=get_context("spawn")) as pool:
        futures = {pool.submit(run_cell, arch, args): arch for arch in todo}
        for future in as_completed(futures):
            record = future.result()
            done[record["arch"]] = record
            if args.jsonl:
                with open(args.jsonl, "a") as fh:
                    fh.write(json.dumps(record) + "\n")
            print(
                f"# {len(done)}/{len(cells)} {record['arch']} ref "
                f"{record['fidelities']['reference']['acc']:.1f}% "
                f"({time.perf_counter() - started:.0f} s, load {record['load']:.1f})",
                flush=True,
            )
    records = [done[c] for c in cells]
    print("\n".join(table(records, args.boot)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
