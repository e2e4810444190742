"""DARTS / PC-DARTS searches with the ``darts`` trainable's DartsSearch (no Tune): speed,
activation memory, and what DARTS finds on the NAS-Bench-201 space.

1. Speed: seconds per search epoch (α step + w step per batch, evaluation excluded) on the
   DARTS space for first order, second order and PC-DARTS (K=4, edge normalisation, first
   order) at the same batch and network size, genuine CIFAR-10 images; wall and process CPU
   seconds (the CPU is shared with other jobs: the load average is printed).
2. Memory: one training step (forward + backward) of the DARTS supernet against PC-DARTS
   (K=4) at the same batch, each in a fresh subprocess, measured two ways: the bytes of the
   tensors autograd saves for the backward pass (unique storages, parameters excluded:
   exact and allocator-independent) and the peak process RSS during the step minus the RSS
   just before it (VmHWM reset through /proc/self/clear_refs; the baseline of Python, torch,
   weights and data is subtracted). With ``--device cuda``: ``torch.cuda.max_memory_allocated``
   during the step minus the allocation before it.
4. Methods (``--only methods``): seconds per search epoch of every one-shot method of the
   ``oneshot`` trainable (DARTS first/second order, PC-DARTS, RSPS, GDAS, SETN, ENAS) on the
   nb201 space at the lecture table's CPU size (``benchmarks/lecture_table.py``), relative to
   DARTS first order in the same run: ``--rounds`` rounds, the methods in the same order in
   each, a fresh search per method and round, one epoch each (training plus the method's
   selection after the epoch: RSPS/SETN score their candidates; evaluation excluded); the
   median over rounds. The memory section also measures GDAS: one architecture step (forward
   and backward of the val loss through one Gumbel-drawn path, straight-through weights) next
   to DARTS' forward + backward through every op.
3. NB201: DARTS first order, DARTS second order and PC-DARTS on the nb201 space with the
   genuine CIFAR-10 subset over several seeds; the derived cell's CIFAR-10 test accuracy in the
   shipped NB201 table (12-epoch schedule) and how many of its 6 edges are parameter-free
   (skip_connect, avg_pool_3x3, none): the collapse that the NB201 paper reports for DARTS
   (all-skip cells, 54.30% test in its 200-epoch table).

Usage: python benchmarks/darts.py [--root DIR] [--threads 2] [--seeds 3]
       [--only speed,memory,nb201,methods] [--nb201-epochs 20] [--device cpu|cuda] [--quick]
       [--rounds 2] [--json FILE]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from typing import Any

import torch
from torch.nn import functional as F

import search_spaces
from raynas.benchmarks import nb201
from raynas.trainables.darts import DartsOptions, DartsSearch, PeakMemory, make_search, rss_mb

#: (label, order, pc_k) of the compared methods.
METHODS = (("DARTS 1st order", 1, 1), ("DARTS 2nd order", 2, 1), ("PC-DARTS K=4", 1, 4))
PARAM_FREE = ("skip_connect", "avg_pool_3x3", "none")
ALL_SKIP = (
    "|skip_connect~0|+|skip_connect~0|skip_connect~1|+|skip_connect~0|skip_connect~1|"
    "skip_connect~2|"
)


def settings(quick: bool, nb201_epochs: int | None) -> dict[str, dict[str, Any]]:
    """Sizes of every section (``--quick``: a smoke run of a few seconds per section)."""
    speed = {"build": {"C": 8, "layers": 5}, "image_size": 16, "batch_size": 32, "images": 256}
    memory = {"build": {"C": 16, "layers": 8}, "image_size": 32, "batch_size": 32}
    bench = {"build": {"C": 8, "N": 1}, "image_size": 16, "batch_size": 64, "images": 1000}
    bench["epochs"] = nb201_epochs or 20
    # the lecture table's size (benchmarks/lecture_table.py)
    methods = {"build": {"C": 8, "N": 1}, "image_size": 16, "batch_size": 64, "images": 1000}
    if quick:
        methods.update(build={"C": 4, "N": 1}, images=64)
        speed.update(build={"C": 4, "layers": 3}, images=32)
        memory.update(build={"C": 4, "layers": 3}, image_size=16, batch_size=8)
        bench.update(images=64, epochs=nb201_epochs or 1)
    return {"speed": speed, "memory": memory, "nb201": bench, "methods": methods}


def _options(cfg: dict[str, Any], root: str | None, device: str, **extra) -> DartsOptions:
    images = cfg.get("images", 64)
    return DartsOptions(
        dataset="cifar10",
        root=root,
        val_fraction=images,
        subset=images,
        image_size=cfg["image_size"],
        build=cfg["build"],
        batch_size=cfg["batch_size"],
        device=device,
        tensorboard=False,
        **extra,
    )


# ------------------------------------------------------------------------------ 1. speed
def bench_speed(cfg, root, device) -> list[dict[str, Any]]:
    space = search_spaces.get("darts")
    rows = []
    for label, order, k in METHODS:
        search = DartsSearch(space, _options(cfg, root, device, order=order, pc_k=k, epochs=2))
        wall, cpu = time.perf_counter(), time.process_time()
        search.train_epoch()
        if device.startswith("cuda"):
            torch.cuda.synchronize()
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
        steps = -(-len(search.splits.train) // cfg["batch_size"])
        rows.append(
            {
                "method": label,
                "order": order,
                "pc_k": k,
                "wall_s": wall,
                "cpu_s": cpu,
                "steps": steps,
                "load": os.getloadavg()[0],
            }
        )
    base = rows[0]
    for r in rows:
        r["wall_vs_first"] = r["wall_s"] / base["wall_s"]
        r["cpu_vs_first"] = r["cpu_s"] / base["cpu_s"]
    return rows


# ------------------------------------------------------------------------------ 2. memory
def _saved_activation_bytes(model, forward, x, y) -> int:
    params = {p.untyped_storage().data_ptr() for p in model.parameters()}
    storages: dict[int, int] = {}

    def pack(t: torch.Tensor) -> torch.Tensor:
        storage = t.untyped_storage()
        if storage.data_ptr() not in params:
            storages.setdefault(storage.data_ptr(), storage.nbytes())
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        loss = F.cross_entropy(forward(x), y)
    loss.backward()
    model.zero_grad(set_to_none=True)
    return sum(storages.values())


def memory_worker(spec: dict[str, Any]) -> dict[str, Any]:
    """One fresh process, one method: peak memory of a training step over its baseline."""
    import gc

    torch.set_num_threads(spec["threads"])
    cfg = spec["cfg"]
    method = spec.get("method", "darts")
    search = make_search(
        search_spaces.get("darts"),
        _options(cfg, spec["root"], spec["device"], pc_k=spec["pc_k"], epochs=1, method=method),
    )
    x, y = next(iter(search._loader("train", True, search.train_generator)))
    x, y = x.to(search.device), y.to(search.device)
    if method == "gdas":  # the same Gumbel draw in both measurements; gradients to w and α
        draw_state = search.path_generator.get_state()

        def forward(inputs):
            search.path_generator.set_state(draw_state)
            path, weights = search.gumbel_path(search.tau())
            return search.model(inputs, path, weights)
    else:
        forward = search.model
    meter = PeakMemory(search.device)
    gc.collect()
    if search.device.type == "cuda":
        torch.cuda.synchronize()
        base = torch.cuda.memory_allocated(search.device) / 2**20
    else:
        base = rss_mb()
    meter.reset()
    F.cross_entropy(forward(x), y).backward()
    search.model.zero_grad(set_to_none=True)
    if search.device.type == "cuda":
        torch.cuda.synchronize()
    peak = meter.peak_mb()
    saved = _saved_activation_bytes(search.model, forward, x, y) / 2**20
    return {
        "pc_k": spec["pc_k"],
        "saved_mb": saved,
        "peak_over_base_mb": peak - base,
        "base_mb": base,
        "resettable": meter.resettable,
    }


def bench_memory(cfg, root, device, threads) -> list[dict[str, Any]]:
    rows = []
    for label, k, method in (
        ("DARTS", 1, "darts"),
        ("PC-DARTS K=4", 4, "darts"),
        ("GDAS", 1, "gdas"),
    ):
        spec = {"cfg": cfg, "root": root, "device": device, "pc_k": k, "threads": threads}
        spec["method"] = method
        out = subprocess.run(
            [sys.executable, __file__, "--memory-worker", json.dumps(spec)],
            check=True,
            capture_output=True,
            text=True,
        ).stdout
        rows.append({"method": label, **json.loads(out.strip().splitlines()[-1])})
    for r in rows:
        r["saved_ratio"] = r["saved_mb"] / rows[0]["saved_mb"]
        r["peak_ratio"] = r["peak_over_base_mb"] / rows[0]["peak_over_base_mb"]
    return rows


# ------------------------------------------------------------------------------ 4. methods
#: (label, oneshot options) of the methods compared per epoch; the first is the reference.
ONESHOT = (
    ("DARTS-V1", {"method": "darts", "order": 1}),
    ("DARTS-V2", {"method": "darts", "order": 2}),
    ("PC-DARTS K=4", {"method": "darts", "pc_k": 4}),
    ("RSPS", {"method": "rsps"}),
    ("GDAS", {"method": "gdas"}),
    ("SETN", {"method": "setn"}),
    ("ENAS", {"method": "enas"}),
)


def bench_methods(cfg, root, device, rounds) -> list[dict[str, Any]]:
    space = search_spaces.get("nb201")
    times: dict[str, list[tuple[float, float]]] = {label: [] for label, _ in ONESHOT}
    loads = []
    for r in range(rounds):
        for label, extra in ONESHOT:
            search = make_search(space, _options(cfg, root, device, epochs=10, seed=r, **extra))
            wall, cpu = time.perf_counter(), time.process_time()
            search.train_epoch()
            search.epoch += 1
            search.after_epoch()
            if device.startswith("cuda"):
                torch.cuda.synchronize()
            times[label].append((time.perf_counter() - wall, time.process_time() - cpu))
            loads.append(os.getloadavg()[0])
            print(f"  round {r} {label}: {times[label][-1][0]:.1f} s", flush=True)
    rows = []
    for label, _ in ONESHOT:
        rows.append(
            {
                "method": label,
                "wall_s": statistics.median(t[0] for t in times[label]),
                "cpu_s": statistics.median(t[1] for t in times[label]),
                "all_wall_s": [t[0] for t in times[label]],
            }
        )
    for r in rows:
        r["wall_vs_first"] = r["wall_s"] / rows[0]["wall_s"]
        r["cpu_vs_first"] = r["cpu_s"] / rows[0]["cpu_s"]
    rows[0]["loads"] = loads
    return rows


def print_methods(rows, cfg, threads, rounds) -> None:
    loads = rows[0]["loads"]
    print(
        f"\n## 4. One-shot methods, seconds per search epoch: nb201 space, C={cfg['build']['C']}, "
        f"N={cfg['build']['N']}, CIFAR-10 at {cfg['image_size']}x{cfg['image_size']}, batch "
        f"{cfg['batch_size']}, {cfg['images']} train + {cfg['images']} val images, {threads} "
        f"threads; median of {rounds} round(s); load average {min(loads):.1f}-{max(loads):.1f}"
    )
    print(
        f"{'method':<14} {'s/epoch wall':>12} {'s/epoch cpu':>12} {'wall x V1':>9} {'cpu x V1':>9}"
    )
    for r in rows:
        print(
            f"{r['method']:<14} {r['wall_s']:>12.1f} {r['cpu_s']:>12.1f} "
            f"{r['wall_vs_first']:>9.2f} {r['cpu_vs_first']:>9.2f}"
        )
    print(
        "(RSPS and SETN include scoring their 100 candidates on one val batch each; ENAS one "
        "controller step per train batch)"
    )


# ------------------------------------------------------------------------------ 3. nb201
def bench_nb201(cfg, root, device, seeds) -> list[dict[str, Any]]:
    space = search_spaces.get("nb201")
    table = nb201.table()
    rows = []
    for label, order, k in METHODS:
        for seed in range(seeds):
            opts = _options(
                cfg, root, device, order=order, pc_k=k, seed=seed, epochs=cfg["epochs"]
            )
            search = DartsSearch(space, opts)
            start = time.perf_counter()
            for _ in range(cfg["epochs"]):
                metrics = search.step()
            genotype = search.genotype()
            entry = table.lookup(metrics["arch"], "cifar10")
            rows.append(
                {
                    "method": label,
                    "seed": seed,
                    "arch": metrics["arch"],
                    "test_acc": entry.test_acc,
                    "val_acc": entry.val_acc,
                    "param_free": sum(op in PARAM_FREE for op in genotype.ops),
                    "skips": genotype.ops.count("skip_connect"),
                    "supernet_val_acc": metrics["val_acc"],
                    "alpha_entropy": metrics["alpha_entropy"],
                    "minutes": (time.perf_counter() - start) / 60,
                }
            )
            print(
                f"  {label} seed {seed}: {metrics['arch']} test {entry.test_acc:.2f} "
                f"({rows[-1]['minutes']:.1f} min)",
                flush=True,
            )
    return rows


# ------------------------------------------------------------------------------ report
def _mean_std(values: list[float]) -> str:
    if len(values) < 2:
        return f"{values[0]:.2f}"
    return f"{statistics.mean(values):.2f} ± {statistics.stdev(values):.2f}"


def print_speed(rows, cfg, threads) -> None:
    print(
        f"\n## 1. Search speed: darts space, C={cfg['build']['C']}, {cfg['build']['layers']} "
        f"cells, CIFAR-10 at {cfg['image_size']}x{cfg['image_size']}, batch "
        f"{cfg['batch_size']}, {cfg['images']} train + {cfg['images']} val images "
        f"({rows[0]['steps']} steps/epoch), {threads} threads"
    )
    print(
        f"{'method':<18} {'s/epoch wall':>12} {'s/epoch cpu':>12} {'wall x 1st':>10} "
        f"{'cpu x 1st':>10} {'load':>5}"
    )
    for r in rows:
        print(
            f"{r['method']:<18} {r['wall_s']:>12.1f} {r['cpu_s']:>12.1f} "
            f"{r['wall_vs_first']:>10.2f} {r['cpu_vs_first']:>10.2f} "
            f"{r['load']:>5.1f}"
        )


def print_memory(rows, cfg, device) -> None:
    kind = "CUDA allocated" if device.startswith("cuda") else "RSS"
    print(
        f"\n## 2. Memory of one training step (forward + backward): darts space, "
        f"C={cfg['build']['C']}, {cfg['build']['layers']} cells, {cfg['image_size']}x"
        f"{cfg['image_size']}, batch {cfg['batch_size']}, device {device}"
    )
    print(
        f"{'method':<14} {'saved activations MB':>21} {'ratio':>6} "
        f"{f'peak {kind} - base MB':>26} {'ratio':>6} {'base MB':>8}"
    )
    for r in rows:
        print(
            f"{r['method']:<14} {r['saved_mb']:>21.1f} {r['saved_ratio']:>6.3f} "
            f"{r['peak_over_base_mb']:>26.1f} {r['peak_ratio']:>6.3f} "
            f"{r['base_mb']:>8.0f}"
        )
    print(
        "(DARTS and PC-DARTS: a weight step through the mixed supernet; GDAS: its architecture "
        "step through one Gumbel-drawn path, gradients to w and α)"
    )
    target = 1 / 2.5
    saved, peak = rows[1]["saved_ratio"], rows[1]["peak_ratio"]
    print(
        f"target PC-DARTS/DARTS <= {target:.2f}: saved {saved:.3f} "
        f"({'met' if saved <= target else 'NOT met'}), peak "
        f"{peak:.3f} ({'met' if peak <= target else 'NOT met'})"
    )


def print_nb201(rows, cfg, seeds) -> None:
    table = nb201.table()
    best_arch, _ = table.optimum("cifar10")
    best = table.lookup(best_arch, "cifar10").test_acc
    skip = table.lookup(ALL_SKIP, "cifar10").test_acc
    print(
        f"\n## 3. DARTS on NB201: CIFAR-10 subset ({cfg['images']} train + {cfg['images']} val "
        f"images at {cfg['image_size']}x{cfg['image_size']}), supernet C={cfg['build']['C']}, "
        f"N={cfg['build']['N']}, batch {cfg['batch_size']}, {cfg['epochs']} epochs, "
        f"seeds 0..{seeds - 1}; accuracy = CIFAR-10 test accuracy of the derived cell in the "
        f"shipped NB201 table (12-epoch schedule)"
    )
    print(
        f"{'method':<16} {'seed':>4} {'test acc':>8} {'param-free':>10} {'skips':>5} "
        f"{'supernet val':>12} {'min':>5}  derived cell"
    )
    for r in rows:
        print(
            f"{r['method']:<16} {r['seed']:>4} {r['test_acc']:>8.2f} {r['param_free']:>8}/6 "
            f"{r['skips']:>5} {r['supernet_val_acc']:>12.1f} {r['minutes']:>5.1f}  "
            f"{r['arch']}"
        )
    print(f"\n{'method':<16} {'test acc (mean ± std)':>22} {'param-free edges':>17} {'skips':>6}")
    for label, _, _ in METHODS:
        sel = [r for r in rows if r["method"] == label]
        if sel:
            print(
                f"{label:<16} {_mean_std([r['test_acc'] for r in sel]):>22} "
                f"{statistics.mean(r['param_free'] for r in sel):>15.1f}/6 "
                f"{statistics.mean(r['skips'] for r in sel):>6.1f}"
            )
    print(
        f"reference (same table): best cell {best:.2f}, all-skip cell {skip:.2f}, "
        f"median cell {statistics.median(table.test('cifar10')):.2f}; NB201 paper "
        f"(200-epoch table): DARTS-V1/V2 54.30 (collapsed to all-skip cells)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--root",
        default=os.environ.get("RAYNAS_DATA", "/work/shared/data"),
        help="folder with cifar-10-batches-py (default $RAYNAS_DATA)",
    )
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--nb201-epochs", type=int, default=None)
    parser.add_argument("--only", default="speed,memory,nb201")
    parser.add_argument("--rounds", type=int, default=2, help="rounds of the methods section")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--quick", action="store_true", help="tiny sizes: a smoke run")
    parser.add_argument("--json", help="write every number to this file")
    parser.add_argument("--memory-worker", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.memory_worker:
        print(json.dumps(memory_worker(json.loads(args.memory_worker))))
        return
    torch.set_num_threads(args.threads)
    sizes = settings(args.quick, args.nb201_epochs)
    sections = args.only.split(",")
    print(f"# command: python benchmarks/darts.py {' '.join(sys.argv[1:])}")
    print(
        f"# torch {torch.__version__}, {args.threads} threads, device {args.device}, "
        f"load average {os.getloadavg()}"
    )
    print(
        "# optimisers: the DARTS paper's (w: SGD 0.025, momentum 0.9, wd 3e-4, cosine to "
        "0.001, clip 5; α: Adam 3e-4, betas (0.5, 0.999), wd 1e-3); PC-DARTS: K=4, edge norm"
    )
    out: dict[str, Any] = {"settings": sizes, "threads": args.threads, "device": args.device}
    start = time.perf_counter()
    if "speed" in sections:
        out["speed"] = bench_speed(sizes["speed"], args.root, args.device)
        print_speed(out["speed"], sizes["speed"], args.threads)
    if "memory" in sections:
        out["memory"] = bench_memory(sizes["memory"], args.root, args.device, args.threads)
        print_memory(out["memory"], sizes["memory"], args.device)
    if "nb201" in sections:
        print("\n(NB201 searches)")
        out["nb201"] = bench_nb201(sizes["nb201"], args.root, args.device, args.seeds)
        print_nb201(out["nb201"], sizes["nb201"], args.seeds)
    if "methods" in sections:
        print("\n(one-shot methods)")
        out["methods"] = bench_methods(sizes["methods"], args.root, args.device, args.rounds)
        print_methods(out["methods"], sizes["methods"], args.threads, args.rounds)
    out["total_minutes"] = (time.perf_counter() - start) / 60
    print(f"\ntotal: {out['total_minutes']:.1f} min")
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(out, fh, indent=2)


if __name__ == "__main__":
    main()
