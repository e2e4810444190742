"""The numbers of issue 26 ("one clear house") for a checkout: README, module sizes, imports.

    python benchmarks/structure.py                 # this checkout
    python benchmarks/structure.py --repo /path    # another one (e.g. the code before a change)

Prints:

- README.md length in characters and how it splits into user instruction, headline results
  and experiment narrative. The README is cut into blocks (blank-line separated; a fenced code
  block is one block). A table whose header has a "result" or "measured" column is the
  results table; a prose block is narrative when it reports measurements (two or more of:
  a percentage, "seed", "regret", "Spearman", "Wilcoxon", "interval", "upper bound",
  "p <"/"p 0.", "measured"); everything else is instruction. A heuristic, printed with its
  rule, so that before and after are counted the same way.
- The largest modules of the three import packages, in lines.
- Import cycles and arrows against the layering (``scripts/import_graph.py``, the same graph
  ``tests/test_layering.py`` checks; for another checkout, that checkout's own modules are
  placed by this checkout's layer table).
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent.parent

NARRATIVE_MARKERS = [
    r"\d+(?:\.\d+)?\s*%",
    r"\bseeds?\b",
    r"\bregret\b",
    r"\bSpearman\b",
    r"\bWilcoxon\b",
    r"\binterval\b",
    r"\bupper bound\b",
    r"\bp (?:<|0\.)",
    r"\b[Mm]easured\b",
]


def blocks(text: str) -> list[str]:
    """Blank-line separated blocks; a fenced code block stays whole."""
    out: list[str] = []
    cur: list[str] = []
    fenced = False
    for line in text.splitlines(keepends=True):
        if line.startswith("```"):
            fenced = not fenced
        if not fenced and not line.strip():
            if cur:
                out.append("".join(cur))
                cur = []
            out.append(line)
            continue
        cur.append(line)
    if cur:
        out.append("".join(cur))
    return out


def classify(block: str) -> str:
    """ "instruction", "results" or "narrative" (see the module docstring)."""
    stripped = block.lstrip()
    if stripped.startswith("```") or not stripped:
        return "instruction"
    if stripped.startswith("|"):
        header = stripped.splitlines()[0].lower()
        return "results" if "result" in header or "measured" in header else "instruction"
    hits = sum(bool(re.search(m, block)) for m in NARRATIVE_MARKERS)
    return "narrative" if hits >= 2 else "instruction"


def readme_numbers(path: Path) -> dict[str, int]:
    text = path.read_text()
    counts = {"total": len(text), "instruction": 0, "results": 0, "narrative": 0}
    for b in blocks(text):
        counts[classify(b)] += len(b)
    return counts


def largest_modules(repo: Path, n: int = 5) -> list[tuple[int, str]]:
    sizes = []
    for pkg in ("raynas", "search_spaces", "schedulers"):
        for f in (repo / pkg).rglob("*.py"):
            sizes.append((len(f.read_text().splitlines()), str(f.relative_to(repo))))
    return sorted(sizes, reverse=True)[:n]


def import_graph_module():
    sys.path.insert(0, str(HERE / "scripts"))
    import import_graph

    return import_graph


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repo", type=Path, default=HERE, help="checkout to measure")
    args = parser.parse_args()
    repo = args.repo.resolve()
    print(f"# checkout: {repo}")

    r = readme_numbers(repo / "README.md")
    share = lambda k: 100.0 * r[k] / r["total"]  # noqa: E731
    print(f"README.md: {r['total']:,} characters")
    print(f"  instruction {r['instruction']:>6,}  {share('instruction'):5.1f}%")
    print(f"  results     {r['results']:>6,}  {share('results'):5.1f}%  (the headline table)")
    print(f"  narrative   {r['narrative']:>6,}  {share('narrative'):5.1f}%")
    print("  (narrative: a prose block with >= 2 of: " + ", ".join(NARRATIVE_MARKERS) + ")")

    print("largest modules (lines):")
    for lines, name in largest_modules(repo):
        print(f"  {lines:>5}  {name}")

    ig = import_graph_module()
    ig.ROOT = repo
    g = ig.graph()
    cycles = ig.cycles(g)
    arrows = ig.arrows_against_layering(g)
    print(f"modules: {len(g)}; import cycles: {len(cycles)}; ", end="")
    print(f"arrows against the layering: {len(arrows)}")
    for c in cycles:
        print("  cycle: " + " <-> ".join(c))
    for m, t in arrows:
        print(f"  arrow: {m} -> {t}")
    missing = ig.unassigned(g)
    if missing:
        print(f"  modules the layer table does not place: {', '.join(missing)}")


if __name__ == "__main__":
    main()
