"""Zero-cost proxies on NAS-Bench-201: rank correlation with CIFAR-10 test accuracy, and speed.

``--n`` architectures (default 500) are drawn uniformly without replacement from the 15,625
NB201 cells with ``numpy.random.default_rng(--seed)``. Each is built as the NB201 network
(C=16, N=5 by default, PyTorch's default initialisation, ``torch.manual_seed(--seed)`` before
each build) and scored by every proxy of ``raynas.estimators.zero_cost`` on one batch of 64
genuine CIFAR-10 training images (``raynas.trainables.proxy.load_batch``: drawn with the same
seed, normalised, not augmented), with one torch thread.

Columns: ``spearman`` is Spearman's rho between the proxy and the shipped 12-epoch table's
CIFAR-10 test accuracy over the n architectures, with non-finite scores (degenerate cells:
naswot ``-inf``, jacov ``nan``) ranked last, as a search would; ``finite`` is rho over the
architectures whose score is finite only, ``nonfin`` their count. ``s/arch`` is the mean wall
time of one proxy on one architecture (each proxy timed on its own; the build is reported
separately in the header), ``cpu s`` the mean process CPU time (less sensitive to other jobs
on the machine). Every proxy runs once on a small network before timing, so one-off
start-up costs (e.g. FlopCounterMode's first use, ~1.5 s) are not counted.

Checks: ``rho`` passes when within 0.08 of the reference correlation; ``-prm`` when the
proxy's margin over #params (its rho minus the params rho on the same architectures, column
``-prm``) is within 0.08 of the reference's margin (``ref-prm``: reference rho minus the
reference params rho 0.69), which cancels what the accuracy table and the sample do to every
correlation alike; ``wall`` / ``cpu`` pass when the wall / process CPU seconds per
architecture are at most half the reference time (one thread, so CPU time is the wall time of
an idle machine; the wall time also counts waiting for other jobs). The references are the
figures given for this comparison (zero-cost-nas, Abdelfattah et al. ICLR 2021, and NASWOT,
Mellor et al. ICML 2021), measured with the public reference code on this CPU; the accuracy
they were ranked against cannot be the shipped table's (see the calibration line), so they
are targets, not a like-for-like reproduction. The header's calibration line gives the
parameter count's rho over the whole shipped table, which no implementation can change: its
gap to the params reference shows how much the 12-epoch table itself moves correlations.

Usage::

    python benchmarks/zero_cost.py --root /path/to/data            # or $RAYNAS_DATA
    python benchmarks/zero_cost.py --n 50 --json out.json          # quick look
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import sys
import time
from collections.abc import Callable, Sequence

import numpy as np
import torch
from scipy import stats

import search_spaces
from raynas.benchmarks import nb201
from raynas.estimators import zero_cost as zc
from raynas.trainables.proxy import load_batch

#: proxy -> (reference Spearman rho on NB201 CIFAR-10, reference seconds per architecture).
REFERENCE: dict[str, tuple[float | None, float | None]] = {
    "naswot": (0.78, 2.0),
    "jacov": (0.85, 1.6),
    "synflow": (0.68, 0.5),
    "snip": (0.57, 1.6),
    "grad_norm": (0.56, 1.5),
    "params": (0.69, None),
    "flops": (None, None),
}
RHO_TOLERANCE = 0.08
SPEEDUP = 2.0
ORDER = ("naswot", "jacov", "synflow", "snip", "grad_norm", "params", "flops")


def sample_archs(n: int, seed: int) -> list[str]:
    """``n`` distinct NB201 architecture strings, uniform over the table."""
    table = nb201.table()
    if not 1 <= n <= len(table):
        raise SystemExit(f"--n must be in [1, {len(table)}], got {n}")
    rows = np.random.default_rng(seed).choice(len(table), size=n, replace=False)
    return [table.arch_strs[int(r)] for r in rows]


def warm_up(proxies: Sequence[str], inputs: torch.Tensor, targets: torch.Tensor) -> None:
    """Run every proxy once on a small network so first-use costs are not timed."""
    space = search_spaces.get("nb201")
    model = space.build(space.sample(np.random.default_rng(0)), C=4, N=1)
    for name in proxies:
        zc.compute(name, model, inputs[:4], targets[:4])


def score_archs(
    archs: Sequence[str],
    proxies: Sequence[str],
    inputs: torch.Tensor,
    targets: torch.Tensor,
    C: int,
    N: int,
    seed: int,
    progress: Callable[[int, int], None] | None = None,
    sink: Callable[[dict], None] | None = None,
) -> list[dict]:
    """Build and score each architecture; one record per architecture.

    A record holds ``arch``, ``index``, ``val_acc``/``test_acc`` (table, CIFAR-10),
    ``build_s``, ``scores`` (raw floats, possibly non-finite), ``wall_s`` and ``cpu_s`` per
    proxy, and ``load`` (1-minute load average when it was scored). ``sink`` is given each
    record as soon as it is complete (e.g. to append it to a file that survives a crash).
    """
    space = search_spaces.get("nb201")
    table = nb201.table()
    records = []
    for i, arch in enumerate(archs):
        entry = table.lookup(arch, "cifar10")
        torch.manual_seed(seed)
        start = time.perf_counter()
        model = space.build(space.from_str(arch), C=C, N=N)
        record = {
            "arch": arch,
            "index": entry.index,
            "val_acc": entry.val_acc,
            "test_acc": entry.test_acc,
            "build_s": time.perf_counter() - start,
            "scores": {},
            "wall_s": {},
            "cpu_s": {},
            "load": os.getloadavg()[0],
        }
        for name in proxies:
            wall, cpu = time.perf_counter(), time.process_time()
            value = zc.compute(name, model, inputs, targets)
            record["wall_s"][name] = time.perf_counter() - wall
            record["cpu_s"][name] = time.process_time() - cpu
            record["scores"][name] = value
        records.append(record)
        if sink is not None:
            sink(record)
        if progress is not None:
            progress(i + 1, len(archs))
    return records


def params_calibration(sample: int = 150, draws: int = 2000, seed: int = 0) -> str:
    """How #params correlates with CIFAR-10 test accuracy in this table (analytic counts at
    C=16, N=5): over all 15,625 cells, and over ``draws`` random samples of ``sample`` cells
    (the reference's protocol size), with how often such a sample reaches the reference's
    figure. A proxy-free check of what the table itself allows."""
    table = nb201.table()
    space = search_spaces.get("nb201")
    params = np.array([nb201.params_and_macs(space.from_str(a).ops)[0] for a in table.arch_strs])
    acc = np.asarray(table.test("cifar10"), dtype=float)
    rng = np.random.default_rng(seed)
    rhos = np.array(
        [
            spearman(params[i], acc[i])
            for i in (rng.choice(len(acc), sample, replace=False) for _ in range(draws))
        ]
    )
    ref = REFERENCE["params"][0]
    return (
        f"# calibration: params vs test acc over all 15,625 archs of this table: rho = "
        f"{spearman(params, acc):.3f}; over {draws} random samples of {sample}: "
        f"{rhos.mean():.3f} +- {rhos.std():.3f}, P(rho >= {ref}) = {np.mean(rhos >= ref):.4f} "
        f"(reference figure {ref})"
    )


def ranked(values: Sequence[float]) -> np.ndarray:
    """Scores with ``nan`` mapped to ``-inf`` (ranked last)."""
    out = np.asarray(values, dtype=float)
    return np.where(np.isnan(out), -np.inf, out)


def spearman(x: Sequence[float], y: Sequence[float]) -> float:
    x, y = np.asarray(x, float), np.asarray(y, float)
    if len(x) < 3 or np.all(x == x[0]):
        return math.nan
    return float(stats.spearmanr(x, y).statistic)


def summarise(records: list[dict], proxies: Sequence[str]) -> list[dict]:
    """One row per proxy: correlations, timings and the checks against the references."""
    acc = np.array([r["test_acc"] for r in records])
    params_rho = spearman([r["scores"]["params"] for r in records], acc)
    ref_params = REFERENCE["params"][0]
    rows = []
    for name in proxies:
        raw = np.array([r["scores"][name] for r in records], dtype=float)
        finite = np.isfinite(raw)
        rho = spearman(ranked(raw), acc)
        rho_finite = spearman(raw[finite], acc[finite])
        wall = float(np.mean([r["wall_s"][name] for r in records]))
        cpu = float(np.mean([r["cpu_s"][name] for r in records]))
        ref_rho, ref_s = REFERENCE.get(name, (None, None))
        # The proxy's margin over #params on the same architectures, against the reference's
        # margin: cancels what the accuracy table and the sample do to every correlation.
        margin = rho - params_rho
        ref_margin = None if ref_rho is None else ref_rho - ref_params
        rows.append(
            {
                "proxy": name,
                "spearman": rho,
                "spearman_finite": rho_finite,
                "nonfinite": int((~finite).sum()),
                "s_per_arch": wall,
                "cpu_s_per_arch": cpu,
                "ref_spearman": ref_rho,
                "ref_s_per_arch": ref_s,
                "margin_vs_params": margin,
                "ref_margin_vs_params": ref_margin,
                "rho_ok": None if ref_rho is None else abs(rho - ref_rho) <= RHO_TOLERANCE,
                "margin_ok": (
                    None
                    if ref_margin is None or name == "params"
                    else abs(margin - ref_margin) <= RHO_TOLERANCE
                ),
                "speed_ok": None if ref_s is None else wall <= ref_s / SPEEDUP,
                "cpu_speed_ok": None if ref_s is None else cpu <= ref_s / SPEEDUP,
            }
        )
    return rows


def _fmt(value, spec: str) -> str:
    return "-" if value is None else format(value, spec)


def _check(ok: bool | None) -> str:
    return "n/a" if ok is None else ("pass" if ok else "FAIL")


def format_table(rows: list[dict]) -> str:
    head = (
        f"{'proxy':<10} {'spearman':>8} {'finite':>7} {'nonfin':>6} {'s/arch':>7} "
        f"{'cpu s':>7} {'ref rho':>7} {'ref s':>6} {'-prm':>6} {'ref-prm':>7} "
        f"{'rho':>5} {'-prm':>5} {'wall':>5} {'cpu':>5}"
    )
    lines = [head, "-" * len(head)]
    for r in rows:
        lines.append(
            f"{r['proxy']:<10} {r['spearman']:>8.3f} {r['spearman_finite']:>7.3f} "
            f"{r['nonfinite']:>6d} {r['s_per_arch']:>7.3f} {r['cpu_s_per_arch']:>7.3f} "
            f"{_fmt(r['ref_spearman'], '.2f'):>7} {_fmt(r['ref_s_per_arch'], '.1f'):>6} "
            f"{r['margin_vs_params']:>+6.3f} {_fmt(r['ref_margin_vs_params'], '+.2f'):>7} "
            f"{_check(r['rho_ok']):>5} {_check(r['margin_ok']):>5} "
            f"{_check(r['speed_ok']):>5} {_check(r['cpu_speed_ok']):>5}"
        )
    return "\n".join(lines)


def progress_printer(started: float, label: str = "") -> Callable[[int, int], None]:
    def report(done: int, total: int) -> None:
        if done % 25 and done != total:
            return
        elapsed = time.perf_counter() - started
        eta = elapsed / done * (total - done)
        print(
            f"{label}[{done}/{total}] {elapsed:.0f} s elapsed, ~{eta:.0f} s left, "
            f"load {os.getloadavg()[0]:.2f}",
            file=sys.stderr,
            flush=True,
        )

    return report


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n", type=int, default=500, help="architectures (default 500)")
    parser.add_argument("--seed", type=int, default=0, help="arch sample, weights and batch")
    parser.add_argument("--root", default=None, help="CIFAR-10 folder (default $RAYNAS_DATA)")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--C", type=int, default=16, help="NB201 channels (default 16)")
    parser.add_argument("--N", type=int, default=5, help="NB201 cells per stage (default 5)")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    parser.add_argument(
        "--proxies", nargs="+", default=list(ORDER), choices=zc.names(), metavar="PROXY"
    )
    parser.add_argument("--json", default=None, help="write records and summary here")
    parser.add_argument(
        "--from-json",
        default=None,
        metavar="FILE",
        help="print the table again from the records of an earlier --json file (no scoring; "
        "its timings are those of that run)",
    )
    args = parser.parse_args(argv)
    if args.from_json:
        with open(args.from_json) as fh:
            saved = json.load(fh)
        meta, records = saved["meta"], saved["records"]
        proxies = [p for p in ORDER if all(p in r["scores"] for r in records)]
        print(
            f"# re-summarised from {args.from_json}: {meta['command']} (n={meta['n']}, C="
            f"{meta['C']} N={meta['N']}, batch {meta['batch_size']}, torch {meta['torch']}, "
            f"{meta['threads']} thread(s), mean load {meta['mean_load']:.2f}, "
            f"wall {meta['total_s']:.0f} s)"
        )
        print(params_calibration())
        print(format_table(summarise(records, proxies)))
        return 0

    torch.set_num_threads(args.threads)
    root = args.root or os.environ.get("RAYNAS_DATA")
    if not root:
        raise SystemExit("no CIFAR-10 folder: pass --root or set $RAYNAS_DATA")
    inputs, targets, _, _ = load_batch("cifar10", root, args.seed, args.batch_size)
    archs = sample_archs(args.n, args.seed)
    warm_up(args.proxies, inputs, targets)

    load_start = os.getloadavg()
    started = time.perf_counter()
    records = score_archs(
        archs, args.proxies, inputs, targets, args.C, args.N, args.seed, progress_printer(started)
    )
    total_s = time.perf_counter() - started
    load_end = os.getloadavg()
    rows = summarise(records, args.proxies)

    build_s = float(np.mean([r["build_s"] for r in records]))
    mean_load = float(np.mean([r["load"] for r in records]))
    header = [
        f"# zero-cost proxies vs NB201 CIFAR-10 test accuracy (12-epoch table), "
        f"n={args.n} archs, seed {args.seed}",
        f"# network C={args.C} N={args.N}, one batch of {args.batch_size} CIFAR-10 train "
        f"images, torch {torch.__version__}, {args.threads} thread(s), "
        f"{os.cpu_count()} cores ({platform.processor() or platform.machine()})",
        f"# load average (1/5/15 min): start {load_start[0]:.2f}/{load_start[1]:.2f}/"
        f"{load_start[2]:.2f}, end {load_end[0]:.2f}/{load_end[1]:.2f}/{load_end[2]:.2f}, "
        f"mean 1-min during run {mean_load:.2f}",
        params_calibration(),
        f"# build {build_s:.3f} s/arch (not in s/arch); wall {total_s:.0f} s in all; "
        f"checks: |rho - ref| <= {RHO_TOLERANCE}, s/arch <= ref s / {SPEEDUP:g}",
    ]
    print("\n".join(header))
    print(format_table(rows))

    if args.json:
        meta = {
            "n": args.n,
            "seed": args.seed,
            "batch_size": args.batch_size,
            "dataset": "cifar10",
            "C": args.C,
            "N": args.N,
            "threads": args.threads,
            "torch": torch.__version__,
            "cpu_count": os.cpu_count(),
            "load_start": load_start,
            "load_end": load_end,
            "mean_load": mean_load,
            "build_s_per_arch": build_s,
            "total_s": total_s,
            "command": " ".join(sys.argv),
        }
        os.makedirs(os.path.dirname(os.path.abspath(args.json)), exist_ok=True)
        with open(args.json, "w") as fh:
            json.dump({"meta": meta, "summary": rows, "records": records}, fh, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
