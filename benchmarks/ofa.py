"""Once-for-All on this machine: rank fidelity, cost, search per target, per device, quality.

Every Number of issue 25, from one supernet of the ``supernet`` trainable:

1. **Rank fidelity.** ``--subnets`` random subnets (``space.sample`` with ``--seed``): the val
   accuracy with inherited weights (``raynas.trainables.subnet.Scorer``, BN recalibrated, and
   again with BN recalibration off) against the val accuracy of the same subnet trained from
   scratch alone (the ``train`` trainable's ``Trainer``) with the supernet's own epoch budget,
   on the supernet run's data and validation split. Spearman's rho with a bootstrap 95%
   interval (2000 resamples of the subnets).
2. **Cost.** Mean seconds to score a subnet from the supernet vs to train it from scratch.
3. **Supernet quality.** The largest subnet's val accuracy with shared weights (BN
   recalibrated) vs the largest network trained alone for the same epochs.
4. **Search.** For each of two hardware targets, multi-objective evolution
   (``objectives: {val_acc: max, latency_ms_<target>: min}``) vs random search at equal
   trials, ``--seeds`` seeds each, trials scored by the ``Scorer`` (the ``subnet`` trainable's
   work, in this process: the searcher is driven with ``suggest``/``on_trial_complete``
   as Tune would, sequentially). Hypervolume of the (val accuracy, latency) front against a
   reference point fixed before the runs (accuracy 0, the largest subnet's predicted latency on
   that target), mean ± standard error over seeds.
5. **Per device.** A latency budget per target (the median predicted latency of the random
   subnets of part 1 on that target); each target's choice is the most accurate subnet within
   its budget among everything evaluated in part 4; both choices are then timed on both
   targets (``measure_latency``: median of ``--latency-repeats`` calls, the target's batch and
   threads), interleaved, so each is compared with the other on the same target.

The supernet is read from ``--supernet`` (experiment folder or checkpoint), else trained here
by running ``--example`` (default ``examples/ofa_supernet.yaml``) through ``raynas``'s own
``experiment.run`` with ``--set`` overrides. Latency tables are built here when missing (cached).

Part 1's scratch trainings (the cost) can run in worker processes first: ``--claim-dir DIR``
without a supernet trains (subnet, seed) tasks claimed in DIR and prints one line each; the
summary run (``--supernet ... --parts fidelity --rows LOGS``) reads those lines and trains
only what is missing. ``--scratch-seeds 2`` adds a second training per subnet (same split),
whose agreement with the first is the scratch noise.

Usage (benchmarks/README.md, "Once-for-All, second measurement", has the full commands)::

    python benchmarks/ofa.py --supernet ~/raynas_results/ofa-supernet
    python benchmarks/ofa.py --supernet SN --parts search --search-json S.json --out search.txt
    python benchmarks/ofa.py --supernet SN --parts device --search-json S.json
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

REPO = Path(__file__).resolve().parents[1]


def line_printer() -> tuple[list[str], Callable[[str], None]]:
    """The lines printed so far and ``say``, which prints a line (flushed) and keeps it."""
    lines: list[str] = []

    def say(text: str = "") -> None:
        print(text, flush=True)
        lines.append(text)

    return lines, say


def spearman(a, b) -> float:
    """Spearman's rho (average ranks for ties)."""
    from scipy.stats import spearmanr

    return float(spearmanr(a, b).statistic)


def bootstrap_ci(a, b, n: int = 2000, seed: int = 0) -> tuple[float, float]:
    """95% percentile interval of Spearman's rho over resamples of the pairs.

    Resamples whose values are all equal on one side have no rho and are skipped; (nan, nan)
    when fewer than 3 pairs are given or no resample has a rho.
    """
    rng = np.random.default_rng(seed)
    a, b = np.asarray(a), np.asarray(b)
    if len(a) < 3:
        return float("nan"), float("nan")
    values = []
    for _ in range(n):
        idx = rng.integers(0, len(a), len(a))
        if len(set(a[idx])) > 1 and len(set(b[idx])) > 1:
            values.append(spearman(a[idx], b[idx]))
    if not values:
        return float("nan"), float("nan")
    lo, hi = np.percentile(values, [2.5, 97.5])
    return float(lo), float(hi)


def hypervolume(points: list[tuple[float, float]], ref: tuple[float, float]) -> float:
    """2-D hypervolume of (accuracy: max, latency: min) points above ``ref`` = (acc, lat)."""
    pts = sorted((lat, acc) for acc, lat in points if acc > ref[0] and lat < ref[1])
    volume, best = 0.0, ref[0]
    # sweep latency from low to high: each point adds the accuracy it gains over the best so far
    for i, (lat, acc) in enumerate(pts):
        best = max(best, acc)
        right = pts[i + 1][0] if i + 1 < len(pts) else ref[1]
        volume += (right - lat) * (best - ref[0])
    return volume


def _load() -> str:
    return " ".join(f"{v:.1f}" for v in os.getloadavg())


def _mean_se(values) -> tuple[float, float]:
    v = np.asarray(values, dtype=float)
    return float(v.mean()), float(v.std(ddof=1) / np.sqrt(len(v))) if len(v) > 1 else 0.0


def train_supernet(folder: str, options: dict, width: float) -> str:
    """Train a supernet with the ``supernet`` trainable's engine (``ProgressiveShrinking``,
    epoch by epoch as the trainable does, one thread) and save its checkpoint as the trainable
    does (``<folder>/supernet.pt``); returns the file."""
    import torch

    from raynas.oneshot.shrinking import ProgressiveShrinking, SupernetOptions

    engine = ProgressiveShrinking(SupernetOptions(**options), width_mult=width)
    total = sum(engine.options.phases.values())
    start = time.perf_counter()
    while engine.epoch < total:
        m = engine.step()
        shown = {k: round(v, 2) for k, v in m.items() if k.startswith("val_acc")}
        print(
            f"supernet epoch {engine.epoch}/{total} ({m.get('phase')}): {shown} "
            f"{time.perf_counter() - start:.0f} s",
            flush=True,
        )
    Path(folder).mkdir(parents=True, exist_ok=True)
    path = str(Path(folder) / "supernet.pt")
    torch.save(engine.state_dict(), path)
    return path


def scratch_trainer(space, genotype, data: dict, epochs: int, train: dict):
    from raynas.trainables.train import Trainer, TrainOptions

    options = TrainOptions(
        dataset=data["dataset"],
        root=data.get("root"),
        subset=data.get("subset"),
        val_fraction=data.get("val_fraction", 0.1),
        image_size=data.get("image_size"),
        seed=int(data.get("seed", 0)),
        epochs=epochs,
        threads=1,
        device="cpu",
        **train,
    )
    return Trainer(space, space.encode(genotype), options)


def train_from_scratch(space, genotype, data, epochs, train, seed: int = 0) -> tuple[float, float]:
    """(final val accuracy, seconds) of ``genotype`` trained alone for ``epochs``.

    ``seed`` 0 is the ``Trainer``'s own initialisation; another seed re-draws the initial
    weights and the batch order (``torch.manual_seed(1000 + seed)``) but keeps the data split,
    which the data's own seed fixes, so every seed is scored on the same validation images.
    """
    start = time.perf_counter()
    trainer = scratch_trainer(space, genotype, data, epochs, train)
    if seed:
        torch.manual_seed(1000 + seed)
        fresh = space.build(
            genotype,
            num_classes=trainer.splits.num_classes,
            in_channels=trainer.splits.in_channels,
        )
        trainer.model.load_state_dict(fresh.state_dict())
        trainer.generator.manual_seed(1000 + seed)
    metrics = {}
    while trainer.epoch < epochs:
        metrics = trainer.step()
    return float(metrics["val_acc"]), time.perf_counter() - start


SCRATCH = re.compile(r"scratch (\d+|largest) (\d+) ([\d.]+) ([\d.]+) (d\S+)")


def read_scratch(logs: list[str], archs: dict[str, str]) -> dict[tuple[str, int], tuple]:
    """Scratch trainings printed by worker runs (``--rows``): (subnet, seed) -> (val acc,
    seconds); a line whose arch is not this run's subnet of that name is an error."""
    found = {}
    for log in logs:
        if not Path(log).exists():
            continue
        for line in Path(log).read_text().splitlines():
            m = SCRATCH.fullmatch(line.strip())
            if m:
                if archs.get(m.group(1)) != m.group(5):
                    raise SystemExit(f"{log}: {m.group(1)} is not this run's subnet")
                found[m.group(1), int(m.group(2))] = (float(m.group(3)), float(m.group(4)))
    return found


def run_search(
    method, target, seed, trials, space, score, population, sample_size=None
) -> list[dict]:
    """One search run: ``trials`` results (dicts with arch, val_acc, latency)."""
    from raynas.searchers.evolution import EvolutionSearcher

    metric = f"latency_ms_{target}"
    out = []
    if method == "random":
        rng = np.random.default_rng(seed)
        for _ in range(trials):
            out.append(score(space.sample(rng)))
        return out
    algo = EvolutionSearcher(
        space,
        metric=["val_acc", metric],
        mode=["max", "min"],
        seed=seed,
        population_size=population,
        **({} if sample_size is None else {"sample_size": sample_size}),
    )
    algo.set_search_properties(None, None, space.tune_space())
    for i in range(trials):
        config = algo.suggest(f"{method}-{target}-{seed}-{i}")
        result = score(space.decode(config))
        algo.on_trial_complete(f"{method}-{target}-{seed}-{i}", result)
        out.append(result)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--supernet", help="experiment folder or checkpoint of a supernet")
    parser.add_argument("--train-supernet", metavar="DIR", help="train one here, save it in DIR")
    parser.add_argument("--width-mult", type=float, default=0.35)
    parser.add_argument("--dataset", default="digits")
    parser.add_argument("--root", default=None)
    parser.add_argument("--image-size", type=int, default=None)
    parser.add_argument("--subset", type=int, default=600, help="training images (0: all)")
    parser.add_argument("--phases", default="full=2,kernel=1,depth=1,expand=1")
    parser.add_argument("--supernet-batch-size", type=int, default=32)
    parser.add_argument("--supernet-lr", type=float, default=0.05)
    parser.add_argument("--rows", nargs="*", default=[], help="logs of scratch workers to read")
    parser.add_argument(
        "--claim-dir", help="share part 1 between processes: each subnet claimed by one"
    )
    parser.add_argument("--scratch-seeds", type=int, default=1, help="scratch trainings each")
    parser.add_argument(
        "--reference-seeds",
        type=int,
        default=1,
        help="part 1's scratch reference: the mean of seeds 0..N-1 (missing ones trained here)",
    )
    parser.add_argument("--stop-at", help="claim mode: start no task after this UTC HH:MM")
    parser.add_argument("--val-fraction", type=float, default=0.1)
    parser.add_argument("--kd-ratio", type=float, default=0.0)
    parser.add_argument("--table-repeats", type=int, default=60, help="latency table effort")
    parser.add_argument("--table-rounds", type=int, default=20, help="latency table effort")
    parser.add_argument(
        "--parts",
        nargs="+",
        default=["fidelity", "search", "device"],
        choices=["fidelity", "search", "device"],
    )
    parser.add_argument("--targets", nargs=2, default=["cpu-b1", "cpu-b64"])
    parser.add_argument("--subnets", type=int, default=30, help="random subnets (part 1)")
    parser.add_argument("--scratch-epochs", type=int, help="default: the supernet's epochs")
    parser.add_argument("--scratch-lr", type=float, default=0.05)
    parser.add_argument("--scratch-batch-size", type=int, default=64)
    parser.add_argument("--bn-batches", type=int, default=4)
    parser.add_argument("--seeds", type=int, default=10, help="search seeds per method/target")
    parser.add_argument("--trials", type=int, default=60, help="trials per search run")
    parser.add_argument("--population", type=int, default=12)
    parser.add_argument("--latency-repeats", type=int, default=60)
    parser.add_argument("--latency-rounds", type=int, default=2, help="interleaved rounds")
    parser.add_argument("--sample-size", type=int, help="evolution's tournament (default its own)")
    parser.add_argument(
        "--search-json", help="part 4 writes what it evaluated here, part 5 reads it"
    )
    parser.add_argument("--seed", type=int, default=100, help="seed of the random subnets")
    parser.add_argument("--out", help="also write the printed table to this file")
    args = parser.parse_args(argv)
    os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")
    torch.set_num_threads(1)

    import search_spaces
    from raynas.hardware import measure_latency, targets
    from raynas.nn.ofa import LARGEST
    from raynas.trainables import subnet

    lines, say = line_printer()

    t_all = time.perf_counter()
    say(f"# {' '.join(sys.argv)}")
    say(f"# torch {torch.__version__}, 1 thread; load at start {_load()}")
    train_s = None
    if args.train_supernet:
        phases = {k: int(v) for k, v in (p.split("=") for p in args.phases.split(","))}
        options = {
            "dataset": args.dataset,
            "root": args.root,
            "image_size": args.image_size,
            "subset": args.subset or None,
            "val_fraction": args.val_fraction,
            "phases": phases,
            "batch_size": args.supernet_batch_size,
            "lr": args.supernet_lr,
            "sandwich": True,
            "kd_ratio": args.kd_ratio,
            "eval_subnets": 2,
            "threads": 1,
            "device": "cpu",
            "tensorboard": False,
        }
        say(f"training a supernet: width {args.width_mult}, {options}")
        t0 = time.perf_counter()
        source = train_supernet(args.train_supernet, options, args.width_mult)
        train_s = time.perf_counter() - t0
    elif args.supernet:
        source = args.supernet
    elif args.claim_dir:
        return scratch_worker(args, say)
    else:
        parser.error("give --supernet, --train-supernet or --claim-dir")
    loaded = subnet.cached_supernet(source)
    meta = loaded.meta
    identity, options = meta["identity"], dict(meta.get("options") or {})
    data = subnet.data_options(meta)
    epochs = args.scratch_epochs or int(meta.get("epoch") or options.get("epochs"))
    width = float(identity["width_mult"])
    space = search_spaces.get("mobilenetv3", width_mult=width)
    splits = loaded.splits
    say(
        f"supernet: {meta.get('path')} (epoch {meta.get('epoch')}, width {width:g}, "
        f"{splits.name} {splits.image_size}x{splits.image_size}, "
        f"{len(splits.train)} train / {len(splits.val)} val images)"
        + (f"; trained here in {train_s:.0f} s" if train_s else "")
    )
    say(f"supernet options: {options}")
    tables = {
        t: targets.table(
            t,
            splits.image_size,
            width,
            splits.num_classes,
            build=True,
            repeats=args.table_repeats,
            rounds=args.table_rounds,
            calibration_repeats=args.table_repeats,
        )
        for t in args.targets
        # part 1-3 need no latency (a table at a new resolution takes minutes to build)
        if {"search", "device"} & set(args.parts)
    }
    for t, table in tables.items():
        say(f"table {t}: {table.path} ({'cached' if table.from_cache else 'built now'})")
    scorer = subnet.Scorer(loaded, tables, bn_batches=args.bn_batches)
    no_recal = subnet.Scorer(loaded, tables, bn_batches=0)
    train = {"lr": args.scratch_lr, "batch_size": args.scratch_batch_size}

    largest = space.decode(space.encode(_genotype(LARGEST)))
    genotypes = subnet_genotypes(space, args.subnets, args.seed)
    if "fidelity" in args.parts:
        # ------------------------------------------------------------- 1-3: fidelity, cost
        say("")
        say(
            f"## 1. rank fidelity: {args.subnets} random subnets (seed {args.seed}), scratch "
            f"training {epochs} epochs each (lr {args.scratch_lr}, "
            f"batch {args.scratch_batch_size})"
        )
        archs = [space.to_str(g) for g in genotypes]
        largest_arch = space.to_str(largest)
        by_name = {str(i): g for i, g in enumerate(genotypes)} | {"largest": largest}
        arch_of = {str(i): a for i, a in enumerate(archs)} | {"largest": largest_arch}
        # scratch trainings: the worker runs' lines (--rows), what is missing trained here
        found = read_scratch(args.rows, arch_of)
        n_ref = args.reference_seeds
        for k in range(n_ref):  # the reference seeds of every subnet: train what is missing
            for name in by_name:
                if (name, k) not in found:
                    found[name, k] = train_from_scratch(
                        space, by_name[name], data, epochs, train, k
                    )
        say(
            f"{'#':>3} {'inherit+BN':>10} {'inherit':>8} {'scratch0':>8} {'scratch1':>8} "
            f"{'score_s':>8} {'train_s':>8}  arch"
        )
        rows, params, seeds = [], [], []
        for i, g in enumerate(genotypes):
            t0 = time.perf_counter()
            inherited = scorer.score(g, archs[i])["val_acc"]
            spent = time.perf_counter() - t0
            plain = no_recal.score(g, archs[i])["val_acc"]
            acc0, secs = found[str(i), 0]
            acc1 = found.get((str(i), 1), (float("nan"), 0.0))[0]
            rows.append((inherited, plain, acc0, acc1, spent, secs))
            seeds.append([found[str(i), k][0] for k in range(n_ref)])
            params.append(_params(space, g, splits))
            say(
                f"{i:>3} {inherited:>10.2f} {plain:>8.2f} {acc0:>8.2f} {acc1:>8.2f} "
                f"{spent:>8.3f} {secs:>8.1f}  {archs[i]}"
            )
        inh, raw, scr, scr1, score_s, train_s_list = (list(c) for c in zip(*rows, strict=True))
        ref = "scratch" if n_ref == 1 else f"scratch mean of {n_ref} seeds"
        scr0 = list(scr)  # seed 0 alone
        if n_ref > 1:  # the reference is the mean over the seeds
            scr = [float(np.mean(v)) for v in seeds]
        rho, ci = spearman(inh, scr), bootstrap_ci(inh, scr)
        rho0, ci0 = spearman(raw, scr), bootstrap_ci(raw, scr)
        say("")
        say(
            f"Spearman(inherited, BN recalibrated; {ref}) = {rho:.3f}  95% CI [{ci[0]:.3f}, "
            f"{ci[1]:.3f}]   target >= 0.6: {'met' if rho >= 0.6 else 'NOT met'}"
        )
        say(
            f"Spearman(inherited, BN not recalibrated; {ref}) = {rho0:.3f}  95% CI "
            f"[{ci0[0]:.3f}, {ci0[1]:.3f}]"
        )
        say(
            f"trivial proxy: Spearman(parameters; scratch) = {spearman(params, scr):.3f}; "
            f"Spearman(inherited+BN; parameters) = {spearman(inh, params):.3f}"
        )
        say(
            f"mean val acc: inherited+BN {np.mean(inh):.2f}, inherited {np.mean(raw):.2f}, "
            f"scratch {np.mean(scr):.2f} (range {min(scr):.2f}-{max(scr):.2f})"
        )
        if n_ref > 1:
            even = [float(np.mean(v[0::2])) for v in seeds]
            odd = [float(np.mean(v[1::2])) for v in seeds]
            half, (lo, hi) = spearman(even, odd), bootstrap_ci(even, odd)
            say(
                f"scratch noise: split-half Spearman(mean of even seeds; mean of odd seeds) = "
                f"{half:.3f}  95% CI [{lo:.3f}, {hi:.3f}]; Spearman-Brown reliability of the "
                f"{n_ref}-seed mean {2 * half / (1 + half):.3f}; Spearman(inherited+BN; seed 0) "
                f"= {spearman(inh, [v[0] for v in seeds]):.3f}"
            )
        both = [i for i, a in enumerate(scr1) if a == a]  # subnets with a second scratch seed
        if len(both) >= 5:
            s0, s1 = [scr0[i] for i in both], [scr1[i] for i in both]
            mean2 = [(a + b) / 2 for a, b in zip(s0, s1, strict=True)]
            sub = [inh[i] for i in both]
            lo, hi = bootstrap_ci(s0, s1)
            say(
                f"scratch noise, the {len(both)} subnets trained with a second seed: "
                f"Spearman(scratch seed 0; seed 1) = {spearman(s0, s1):.3f}  95% CI "
                f"[{lo:.3f}, {hi:.3f}]; mean |seed 0 - seed 1| "
                f"{np.mean(np.abs(np.subtract(s0, s1))):.2f} points"
            )
            say(
                f"  on them: Spearman(inherited+BN; seed 0) = {spearman(sub, s0):.3f}, "
                f"(inherited+BN; seed 1) = {spearman(sub, s1):.3f}, "
                f"(inherited+BN; mean of both) = {spearman(sub, mean2):.3f}"
            )
        say("")
        say("## 2. cost per subnet (this process, 1 thread)")
        ratio = np.mean(train_s_list) / np.mean(score_s)
        say(
            f"score from the supernet: {np.mean(score_s):.3f} s "
            f"(median {np.median(score_s):.3f}); "
            f"train from scratch ({epochs} epochs): {np.mean(train_s_list):.1f} s; "
            f"ratio {ratio:.0f}x"
        )

        say("")
        say("## 3. supernet quality: the largest subnet")
        shared = scorer.score(largest, space.to_str(largest))["val_acc"]
        alone, secs = found["largest", 0]
        say(
            f"shared weights (BN recalibrated): {shared:.2f}%   trained alone {epochs} epochs: "
            f"{alone:.2f}% ({secs:.0f} s)   gap {alone - shared:+.2f} points"
        )

    if "search" in args.parts:
        # ------------------------------------------------------------- 4: search per target
        cache: dict[str, dict] = {}

        def score(genotype) -> dict:
            arch = space.to_str(genotype)
            if arch not in cache:
                cache[arch] = scorer.score(genotype, arch)
            return cache[arch]

        refs = {t: tables[t].predict(largest) for t in args.targets}
        say("")
        say(
            f"## 4. search: evolution (NSGA-II order, population {args.population}, tournament "
            f"{args.sample_size or 'default'}) vs random, "
            f"{args.trials} trials, seeds 0..{args.seeds - 1}; hypervolume of (val_acc, "
            "latency_ms_<target>) above (0, largest subnet's latency)"
        )
        say(f"{'target':<10} {'method':<10} {'HV mean':>10} {'se':>8}  per seed")
        pooled: dict[str, list[dict]] = {}
        hvs: dict[tuple[str, str], list[float]] = {}
        t_search = time.perf_counter()
        # seeds outermost, so a run stopped by --stop-at has every method and target for the
        # seeds it finished
        for seed in range(args.seeds):
            if args.stop_at and time.strftime("%H:%M", time.gmtime()) >= args.stop_at:
                say(f"stop: {args.stop_at} UTC reached after {seed} seeds")
                break
            for t in args.targets:
                for method in ("evolution", "random"):
                    runs = run_search(
                        method,
                        t,
                        seed,
                        args.trials,
                        space,
                        score,
                        args.population,
                        args.sample_size,
                    )
                    pooled.setdefault(t, []).extend(runs)
                    pts = [(r["val_acc"], r[f"latency_ms_{t}"]) for r in runs]
                    hvs.setdefault((t, method), []).append(hypervolume(pts, (0.0, refs[t])))
                    print(
                        f"  {t} {method} seed {seed}: HV {hvs[t, method][-1]:.2f}, "
                        f"{len(cache)} scored, {time.perf_counter() - t_search:.0f} s",
                        flush=True,
                    )
        for t in args.targets:
            summary = {}
            for method in ("evolution", "random"):
                values = hvs.get((t, method), [])
                summary[method] = _mean_se(values) if values else (float("nan"), 0.0)
                say(
                    f"{t:<10} {method:<10} {summary[method][0]:>10.2f} "
                    f"{summary[method][1]:>8.2f}  " + " ".join(f"{h:.1f}" for h in values)
                )
            e, r = summary["evolution"], summary["random"]
            diff_se = float(np.hypot(e[1], r[1]))
            verdict = "higher" if e[0] > r[0] else "NOT higher"
            diffs = np.subtract(hvs.get((t, "evolution"), []), hvs.get((t, "random"), []))
            say(
                f"{t:<10} evolution - random = {e[0] - r[0]:+.2f} (se {diff_se:.2f}): {verdict}; "
                f"evolution higher in {int((diffs > 0).sum())} of {len(diffs)} seeds"
            )
        say(
            f"search time {time.perf_counter() - t_search:.0f} s, "
            f"{len(cache)} distinct subnets scored"
        )
        if args.search_json:
            Path(args.search_json).write_text(json.dumps(list(cache.values()), default=float))

    if "device" in args.parts:
        # ------------------------------------------------------------- 5: per device
        if "search" not in args.parts:
            if not args.search_json:
                parser.error("--parts device without search needs --search-json")
            pooled = {"read": json.loads(Path(args.search_json).read_text())}
        say("")
        say(
            "## 5. per device: same budget rule on both targets (median predicted latency of the "
            "part-1 subnets on that target); the most accurate evaluated subnet within it"
        )
        chosen = {}
        for t in args.targets:
            budget = float(np.median([tables[t].predict(g) for g in genotypes]))
            evaluated = {r["arch"]: r for rs in pooled.values() for r in rs}
            within = [r for r in evaluated.values() if r[f"latency_ms_{t}"] <= budget]
            best = max(within, key=lambda r: (r["val_acc"], -r[f"latency_ms_{t}"]))
            chosen[t] = best
            say(
                f"{t}: budget {budget:.3f} ms -> val_acc {best['val_acc']:.2f}, predicted "
                f"{best[f'latency_ms_{t}']:.3f} ms: {best['arch']}"
            )
        a, b = args.targets
        same = chosen[a]["arch"] == chosen[b]["arch"]
        say(f"choices differ: {'yes' if not same else 'NO (same subnet)'}")
        models = {
            c: space.build(
                space.from_str(chosen[c]["arch"]),
                num_classes=splits.num_classes,
                in_channels=3,
                width_mult=width,
            )
            for c in args.targets
        }
        # rounds: per target, each choice timed once (median of --latency-repeats calls),
        # the order alternating between rounds; a round's ratio compares the two choices
        # measured moments apart, so load changes between rounds cancel
        rounds: dict[tuple[str, str], list[float]] = {}
        say(
            f"measured: {args.latency_rounds} interleaved rounds, each the median of "
            f"{args.latency_repeats} calls; load now {_load()}"
        )
        for r in range(args.latency_rounds):
            for t in args.targets:
                target = targets.parse(t)
                for c in args.targets[:: 1 if r % 2 == 0 else -1]:
                    stats = measure_latency(
                        models[c],
                        (3, splits.image_size, splits.image_size),
                        device=target.device,
                        batch_size=target.batch_size,
                        repeats=args.latency_repeats,
                        threads=target.threads,
                    )
                    rounds.setdefault((t, c), []).append(stats.median_ms)
        measured = {k: float(np.median(v)) for k, v in rounds.items()}
        say(f"{'measured on':<12} " + " ".join(f"{'choice ' + c:>16}" for c in args.targets))
        for t in args.targets:
            say(f"{t:<12} " + " ".join(f"{measured[(t, c)]:>13.3f} ms" for c in args.targets))
        for t, other in ((a, b), (b, a)):
            own, theirs = measured[(t, t)], measured[(t, other)]
            ratios = np.divide(rounds[(t, other)], rounds[(t, t)])
            wins = int((ratios > 1).sum())
            verdict = "faster" if own < theirs else "NOT faster"
            say(
                f"on {t}: its own choice {own:.3f} ms vs {other}'s choice {theirs:.3f} ms: "
                f"{verdict} ({theirs / own:.2f}x; own faster in {wins} of {len(ratios)} rounds, "
                f"round ratios {np.min(ratios):.2f}-{np.max(ratios):.2f})"
            )
    say("")
    say(f"total {time.perf_counter() - t_all:.0f} s; load at end {_load()}")
    if args.out:
        Path(args.out).write_text("\n".join(lines) + "\n")
    return 0


def subnet_genotypes(space, count: int, seed: int) -> list:
    """``count`` distinct random genotypes of ``space`` (``space.sample`` with ``seed``)."""
    rng = np.random.default_rng(seed)
    genotypes, seen = [], set()
    while len(genotypes) < count:
        g = space.sample(rng)
        if space.to_str(g) not in seen:
            seen.add(space.to_str(g))
            genotypes.append(g)
    return genotypes


def scratch_worker(args, say) -> int:
    """Claim mode (``--claim-dir`` without a supernet): train the part-1 subnets (and the
    largest) from scratch, one task (subnet, seed) at a time, claimed in ``--claim-dir`` so
    several processes share them; all of seed 0 first, then seed 1, ... Prints one
    ``scratch <name> <seed> <val acc> <seconds> <arch>`` line per task for the summary run
    (``--supernet ... --rows LOGS``). The data and epochs are the arguments', which must be the
    supernet's (``--scratch-epochs`` = its total epochs)."""
    import search_spaces
    from raynas.nn.ofa import LARGEST

    if not args.scratch_epochs:
        raise SystemExit("--claim-dir without a supernet needs --scratch-epochs")
    space = search_spaces.get("mobilenetv3", width_mult=args.width_mult)
    data = {
        "dataset": args.dataset,
        "root": args.root,
        "image_size": args.image_size,
        "subset": args.subset or None,
        "val_fraction": args.val_fraction,
        "seed": 0,
    }
    train = {"lr": args.scratch_lr, "batch_size": args.scratch_batch_size}
    genotypes = subnet_genotypes(space, args.subnets, args.seed)
    largest = space.decode(space.encode(_genotype(LARGEST)))
    by_name = {str(i): g for i, g in enumerate(genotypes)} | {"largest": largest}
    arch_of = {name: space.to_str(g) for name, g in by_name.items()}
    tasks = [(name, k) for k in range(args.scratch_seeds) for name in by_name]
    say(f"scratch worker: {len(tasks)} tasks, {args.scratch_epochs} epochs, data {data}, {train}")
    t0 = time.perf_counter()
    for name, k in tasks:
        if args.stop_at and time.strftime("%H:%M", time.gmtime()) >= args.stop_at:
            say(f"stop: {args.stop_at} UTC reached")
            break
        if (name, k) in read_scratch(args.rows, arch_of) or not _claim(
            args.claim_dir, f"{name}-{k}"
        ):
            continue
        acc, secs = train_from_scratch(space, by_name[name], data, args.scratch_epochs, train, k)
        say(f"scratch {name} {k} {acc:.2f} {secs:.1f} {arch_of[name]}")
    say(f"worker total {time.perf_counter() - t0:.0f} s; load at end {_load()}")
    return 0


def _claim(folder: str, index: int) -> bool:
    """Claim subnet ``index`` for this process (False: another process claimed it)."""
    Path(folder).mkdir(parents=True, exist_ok=True)
    try:
        os.close(os.open(Path(folder) / str(index), os.O_CREAT | os.O_EXCL))
    except FileExistsError:
        return False
    return True


def _params(space, genotype, splits) -> int:
    """Parameters of ``genotype``'s network (the trivial proxy part 1 compares against)."""
    from raynas.nn.measure import count_params

    net = space.build(genotype, num_classes=splits.num_classes, in_channels=splits.in_channels)
    return count_params(net)


def _genotype(stages):
    from search_spaces.mobilenetv3 import MobileNetV3Genotype

    return MobileNetV3Genotype(tuple(len(s) for s in stages), stages)


if __name__ == "__main__":
    sys.exit(main())
