"""The status line's progress bar: drawn on a real terminal (a pty), left out in a log."""

from __future__ import annotations

import io
import os
import sys
from types import SimpleNamespace

from raynas import progress


def test_bar_fills_with_the_share_of_trials_done():
    assert progress.bar(0, 20, width=10) == "[----------]"
    assert progress.bar(5, 20, width=10) == "[##--------]"  # 2.5 cells: a cell shows once earned
    assert progress.bar(6, 20, width=10) == "[###-------]"
    assert progress.bar(20, 20, width=10) == "[##########]"
    assert progress.bar(25, 20, width=10) == "[##########]"  # more done than asked: full
    assert progress.bar(3, 0, width=4) == "[----]"


def _status(monkeypatch, stdout) -> str:
    monkeypatch.setattr(sys, "stdout", stdout)
    line = progress.Progress("val_acc", "max")
    line.total = 4
    states = ["TERMINATED", "TERMINATED", "RUNNING", "PENDING"]
    trials = [SimpleNamespace(status=s, trial_id=str(i)) for i, s in enumerate(states)]
    return line.status(trials)


def test_status_line_has_the_bar_on_a_terminal_only(monkeypatch):
    leader, follower = os.openpty()
    try:
        with os.fdopen(follower, "w", closefd=False) as tty:
            assert tty.isatty()
            on_terminal = _status(monkeypatch, tty)
    finally:
        os.close(leader)
        os.close(follower)
    in_log = _status(monkeypatch, io.StringIO())
    assert on_terminal.startswith("[##########----------] 2/4 done, 1 running, 1 pending")
    assert in_log.startswith("2/4 done, 1 running, 1 pending, 0 errored")
