"""Supernet quality: what the elastic phases' settings do to the supernet, from one full phase.

Trains the ``full`` phase of progressive shrinking once (``ProgressiveShrinking``, the
``supernet`` trainable's engine, one torch thread), keeps that state, then continues it through
the elastic phases once per variant (option overrides such as ``elastic_warmup`` or
``phase_lr``), and prints per epoch the phase, lr at the epoch's start, training loss and the
val accuracy of the largest subnet, the smallest and the mean of the engine's fixed random
subnets (each copied out, BN recalibrated). Every variant starts from the identical full-phase
weights, optimiser and RNG state, so the differences are the elastic settings' alone.

    python benchmarks/ofa_shrinking.py --dataset cifar10 --subset 6000 --val-fraction 2000 \
        --phases full=4,kernel=2,depth=2,expand=2 --variant base: \
        --variant warmup:elastic_warmup=0.5
"""

from __future__ import annotations

import argparse
import ast
import copy
import os
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

from ofa import line_printer  # noqa: E402
from ofa_noise import add_data_args, data_options  # noqa: E402

from raynas.oneshot.shrinking import ProgressiveShrinking, SupernetOptions  # noqa: E402


def _variant(text: str) -> tuple[str, dict]:
    """``name:key=value,key=value`` (values as Python literals; ``phase_lr.kernel=0.01``)."""
    name, _, rest = text.partition(":")
    overrides: dict = {}
    for item in filter(None, rest.split(",")):
        key, _, value = item.partition("=")
        if "." in key:
            outer, inner = key.split(".", 1)
            overrides.setdefault(outer, {})[inner] = ast.literal_eval(value)
        else:
            overrides[key] = ast.literal_eval(value)
    return name, overrides


def _row(name: str, m: dict, elapsed: float) -> str:
    return (
        f"{name:<10} {m['epoch']:>2} {m['phase']:<6} {m['lr']:>7.4f} {m['train_loss']:>6.3f} "
        f"{m['val_acc_largest']:>7.2f} {m['val_acc_smallest']:>8.2f} {m['val_acc_random']:>6.2f} "
        f"{elapsed:>6.0f}"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_data_args(parser)
    parser.add_argument("--phases", default="full=4,kernel=2,depth=2,expand=2")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--lr", type=float, default=0.1)
    parser.add_argument("--kd-ratio", type=float, default=1.0)
    parser.add_argument("--no-sandwich", action="store_true")
    parser.add_argument("--eval-subnets", type=int, default=4)
    parser.add_argument("--bn-batches", type=int, default=4)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--variant", action="append", default=[], help="name:key=value,... (repeatable)"
    )
    parser.add_argument("--elastic-epochs", type=int, help="stop each variant after these")
    parser.add_argument("--save", help="save each variant's final supernet as DIR/<name>.pt")
    parser.add_argument("--out", help="also write the printed lines to this file")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    phases = {k: int(v) for k, v in (p.split("=") for p in args.phases.split(","))}
    common = {
        **data_options(args),
        "phases": phases,
        "batch_size": args.batch_size,
        "lr": args.lr,
        "sandwich": not args.no_sandwich,
        "kd_ratio": args.kd_ratio,
        "eval_subnets": args.eval_subnets,
        "bn_batches": args.bn_batches,
        "seed": args.seed,
        "device": "cpu",
        "tensorboard": False,
    }
    variants = [_variant(v) for v in args.variant] or [("base", {})]
    lines, say = line_printer()

    say(f"# {' '.join(sys.argv)}")
    say(f"# {common}, width {args.width_mult}, 1 thread; load {os.getloadavg()[0]:.1f}")
    engine = ProgressiveShrinking(SupernetOptions(**common), width_mult=args.width_mult)
    s = engine.splits
    say(f"# {len(s.train)} train / {len(s.val)} val images at {s.image_size}x{s.image_size}")
    say(
        f"{'variant':<10} {'ep':>2} {'phase':<6} {'lr':>7} {'loss':>6} {'largest':>7} "
        f"{'smallest':>8} {'random':>6} {'s':>6}"
    )
    start = time.perf_counter()
    while engine.epoch < phases["full"]:
        say(_row("full", engine.step(), time.perf_counter() - start))
    state = copy.deepcopy(engine.state_dict())
    total = sum(phases.values())
    stop = total if args.elastic_epochs is None else phases["full"] + args.elastic_epochs
    finals = {}
    for name, overrides in variants:
        say(f"# variant {name}: {overrides}")
        options = SupernetOptions(**{**common, **overrides})
        run = ProgressiveShrinking(options, width_mult=args.width_mult)
        run.load_state_dict(copy.deepcopy(state))
        start = time.perf_counter()
        m = {}
        while run.epoch < min(stop, total):
            m = run.step()
            say(_row(name, m, time.perf_counter() - start))
        finals[name] = m
        if args.save:
            Path(args.save).mkdir(parents=True, exist_ok=True)
            torch.save(run.state_dict(), Path(args.save) / f"{name}.pt")
    say("")
    say("last epoch: variant, largest / smallest / random val acc %")
    for name, m in finals.items():
        say(
            f"{name:<10} {m['val_acc_largest']:6.2f} / {m['val_acc_smallest']:6.2f} / "
            f"{m['val_acc_random']:6.2f}"
        )
    if args.out:
        Path(args.out).write_text("\n".join(lines) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
