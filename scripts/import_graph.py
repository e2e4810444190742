"""Import graph of raynas's three import packages: its cycles, its arrows against the layering.

Reads the source with ``ast`` (nothing is imported), so it sees every import: at module level,
inside functions and under ``TYPE_CHECKING``. An import of ``a.b.c`` counts as an arrow to the
deepest module of the project that the name reaches. The layers, from the top, are those of
DESIGN.md and ARCHITECTURE.md: an arrow may only point to the same or a lower layer, and no
two modules may reach each other.

Run it: ``python scripts/import_graph.py [CHECKOUT]`` prints the cycles and the arrows against the
layering (``tests/test_layering.py`` fails on any).
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("raynas", "search_spaces", "schedulers")

#: Layers, top first. A module belongs to the layer of its longest matching prefix; a prefix
#: ending in "." matches that package's modules, one without only the module itself.
LAYERS: list[tuple[str, tuple[str, ...]]] = [
    ("cli", ("raynas.cli",)),
    (
        "experiment/results",
        (
            "raynas.experiment",
            "raynas.preflight",  # the parts and their checks before trials run
            "raynas.config",
            "raynas.results",
            "raynas.status",
            "raynas.recovery",
            "raynas.recorder",
            "raynas.resource_watch",
            "raynas.cluster",
            "raynas.plots",  # report --plot (issue 26 item 5)
            "raynas.tensorboard",  # the search's TensorBoard views draw raynas.plots
            "raynas.loggers",  # trial loggers: raynas.tensorboard.TrialBoard
            "raynas.progress",  # issue 24 (wt/cli): the status line
            # The fixed searcher runs the best architecture of finished experiments: it reads
            # them with raynas.results, so it sits with the results, not with the searchers.
            # The registry names it by string only.
            "raynas.searchers.fixed",
        ),
    ),
    (
        "searchers/schedulers/trainables",
        ("raynas.searchers", "raynas.searchers.", "schedulers", "schedulers.")
        + ("raynas.trainables", "raynas.trainables."),
    ),
    (
        "estimators/hardware/data/oneshot",
        (
            "raynas.estimators",
            "raynas.estimators.",
            "raynas.hardware",
            "raynas.hardware.",
            "raynas.data",
        )
        + ("raynas.benchmarks", "raynas.benchmarks.", "raynas.oneshot", "raynas.oneshot."),
    ),
    ("search_spaces", ("search_spaces", "search_spaces.", "raynas.search_spaces")),
    ("nn", ("raynas.nn", "raynas.nn.")),
    (
        "shared helpers",
        (
            "raynas",
            "raynas.registry",
            "raynas.errors",
            "raynas.torch_state",
            "raynas.atomic",
            "raynas.pareto",
            "raynas.decision_log",
            "raynas.decision_report",
            "raynas.storage",
            "raynas.snapshots",
            "raynas.journal",
            "raynas.beacon",
            "raynas.event_writer",
            "raynas.auth",
            "raynas.stop",  # issue 24 (wt/cli)
            "raynas.logfilter",  # issue 24 (wt/cli)
        ),
    ),
]

#: Arrows between parts of one layer that must not exist: (from prefix, to prefix).
FORBIDDEN: list[tuple[str, str]] = [
    (a, b)
    for a in ("raynas.searchers", "schedulers", "raynas.trainables")
    for b in ("raynas.searchers", "schedulers", "raynas.trainables")
    if a != b
] + [
    (a, b) for a in ("raynas.results", "raynas.status") for b in ("raynas.searchers", "schedulers")
]


def module_name(path: Path) -> str:
    """Dotted module name of a file under ROOT (``__init__`` names its package)."""
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def project_modules() -> dict[str, Path]:
    """Every module of the three packages: dotted name -> file."""
    mods = {}
    for pkg in PACKAGES:
        for path in sorted((ROOT / pkg).rglob("*.py")):
            mods[module_name(path)] = path
    return mods


def _resolve(name: str, mods: dict[str, Path]) -> str | None:
    """The deepest project module that ``name`` (a dotted import target) reaches."""
    parts = name.split(".")
    while parts:
        cand = ".".join(parts)
        if cand in mods:
            return cand
        parts.pop()
    return None


def imports_of(mod: str, path: Path, mods: dict[str, Path]) -> set[str]:
    """Project modules that ``mod`` imports, anywhere in its source."""
    tree = ast.parse(path.read_text(), filename=str(path))
    is_pkg = path.name == "__init__.py"
    out: set[str] = set()
    for node in ast.walk(tree):
        targets: list[str] = []
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = mod.split(".")
                base = base if is_pkg else base[:-1]
                base = base[: len(base) - (node.level - 1)]
                prefix = ".".join(base + ([node.module] if node.module else []))
            else:
                prefix = node.module or ""
            # ``from pkg import sub`` imports the submodule when there is one.
            targets = [f"{prefix}.{a.name}" for a in node.names]
            targets = [t if _resolve(t, mods) == t else prefix for t in targets]
        for t in targets:
            r = _resolve(t, mods)
            if r is not None and r != mod:
                out.add(r)
    return out


def graph() -> dict[str, set[str]]:
    """module -> the project modules it imports."""
    mods = project_modules()
    return {m: imports_of(m, p, mods) for m, p in mods.items()}


def _parents(mod: str) -> set[str]:
    """Packages above ``mod`` (importing ``a.b.c`` runs ``a`` and ``a.b`` first)."""
    parts = mod.split(".")
    return {".".join(parts[:i]) for i in range(1, len(parts))}


def cycles(g: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan), each sorted.

    An arrow from a package's ``__init__`` to its own submodule (a registry importing what it
    registers) and from a module to the packages above it are not counted: Python runs a
    package's ``__init__`` before any submodule, so those are not cycles a change can create.
    """
    edges = {
        m: {t for t in ts if t not in _parents(m) and m not in _parents(t)} for m, ts in g.items()
    }
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    out: list[list[str]] = []
    counter = [0]

    def visit(v: str) -> None:
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in edges.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    sys.setrecursionlimit(max(1000, 10 * len(edges)))
    for v in sorted(edges):
        if v not in index:
            visit(v)
    return sorted(out)


def _matches(mod: str, prefix: str) -> bool:
    return mod.startswith(prefix) if prefix.endswith(".") else mod == prefix


def layer_of(mod: str) -> int | None:
    """Index of ``mod``'s layer in LAYERS (0 = top); None when no layer names it."""
    best, best_len = None, -1
    for i, (_, prefixes) in enumerate(LAYERS):
        for p in prefixes:
            if _matches(mod, p) and len(p) > best_len:
                best, best_len = i, len(p)
    return best


def unassigned(g: dict[str, set[str]]) -> list[str]:
    """Modules no layer names (a new module must be given its place)."""
    return sorted(m for m in g if layer_of(m) is None)


def _under(mod: str, prefix: str) -> bool:
    return mod == prefix or mod.startswith(prefix + ".")


def arrows_against_layering(g: dict[str, set[str]]) -> list[tuple[str, str]]:
    """Imports to a higher layer, or between parts of a layer that must stay apart; sorted."""
    out = []
    for m, ts in g.items():
        for t in ts:
            if t in _parents(m) or layer_of(m) is None or layer_of(t) is None:
                continue
            upward = layer_of(t) < layer_of(m)
            sideways = any(_under(m, a) and _under(t, b) for a, b in FORBIDDEN)
            if upward or sideways:
                out.append((m, t))
    return sorted(out)


def main() -> int:
    global ROOT
    if len(sys.argv) > 1:  # another checkout, e.g. to count what a change removed
        ROOT = Path(sys.argv[1]).resolve()
    g = graph()
    cyc = cycles(g)
    up = arrows_against_layering(g)
    missing = unassigned(g)
    print(f"modules: {len(g)}  imports: {sum(len(v) for v in g.values())}")
    print(f"import cycles: {len(cyc)}")
    for c in cyc:
        print("  cycle: " + " <-> ".join(c))
    print(f"arrows against the layering: {len(up)}")
    for m, t in up:
        print(f"  {m} [{LAYERS[layer_of(m)][0]}] -> {t} [{LAYERS[layer_of(t)][0]}]")
    print(f"modules without a layer: {len(missing)}")
    for m in missing:
        print(f"  {m}")
    return 1 if cyc or up or missing else 0


if __name__ == "__main__":
    raise SystemExit(main())
