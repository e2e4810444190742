"""Stop a running experiment cleanly on Ctrl-C, SIGTERM or SIGHUP.

``timeout``, batch systems (Slurm), ``docker stop`` and Kubernetes send SIGTERM; a closed
terminal or SSH session sends SIGHUP. Inside ``graceful()`` each of SIGINT, SIGTERM and SIGHUP
does what Tune does on its first Ctrl-C: the running trials are stopped and the experiment
state is saved one last time, so ``raynas resume`` continues it. The same signal a second time
stops at once (the default action of that signal). ``received()`` tells which signal stopped
the run, so the CLI can exit with 128 + its number (130, 143, 129), as a shell reports a
process ended by it.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import threading
from collections.abc import Iterator

#: The signals handled like Ctrl-C.
SIGNALS = tuple(
    getattr(signal, name) for name in ("SIGINT", "SIGTERM", "SIGHUP") if hasattr(signal, name)
)

_received: int | None = None


def received() -> int | None:
    """The signal that stopped the last run inside ``graceful()`` (None: none did)."""
    return _received


def _tune_stop_handler():
    """Tune's own "stop and save" handler, which it installs on SIGUSR1 while it runs."""
    if not hasattr(signal, "SIGUSR1"):
        return None
    handler = signal.getsignal(signal.SIGUSR1)
    return handler if callable(handler) else None


def _handle(signum: int, frame) -> None:
    global _received
    first = _received is None
    _received = _received or signum
    name = signal.Signals(signum).name
    stop = _tune_stop_handler()
    if first:
        print(
            f"\nraynas: {name} received: stopping the trials and saving the experiment state "
            f"(send {name} again to stop at once)",
            file=sys.stderr,
            flush=True,
        )
    if stop is not None:
        stop(signum, frame)  # Tune's handler also puts back the SIGINT handler it found
    # Second time: the signal's own action (Ctrl-C: KeyboardInterrupt; SIGTERM: end now).
    again = signal.default_int_handler if signum == signal.SIGINT else signal.SIG_DFL
    signal.signal(signum, again)
    if stop is None:
        raise KeyboardInterrupt


@contextlib.contextmanager
def graceful() -> Iterator[None]:
    """Handle SIGINT, SIGTERM and SIGHUP as a request to stop and save (see the module doc).

    Outside the main thread (where Python cannot install handlers) it does nothing.
    """
    global _received
    _received = None
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    # Tune would install its own SIGINT handler inside fit(); raynas's covers all three.
    previous_env = os.environ.get("TUNE_DISABLE_SIGINT_HANDLER")
    os.environ["TUNE_DISABLE_SIGINT_HANDLER"] = "1"
    previous = {s: signal.getsignal(s) for s in SIGNALS}
    for s in SIGNALS:
        signal.signal(s, _handle)
    try:
        yield
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler if handler is not None else signal.SIG_DFL)
        if previous_env is None:
            os.environ.pop("TUNE_DISABLE_SIGINT_HANDLER", None)
        else:
            os.environ["TUNE_DISABLE_SIGINT_HANDLER"] = previous_env
