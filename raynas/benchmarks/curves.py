"""Former name of ``raynas.benchmarks.curve_table`` (kept so old imports keep working)."""

from raynas.benchmarks.curve_table import (
    FILE,
    METRICS,
    REQUIRED,
    CurveTable,
    arch_order,
    points_to_evaluate,
    shipped_path,
    table,
)

__all__ = [
    "FILE",
    "METRICS",
    "REQUIRED",
    "CurveTable",
    "arch_order",
    "points_to_evaluate",
    "shipped_path",
    "table",
]
