"""The learning-curve table: the shipped dataset and clear errors for bad files."""

from __future__ import annotations

import pandas as pd
import pytest

from raynas.benchmarks import curve_table as curves


def rows(arch="|none~0|+|none~0|none~1|+|none~0|none~1|none~2|", epochs=(1, 2, 3)):
    return [
        {
            "arch": arch,
            "seed": 0,
            "epoch": e,
            "train_loss": 1.0 / e,
            "val_acc": 10.0 * e,
            "cost_s": 0.5,
        }
        for e in epochs
    ]


def test_shipped_table_has_200_complete_20_epoch_curves():
    table = curves.table()
    assert len(table) >= 200 and table.epochs == 20
    assert set(curves.REQUIRED) - {"arch", "seed"} <= set(table.columns)
    for arch in table.archs:
        curve = table.curve(arch)
        assert [r["epoch"] for r in curve] == list(range(1, 21))
        assert all(0 <= r["val_acc"] <= 100 and r["cost_s"] > 0 for r in curve)
        tse = [r["tse"] for r in curve]
        assert tse == sorted(tse)  # a running sum of positive losses


def test_missing_file_names_the_path_and_how_to_make_it(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"missing\.parquet .*export\.py"):
        curves.table(tmp_path / "missing.parquet")


def test_corrupt_file_is_a_value_error(tmp_path):
    path = tmp_path / "bad.parquet"
    path.write_bytes(b"not a parquet file")
    with pytest.raises(ValueError, match="cannot read learning-curve table"):
        curves.table(path)


def test_missing_column_and_incomplete_curve_are_named(tmp_path):
    path = tmp_path / "nocost.parquet"
    pd.DataFrame(rows()).drop(columns="cost_s").to_parquet(path)
    with pytest.raises(ValueError, match="lacks column.s. cost_s"):
        curves.table(path)
    path = tmp_path / "gap.parquet"
    frame = pd.DataFrame(
        rows() + rows("|skip_connect~0|+|none~0|none~1|+|none~0|none~1|none~2|", epochs=(1, 3))
    )
    frame.to_parquet(path)
    with pytest.raises(ValueError, match=r"has epochs \[1, 3\], expected 1..3"):
        curves.table(path)


def test_rewritten_file_is_read_again(tmp_path):
    path = tmp_path / "t.parquet"
    pd.DataFrame(rows()).to_parquet(path)
    assert len(curves.table(path)) == 1
    pd.DataFrame(
        rows() + rows("|skip_connect~0|+|none~0|none~1|+|none~0|none~1|none~2|")
    ).to_parquet(path)
    assert len(curves.table(path)) == 2
