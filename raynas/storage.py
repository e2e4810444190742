"""Where an experiment lives: a local folder or a URI, read and written through pyarrow.

Tune resolves a ``storage_path`` with ``pyarrow.fs.FileSystem.from_uri`` (``s3://bucket/x``,
``gs://...``, ``file:///shared/x``, ``hdfs://...``); raynas uses the same resolution, so its own
files (``raynas.yaml``, the state backup ``.raynas-state/``) sit in the experiment folder next
to Tune's wherever that is, and every command takes the folder or its URI alike.

Reading commands (``report``, ``export``, ``status``, ``tensorboard``) work on a local folder;
for a URI they read an incremental ``mirror`` of the experiment's small files (everything but
checkpoints) kept under ``~/.cache/raynas/mirrors``.

S3 query options as pyarrow takes them, e.g. a MinIO/moto server:
``s3://bucket/raynas?endpoint_override=127.0.0.1:9000&scheme=http``. Credentials belong in the
environment (``AWS_ACCESS_KEY_ID``...) or the instance role, not in the URI; raynas masks any it
finds there (``redact``) before it writes or prints a URI.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import pyarrow.fs as pafs

from raynas import atomic
from raynas.errors import ConfigError

#: Query parameters of a storage URI that hold secrets.
SECRET_PARAMS = ("secret_key", "access_key", "session_token", "password", "token", "sas_token")
#: Mirror cache root (``RAYNAS_CACHE`` overrides ``~/.cache/raynas``).
MIRROR_DIR = "mirrors"
_MANIFEST = ".raynas-mirror.json"
_PROBE = ".raynas-write-probe"


def is_uri(path: str) -> bool:
    """A storage path such as ``s3://bucket/x`` or ``file:///tmp/x`` (not a plain folder)."""
    return "://" in str(path)


def redact(text: str) -> str:
    """``text`` with the secrets of a URI (user:password@, secret query values) masked."""
    text = str(text)
    if not is_uri(text):
        return text
    parts = urlsplit(text)
    netloc = parts.netloc
    if "@" in netloc:
        netloc = "***@" + netloc.rpartition("@")[2]
    query = urlencode(
        [(k, "***" if k.lower() in SECRET_PARAMS else v) for k, v in parse_qsl(parts.query)],
        safe="/:*",
    )
    return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))


def has_secret(text: str) -> bool:
    """Whether a URI carries credentials (``redact`` would change it)."""
    return redact(text) != str(text)


@dataclass(frozen=True)
class Location:
    """A folder on a pyarrow filesystem: ``fs`` plus ``path`` on it; ``uri`` as given.

    Local folders use ``pyarrow.fs.LocalFileSystem`` with an absolute path.
    """

    fs: pafs.FileSystem
    path: str
    uri: str

    @property
    def is_local(self) -> bool:
        """Whether the folder is on this machine's filesystem (a path or ``file://``)."""
        return self.fs.type_name == "local"

    @property
    def shown(self) -> str:
        """The location for messages: the URI with its secrets masked."""
        return redact(self.uri)

    def local_path(self) -> Path | None:
        """The folder as a local ``Path`` when it is one, else None."""
        return Path(self.path) if self.is_local else None

    def child(self, name: str) -> Location:
        """The location of ``name`` inside this folder."""
        name = name.strip("/")
        return Location(self.fs, f"{self.path.rstrip('/')}/{name}", _join_uri(self.uri, name))

    def file(self, name: str) -> str:
        """The path of file ``name`` inside this folder on ``fs``."""
        return f"{self.path.rstrip('/')}/{name.lstrip('/')}"

    # -- reading ----------------------------------------------------------------------------

    def info(self, name: str = "") -> pafs.FileInfo:
        return self.fs.get_file_info(self.file(name) if name else self.path)

    def exists(self, name: str = "") -> bool:
        """Whether ``name`` (or the folder itself) exists."""
        return self.info(name).type != pafs.FileType.NotFound

    def is_dir(self) -> bool:
        return self.info().type == pafs.FileType.Directory

    def read_bytes(self, name: str) -> bytes:
        with self.fs.open_input_stream(self.file(name)) as f:
            return f.readall()

    def read_text(self, name: str) -> str:
        return self.read_bytes(name).decode("utf-8")

    def list(self, recursive: bool = False) -> list[pafs.FileInfo]:
        """Entries under the folder ([] when it does not exist)."""
        selector = pafs.FileSelector(self.path, recursive=recursive, allow_not_found=True)
        return self.fs.get_file_info(selector)

    def names(self) -> list[str]:
        """Names of the files directly in the folder."""
        return sorted(i.base_name for i in self.list() if i.type == pafs.FileType.File)

    # -- writing ----------------------------------------------------------------------------

    def write_bytes(self, name: str, data: bytes) -> None:
        """Write ``name`` whole or not at all: a temporary file renamed into place on local
        filesystems; one object upload (visible only once complete) on object stores."""
        target = self.file(name)
        if self.is_local:
            atomic.write_bytes(target, data)
            return
        self.fs.create_dir(os.path.dirname(target), recursive=True)
        with self.fs.open_output_stream(target) as f:
            f.write(data)

    def write_text(self, name: str, text: str) -> None:
        self.write_bytes(name, text.encode("utf-8"))

    def move(self, name: str, dest: str) -> None:
        """Move file ``name`` to ``dest`` (both relative to this folder)."""
        self.fs.create_dir(os.path.dirname(self.file(dest)), recursive=True)
        self.fs.move(self.file(name), self.file(dest))

    def copy(self, name: str, dest: str) -> None:
        """Copy file ``name`` to ``dest`` (both relative to this folder), whole or not at all."""
        self.write_bytes(dest, self.read_bytes(name))


def _join_uri(uri: str, name: str) -> str:
    if not is_uri(uri):
        return str(Path(uri) / name)
    parts = urlsplit(uri)
    return urlunsplit(parts._replace(path=parts.path.rstrip("/") + "/" + name))


def locate(path: str | os.PathLike) -> Location:
    """The ``Location`` of a local folder or a URI, resolved as Tune resolves storage paths.

    Raises:
        ConfigError: a URI whose scheme or options pyarrow does not understand.
    """
    text = os.fspath(path)
    if not is_uri(text):
        local = Path(text).expanduser().resolve()
        return Location(pafs.LocalFileSystem(), str(local), str(local))
    try:
        fs, fs_path = pafs.FileSystem.from_uri(text)
    except (ValueError, OSError, TypeError) as e:
        raise ConfigError(f"cannot use storage {redact(text)}: {_one_line(e)}") from None
    return Location(fs, fs_path.rstrip("/") or fs_path, text)


def _one_line(err: BaseException) -> str:
    text = " ".join(str(err).split()) or type(err).__name__
    # pyarrow's S3 messages end with a request id; it helps nobody on the console.
    return re.sub(r"\s*\(Request ID: [^)]*\)", "", text)


def check_writable(loc: Location) -> None:
    """Write and remove a probe file in ``loc``.

    Raises:
        ConfigError: the folder cannot be created or written (missing bucket, no permission,
            a file in the way), naming the location and the reason.
    """
    probe = _PROBE
    try:
        if loc.is_local:
            parent = Path(loc.path)
            for p in (parent, *parent.parents):
                if p.exists():
                    if not p.is_dir():
                        raise ConfigError(f"storage path {loc.shown}: {p} is a file, not a folder")
                    break
        loc.write_bytes(probe, b"raynas\n")
        loc.fs.delete_file(loc.file(probe))
    except ConfigError:
        raise
    except (OSError, ValueError) as e:
        raise ConfigError(f"cannot write to storage {loc.shown}: {_one_line(e)}") from None


# --- the mirror --------------------------------------------------------------------------------


def cache_root() -> Path:
    return Path(os.environ.get("RAYNAS_CACHE") or Path.home() / ".cache" / "raynas")


def _skipped(relative: str) -> bool:
    """Checkpoints (large, never read by the reading commands) and raynas's temporaries."""
    parts = relative.split("/")
    if any(p.startswith("checkpoint_") or p.startswith(".tmp") for p in parts):
        return True
    return parts[-1].endswith(".tmp") or parts[-1] == _PROBE


def mirror(loc: Location, dest: Path | None = None) -> Path:
    """An up-to-date local copy of the experiment folder ``loc`` without its checkpoints.

    Files are downloaded when new or changed since the last mirror (the top-level state files
    every time), each whole (temporary file + rename); files gone from ``loc`` are removed from
    the copy. A local ``loc`` is returned as it is.

    Raises:
        ConfigError: ``loc`` cannot be listed (no such bucket, no permission).
    """
    if loc.is_local:
        return Path(loc.path)
    if dest is None:
        key = hashlib.sha256(redact(loc.uri).encode()).hexdigest()[:12]
        dest = cache_root() / MIRROR_DIR / f"{Path(loc.path).name}-{key}"
    dest.mkdir(parents=True, exist_ok=True)
    manifest_file = dest / _MANIFEST
    try:
        manifest = json.loads(manifest_file.read_text())
    except (OSError, ValueError):
        manifest = {}
    try:
        entries = loc.list(recursive=True)
    except OSError as e:
        raise ConfigError(f"cannot read {loc.shown}: {_one_line(e)}") from None
    prefix = loc.path.rstrip("/") + "/"
    seen = {}
    for info in entries:
        if info.type != pafs.FileType.File:
            continue
        relative = info.path[len(prefix) :] if info.path.startswith(prefix) else info.base_name
        if _skipped(relative):
            continue
        stamp = [info.size, info.mtime_ns]
        seen[relative] = stamp
        target = dest / relative
        # Files at the top (Tune's and raynas's state, the decision log) are rewritten in place,
        # possibly within the store's one-second mtime at the same size: always fetched. Trial
        # files only grow (result.json, progress.csv, event files): fetched when they changed.
        if "/" in relative and manifest.get(relative) == stamp and target.is_file():
            continue
        try:
            with loc.fs.open_input_stream(info.path) as src:
                data = src.readall()
        except FileNotFoundError:  # removed while we listed it (Tune replaced a file)
            seen.pop(relative)
            continue
        atomic.write_bytes(target, data)
    for relative in set(manifest) - set(seen):
        (dest / relative).unlink(missing_ok=True)
    atomic.write_json(manifest_file, seen)
    return dest
