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

Usage::

    python benchmarks/ofa.py --supernet ~/raynas_results/ofa-supernet
    python benchmarks/ofa.py --set trainable.options.epochs=10 --out benchmarks/results/ofa.txt
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

REPO = Path(__file__).resolve().parents[1]


def spearman(a, b) -> float:
    """Spearman's rho (average ranks for ties)."""
    from scipy.stats import spearmanr

    return float(spearmanr(a, b).statistic)


def bootstrap_ci(a, b, n: int = 2000, seed: int = 0) -> tuple[float, float]:
    """95% percentile interval of Spearman's rho over resamples of the pairs."""
    rng = np.random.default_rng(seed)
    a, b = np.asarray(a), np.asarray(b)
    values = []
    for _ in range(n):
        idx = rng.integers(0, len(a), len(a))
        if len(set(a[idx])) > 1 and len(set(b[idx])) > 1:
            values.append(spearman(a[idx], b[idx]))
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


def train_from_scratch(space, genotype, data, epochs, train) -> tuple[float, float]:
    """(final val accuracy, seconds) of ``genotype`` trained alone for ``epochs``."""
    start = time.perf_counter()
    trainer = scratch_trainer(space, genotype, data, epochs, train)
    metrics = {}
    while trainer.epoch < epochs:
        metrics = trainer.step()
    return float(metrics["val_acc"]), time.perf_counter() - start


ROW = re.compile(r"\s*(\d+)\s+([\d.]+)\s+([\d.]+)\s+([\d.]+)\s+([\d.]+)\s+([\d.]+)\s+(d\S+)")


def read_rows(logs: list[str], archs: list[str]) -> dict[int, tuple[float, ...]]:
    """Part-1 rows printed by earlier runs (``--rows``), by subnet index; a row whose arch is
    not this run's subnet at that index is an error (other seed or supernet)."""
    found = {}
    for log in logs:
        for line in Path(log).read_text().splitlines():
            m = ROW.fullmatch(line)
            if m:
                i = int(m.group(1))
                if i >= len(archs) or archs[i] != m.group(7):
                    raise SystemExit(f"{log}: row {i} is not this run's subnet {i}")
                found[i] = tuple(float(m.group(k)) for k in range(2, 7))
    return found


def run_search(method, target, seed, trials, space, score, population) -> list[dict]:
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
    parser.add_argument("--subset", type=int, default=600, help="training images")
    parser.add_argument("--phases", default="full=2,kernel=1,depth=1,expand=1")
    parser.add_argument("--supernet-batch-size", type=int, default=32)
    parser.add_argument("--supernet-lr", type=float, default=0.05)
    parser.add_argument("--rows", nargs="*", default=[], help="logs whose part-1 rows to reuse")
    parser.add_argument("--reverse", action="store_true", help="part 1 from the last subnet")
    parser.add_argument("--table-repeats", type=int, default=60, help="latency table effort")
    parser.add_argument("--table-rounds", type=int, default=20, help="latency table effort")
    parser.add_argument(
        "--parts", nargs="+", default=["fidelity", "search"], choices=["fidelity", "search"]
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
    parser.add_argument("--seed", type=int, default=100, help="seed of the random subnets")
    parser.add_argument("--out", help="also write the printed table to this file")
    args = parser.parse_args(argv)
    os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")
    torch.set_num_threads(1)

    import search_spaces
    from raynas.hardware import measure_latency, targets
    from raynas.nn.ofa import LARGEST
    from raynas.trainables import subnet

    lines: list[str] = []

    def say(text: str = "") -> None:
        print(text, flush=True)
        lines.append(text)

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
            "subset": args.subset,
            "phases": phases,
            "batch_size": args.supernet_batch_size,
            "lr": args.supernet_lr,
            "sandwich": True,
            "eval_subnets": 2,
            "device": "cpu",
            "tensorboard": False,
        }
        say(f"training a supernet: width {args.width_mult}, {options}")
        t0 = time.perf_counter()
        source = train_supernet(args.train_supernet, options, args.width_mult)
        train_s = time.perf_counter() - t0
    elif args.supernet:
        source = args.supernet
    else:
        parser.error("give --supernet or --train-supernet")
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
    }
    for t, table in tables.items():
        say(f"table {t}: {table.path} ({'cached' if table.from_cache else 'built now'})")
    scorer = subnet.Scorer(loaded, tables, bn_batches=args.bn_batches)
    no_recal = subnet.Scorer(loaded, tables, bn_batches=0)
    train = {"lr": args.scratch_lr, "batch_size": args.scratch_batch_size}

    largest = space.decode(space.encode(_genotype(LARGEST)))
    rng = np.random.default_rng(args.seed)
    genotypes, seen = [], set()
    while len(genotypes) < args.subnets:
        g = space.sample(rng)
        if space.to_str(g) not in seen:
            seen.add(space.to_str(g))
            genotypes.append(g)
    if "fidelity" in args.parts:
        # ------------------------------------------------------------- 1-3: fidelity, cost
        say("")
        say(
            f"## 1. rank fidelity: {args.subnets} random subnets (seed {args.seed}), scratch "
            f"training {epochs} epochs each (lr {args.scratch_lr}, "
            f"batch {args.scratch_batch_size})"
        )
        say(
            f"{'#':>3} {'inherit+BN':>10} {'inherit':>8} {'scratch':>8} {'score_s':>8} "
            f"{'train_s':>8}  arch"
        )
        done = read_rows(args.rows, [space.to_str(g) for g in genotypes])
        order = list(range(len(genotypes)))[:: -1 if args.reverse else 1]
        for i in order:
            g = genotypes[i]
            if i not in done:
                t0 = time.perf_counter()
                m = scorer.score(g, space.to_str(g))
                spent = time.perf_counter() - t0
                plain = no_recal.score(g, space.to_str(g))["val_acc"]
                acc, secs = train_from_scratch(space, g, data, epochs, train)
                done[i] = (m["val_acc"], plain, acc, spent, secs)
            a, b, c, d, e = done[i]
            say(f"{i:>3} {a:>10.2f} {b:>8.2f} {c:>8.2f} {d:>8.3f} {e:>8.1f}  {space.to_str(g)}")
        rows = [done[i] for i in sorted(done)]
        inh, raw, scr, score_s, train_s_list = (list(col) for col in zip(*rows, strict=True))
        rho, ci = spearman(inh, scr), bootstrap_ci(inh, scr)
        rho0, ci0 = spearman(raw, scr), bootstrap_ci(raw, scr)
        say("")
        say(
            f"Spearman(inherited, BN recalibrated; scratch) = {rho:.3f}  95% CI [{ci[0]:.3f}, "
            f"{ci[1]:.3f}]   target >= 0.6: {'met' if rho >= 0.6 else 'NOT met'}"
        )
        say(
            f"Spearman(inherited, BN not recalibrated; scratch) = {rho0:.3f}  95% CI "
            f"[{ci0[0]:.3f}, {ci0[1]:.3f}]"
        )
        say(
            f"mean val acc: inherited+BN {np.mean(inh):.2f}, inherited {np.mean(raw):.2f}, "
            f"scratch {np.mean(scr):.2f}"
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
        alone, secs = train_from_scratch(space, largest, data, epochs, train)
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
            f"## 4. search: evolution (NSGA-II order, population {args.population}) vs random, "
            f"{args.trials} trials, seeds 0..{args.seeds - 1}; hypervolume of (val_acc, "
            "latency_ms_<target>) above (0, largest subnet's latency)"
        )
        say(f"{'target':<10} {'method':<10} {'HV mean':>10} {'se':>8}  per seed")
        pooled: dict[str, list[dict]] = {}
        summary = {}
        t_search = time.perf_counter()
        for t in args.targets:
            for method in ("evolution", "random"):
                hvs = []
                for seed in range(args.seeds):
                    runs = run_search(method, t, seed, args.trials, space, score, args.population)
                    pooled.setdefault(t, []).extend(runs)
                    pts = [(r["val_acc"], r[f"latency_ms_{t}"]) for r in runs]
                    hvs.append(hypervolume(pts, (0.0, refs[t])))
                    print(
                        f"  {t} {method} seed {seed}: HV {hvs[-1]:.2f}, {len(cache)} scored, "
                        f"{time.perf_counter() - t_search:.0f} s",
                        flush=True,
                    )
                mean, se = _mean_se(hvs)
                summary[(t, method)] = (mean, se)
                say(
                    f"{t:<10} {method:<10} {mean:>10.2f} {se:>8.2f}  "
                    + " ".join(f"{h:.1f}" for h in hvs)
                )
            e, r = summary[(t, "evolution")], summary[(t, "random")]
            diff_se = float(np.hypot(e[1], r[1]))
            verdict = "higher" if e[0] > r[0] else "NOT higher"
            say(f"{t:<10} evolution - random = {e[0] - r[0]:+.2f} (se {diff_se:.2f}): {verdict}")
        say(
            f"search time {time.perf_counter() - t_search:.0f} s, "
            f"{len(cache)} distinct subnets scored"
        )

        # ------------------------------------------------------------- 5: per device
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
        measured: dict[tuple[str, str], float] = {}
        for t in args.targets:
            target = targets.parse(t)
            for _ in range(2):  # interleave the two choices twice, keep the lower median
                for c in args.targets:
                    model = space.build(
                        space.from_str(chosen[c]["arch"]),
                        num_classes=splits.num_classes,
                        in_channels=3,
                        width_mult=width,
                    )
                    stats = measure_latency(
                        model,
                        (3, splits.image_size, splits.image_size),
                        device=target.device,
                        batch_size=target.batch_size,
                        repeats=args.latency_repeats,
                        threads=target.threads,
                    )
                    key = (t, c)
                    measured[key] = min(measured.get(key, np.inf), stats.median_ms)
        say(f"{'measured on':<12} " + " ".join(f"{'choice ' + c:>16}" for c in args.targets))
        for t in args.targets:
            say(f"{t:<12} " + " ".join(f"{measured[(t, c)]:>13.3f} ms" for c in args.targets))
        for t, other in ((a, b), (b, a)):
            own, theirs = measured[(t, t)], measured[(t, other)]
            verdict = "faster" if own < theirs else "NOT faster"
            say(
                f"on {t}: its own choice {own:.3f} ms vs {other}'s choice {theirs:.3f} ms: "
                f"{verdict} ({theirs / own:.2f}x)"
            )
    say("")
    say(f"total {time.perf_counter() - t_all:.0f} s; load at end {_load()}")
    if args.out:
        Path(args.out).write_text("\n".join(lines) + "\n")
    return 0


def _genotype(stages):
    from search_spaces.mobilenetv3 import MobileNetV3Genotype

    return MobileNetV3Genotype(tuple(len(s) for s in stages), stages)


if __name__ == "__main__":
    sys.exit(main())
