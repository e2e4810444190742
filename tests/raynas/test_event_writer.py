"""raynas's event-file writer: what TensorBoard reads back, written without torch."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
from helpers import cli_env, read_events

from raynas.event_writer import summary_writer


def test_scalars_texts_and_images_read_back_after_flush(tmp_path):
    writer = summary_writer(str(tmp_path))
    for step in (1, 2):
        writer.add_scalar("search/val_acc", 0.25 * step, step)
        writer.add_text("search/best_arch", f"arch {step}", step)
    writer.add_image("search/best_so_far", np.full((4, 6, 3), 255, dtype=np.uint8), 2, "HWC")
    writer.add_image("alpha/normal", np.array([[[0.0, 0.5, 2.0]]]), 3)  # CHW floats
    writer.flush()  # read back before close: flush alone put every event on disk
    events = read_events(str(tmp_path))
    assert [(e.step, e.value) for e in events["scalars"]["search/val_acc"]] == [
        (1, 0.25),
        (2, 0.5),
    ]
    texts = events["tensors"]["search/best_arch/text_summary"]
    assert [(e.step, e.tensor_proto.string_val[0]) for e in texts] == [
        (1, b"arch 1"),
        (2, b"arch 2"),
    ]
    (image,) = events["images"]["search/best_so_far"]
    assert (image.step, image.height, image.width) == (2, 4, 6)
    (alpha,) = events["images"]["alpha/normal"]
    assert (alpha.step, alpha.height, alpha.width) == (3, 1, 3)
    writer.close()


def test_two_writers_of_one_folder_write_two_files(tmp_path):
    first, second = summary_writer(str(tmp_path)), summary_writer(str(tmp_path))
    first.close()
    second.close()
    assert len(list(tmp_path.glob("events.out.tfevents.*"))) == 2


def test_the_writer_imports_no_torch(tmp_path):
    # A Tune driver writes the search's TensorBoard view with it: importing torch there would
    # cost seconds (more on a loaded machine) for nothing.
    code = f"""
import sys
import numpy as np
from raynas.event_writer import summary_writer
w = summary_writer({str(tmp_path)!r})
w.add_scalar("a", 1.0, 1)
w.add_text("b", "text", 1)
w.add_image("c", np.zeros((2, 2, 3)), 1, dataformats="HWC")
w.close()
assert "torch" not in sys.modules, "torch imported"
print("ok")
"""
    out = subprocess.run(
        [sys.executable, "-c", code], env=cli_env(), capture_output=True, text=True, timeout=120
    )
    assert out.returncode == 0 and out.stdout.strip() == "ok", out.stderr[-2000:]
    assert len(list(tmp_path.glob("events.out.tfevents.*"))) == 1
