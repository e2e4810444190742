"""Export a learning-curve experiment folder to the parquet file raynas ships.

    python benchmarks/curves/export.py /path/to/runs/nb201-cifar10-curves [more folders] \
        [--out raynas/benchmarks/nb201_cifar10_curves.parquet]

Reads every trial folder's ``progress.csv`` (one row per reported epoch, written by Tune) of an
experiment run with the ``train`` trainable (``benchmarks/curves/nb201_cifar10.yaml``) and
keeps the trials that reported all ``trainable.options.epochs`` epochs (a trial resumed from a
checkpoint may repeat an epoch: the last report of each epoch is kept). ``seed`` is the
trainable's training seed. An architecture sampled twice with the same seed is kept once (the
first trial by id). Columns: arch, seed, epoch, train_loss, train_acc, val_loss, val_acc,
tse, tse_ema (both recomputed here from train_loss with ``raynas.estimators.tse``, the
trainable's ``tse_ema_decay``), params_m, flops_m, cost_s. Prints what it kept and dropped;
the written file is read back with ``raynas.benchmarks.curve_table.table`` as a check.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import pandas as pd
import yaml

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from raynas.benchmarks import curves  # noqa: E402
from raynas.estimators import tse  # noqa: E402

COLUMNS = ["arch", "seed", *curves.METRICS]


def tse_columns(train_loss: pd.Series, decay: float) -> dict[str, list[float]]:
    """``tse`` and ``tse_ema`` recomputed from a curve's per-epoch training losses with
    ``raynas.estimators.tse``, so the shipped columns follow the current definitions whatever
    raynas version trained the curves (TSE-EMA changed on 2026-11-29)."""
    losses = train_loss.astype(float).tolist()
    return {
        "tse": [tse.tse(losses[: i + 1]) for i in range(len(losses))],
        "tse_ema": [tse.tse_ema(losses[: i + 1], decay) for i in range(len(losses))],
    }


def collect(exp_dir: Path, seen: set[str] | None = None) -> tuple[pd.DataFrame, dict[str, int]]:
    """Complete curves of ``exp_dir`` and counts of what was kept/dropped; architectures in
    ``seen`` (those of earlier folders) are dropped as duplicates, new ones added to it."""
    config = yaml.safe_load((exp_dir / "raynas.yaml").read_text())
    options = config["trainable"]["options"]
    if config["trainable"]["name"] != "train":
        raise SystemExit(f"{exp_dir}: not a `train` experiment ({config['trainable']['name']})")
    epochs = int(options.get("epochs", 10))
    seed = int(options.get("seed", 0))
    decay = float(options.get("tse_ema_decay", 0.9))
    frames, counts = [], {"trials": 0, "complete": 0, "incomplete": 0, "duplicate_arch": 0}
    seen = set() if seen is None else seen
    for progress in sorted(exp_dir.glob("*/progress.csv")):
        counts["trials"] += 1
        try:
            frame = pd.read_csv(progress)
        except (pd.errors.EmptyDataError, pd.errors.ParserError):
            counts["incomplete"] += 1
            continue
        if "epoch" not in frame or frame.empty:
            counts["incomplete"] += 1
            continue
        frame = frame.drop_duplicates("epoch", keep="last").sort_values("epoch")
        if frame["epoch"].tolist() != list(range(1, epochs + 1)) or frame["arch"].nunique() != 1:
            counts["incomplete"] += 1
            continue
        arch = str(frame["arch"].iloc[0])
        if arch in seen:
            counts["duplicate_arch"] += 1
            continue
        seen.add(arch)
        counts["complete"] += 1
        frame = frame.assign(seed=seed, **tse_columns(frame["train_loss"], decay))
        frames.append(frame[[c for c in COLUMNS if c in frame.columns]])
    if not frames:
        raise SystemExit(f"{exp_dir}: no trial reported all {epochs} epochs")
    out = pd.concat(frames, ignore_index=True)
    out["seed"] = out["seed"].astype("int32")
    out["epoch"] = out["epoch"].astype("int32")
    return out.sort_values(["arch", "seed", "epoch"], ignore_index=True), counts


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "experiments",
        type=Path,
        nargs="+",
        help="experiment folders (with raynas.yaml), e.g. a run and its continuation with "
        "another searcher seed; an architecture in several is kept from the first",
    )
    parser.add_argument("--out", type=Path, default=curves.shipped_path())
    args = parser.parse_args(argv)
    seen: set[str] = set()
    frames, counts = [], {}
    for exp in args.experiments:
        frame, found = collect(exp.expanduser(), seen)
        frames.append(frame)
        counts = {k: counts.get(k, 0) + v for k, v in found.items()}
        print(f"{exp}: {found}")
    frame = pd.concat(frames, ignore_index=True).sort_values(
        ["arch", "seed", "epoch"], ignore_index=True
    )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    tmp = args.out.with_suffix(".tmp.parquet")
    frame.to_parquet(tmp, index=False)
    tmp.replace(args.out)
    loaded = curves.table(args.out)
    final = pd.Series(loaded.final("val_acc"))
    print(
        f"{counts['trials']} trial folders: {counts['complete']} complete curves kept, "
        f"{counts['incomplete']} incomplete, {counts['duplicate_arch']} duplicate architectures"
    )
    print(
        f"wrote {args.out}: {len(loaded)} architectures x {loaded.epochs} epochs, "
        f"{len(frame)} rows; final val_acc min {final.min():.1f} median {final.median():.1f} "
        f"max {final.max():.1f}; cost_s per epoch median {frame['cost_s'].median():.2f}"
    )


if __name__ == "__main__":
    main()
