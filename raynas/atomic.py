"""Files written whole or not at all: a temporary file in the same folder, then ``os.replace``.

One writer for every place that must not leave a torn file behind (searcher and scheduler
state, latency tables, the crash record). ``fsync=True`` also flushes the data to disk before
the rename, for files that must survive a power loss, not only a killed process.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any


def json_default(value: Any) -> Any:
    """``json.dump``'s ``default`` for numpy scalars (``.item()``) and anything else (``str``)."""
    if hasattr(value, "item"):
        return value.item()
    return str(value)


def write_bytes(path: str | os.PathLike, data: bytes, fsync: bool = False) -> None:
    """Write ``data`` to ``path`` atomically, creating its folder.

    Args:
        path: the file to (re)place.
        data: its new content.
        fsync: also ``fsync`` the data before the rename.
    """
    path = Path(path)
    folder = path.parent if str(path.parent) else Path(".")
    folder.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            if fsync:
                f.flush()
                os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def write_json(
    path: str | os.PathLike, data: Any, fsync: bool = False, **dump_options: Any
) -> None:
    """Write ``data`` as JSON to ``path`` atomically (see ``write_bytes``).

    Args:
        path: the file to (re)place.
        data: anything ``json.dumps`` takes; numpy scalars become numbers, other unknown
            objects their ``str``.
        fsync: also ``fsync`` the data before the rename.
        **dump_options: passed to ``json.dumps`` (e.g. ``indent``, ``sort_keys``).
    """
    text = json.dumps(data, default=json_default, **dump_options)
    write_bytes(path, text.encode("utf-8"), fsync=fsync)
