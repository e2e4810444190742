"""Ray token authentication as raynas uses it: a private token file, a clear missing-token error.

Ray (>= 2.52) protects a cluster with a shared token when ``RAY_AUTH_MODE=token``; a new local
``ray.init()`` turns it on by default and writes ``~/.ray/auth_token`` with the process umask
(mode 0644: readable by every user of the machine). The token is found in ``RAY_AUTH_TOKEN``,
else in the file ``RAY_AUTH_TOKEN_PATH``, else in ``~/.ray/auth_token``.

:func:`prepare` runs before raynas starts or joins a Ray:

- the token file is made readable by its owner only (chmod 0600, logged once), and created
  with mode 0600 by raynas itself when a new local Ray would otherwise write it;
- before joining a cluster at ``host:port`` (or ``auto``), one RPC to its GCS tells whether the
  cluster requires a token. If it does and this machine has none (or another one), the user
  gets one line saying how to get it, instead of Ray's 20 s of retries and a
  "Failed to connect"; if this machine has the token but ``RAY_AUTH_MODE`` is unset (Ray only
  sends the token to an explicit address in token mode), token mode is switched on.

The token itself never appears in a message or a log.
"""

from __future__ import annotations

import logging
import os
import secrets
import stat
from pathlib import Path

from raynas.errors import ConfigError
from raynas.logfilter import drop_messages

log = logging.getLogger(__name__)

MODE_ENV = "RAY_AUTH_MODE"
TOKEN_ENV = "RAY_AUTH_TOKEN"
TOKEN_PATH_ENV = "RAY_AUTH_TOKEN_PATH"

HOW_TO_GET = (
    "run `ray get-auth-token` on the cluster's head and put its output in ~/.ray/auth_token "
    "here (chmod 600), or set RAY_AUTH_TOKEN"
)


def token_path() -> Path:
    """The token file Ray reads: ``$RAY_AUTH_TOKEN_PATH``, else ``~/.ray/auth_token``."""
    custom = os.environ.get(TOKEN_PATH_ENV)
    return Path(custom).expanduser() if custom else Path.home() / ".ray" / "auth_token"


def local_token() -> str | None:
    """The token this machine would send: ``$RAY_AUTH_TOKEN``, else the token file's content."""
    token = os.environ.get(TOKEN_ENV, "").strip()
    if token:
        return token
    try:
        token = token_path().read_text().strip()
    except OSError:
        return None
    return token or None


def secure_token_file() -> Path | None:
    """Make the token file readable and writable by its owner only (chmod 0600).

    Returns:
        The file, or None when there is none.
    """
    path = token_path()
    try:
        mode = stat.S_IMODE(path.stat().st_mode)
    except FileNotFoundError:
        return None
    if mode & 0o077:
        path.chmod(0o600)
        log.warning("%s was readable by other users (mode %s); made it mode 0600", path, oct(mode))
    return path


def create_private_token() -> Path | None:
    """Create the token file (mode 0600, a fresh 256-bit token) when a new local Ray would.

    A new local Ray uses token authentication unless ``RAY_AUTH_MODE`` says otherwise, and
    writes a missing token file world-readable; raynas writes it first, owner-only. Nothing is
    done when ``RAY_AUTH_TOKEN`` holds the token, the mode is not token, or the file exists.

    Returns:
        The file created, or None.
    """
    mode = os.environ.get(MODE_ENV)
    if (mode is not None and mode.lower() != "token") or os.environ.get(TOKEN_ENV):
        return None
    path = token_path()
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return None
    with os.fdopen(fd, "w") as f:
        f.write(secrets.token_hex(32))  # what `ray get-auth-token --generate` writes
    log.warning(
        "created a Ray auth token in %s (mode 0600): local Ray clusters require it (Ray's "
        "default); set RAY_AUTH_MODE=disabled to opt out",
        path,
    )
    return path


def _gcs_address(address: str) -> str | None:
    """``host:port`` of the GCS that ``address`` names, or None (Ray client, none running)."""
    if "://" in address:
        return None
    if address != "auto":
        return address
    from ray._private import services

    try:
        return services.canonicalize_bootstrap_address(address)
    except (ConnectionError, ValueError):
        return None  # ray.init reports it


def requires_token(gcs_address: str, token: str | None, timeout_s: float = 5.0) -> bool | None:
    """Whether the GCS at ``gcs_address`` refuses a call that carries ``token`` (or none).

    Returns:
        True when refused as unauthenticated, False when accepted, None when the GCS did not
        answer (unreachable, TLS, another protocol): ``ray.init`` then reports the problem.
    """
    if os.environ.get("RAY_USE_TLS", "0").lower() in ("1", "true"):
        return None
    import grpc
    from ray.core.generated import gcs_service_pb2, gcs_service_pb2_grpc

    metadata = [("authorization", f"Bearer {token}")] if token else None
    channel = grpc.insecure_channel(gcs_address)
    try:
        gcs_service_pb2_grpc.NodeInfoGcsServiceStub(channel).GetClusterId(
            gcs_service_pb2.GetClusterIdRequest(), timeout=timeout_s, metadata=metadata
        )
    except grpc.RpcError as e:
        return True if e.code() == grpc.StatusCode.UNAUTHENTICATED else None
    finally:
        channel.close()
    return False


def check_cluster_token(address: str) -> None:
    """Before joining the cluster at ``address``: fail with one clear line when it requires a
    token that this machine does not have, and switch token mode on when the token is here.

    Raises:
        ConfigError: the cluster requires a token and none (or a different one) is here, or
            ``RAY_AUTH_MODE`` here disables the token the cluster requires.
    """
    gcs = _gcs_address(address)
    if gcs is None or not requires_token(gcs, None):
        return
    token = local_token()
    if token is None:
        raise ConfigError(
            f"the Ray cluster at {address} requires an auth token and none was found on this "
            f"machine; {HOW_TO_GET}"
        )
    if requires_token(gcs, token):
        source = TOKEN_ENV if os.environ.get(TOKEN_ENV, "").strip() else str(token_path())
        raise ConfigError(
            f"the Ray cluster at {address} refused the auth token in {source} (another "
            f"cluster's token?); {HOW_TO_GET}"
        )
    mode = os.environ.get(MODE_ENV)
    if mode is None:
        _enable_token_mode()
    elif mode.lower() != "token":
        raise ConfigError(
            f"the Ray cluster at {address} requires token authentication but "
            f"{MODE_ENV}={mode} here; unset it or set {MODE_ENV}=token"
        )


def _enable_token_mode() -> None:
    """``RAY_AUTH_MODE=token`` for this process and its children: Ray sends the token to an
    explicit address only in token mode. Ray caches its config, so it is reloaded too."""
    os.environ[MODE_ENV] = "token"
    from ray._raylet import Config

    Config.initialize("")  # as ray's own authentication_token_setup._enable_token_auth does


def prepare(address: str | None) -> None:
    """Token handling before raynas starts (``address`` None) or joins a Ray.

    Raises:
        ConfigError: see :func:`check_cluster_token`.
    """
    if address is None and not os.environ.get("RAY_ADDRESS"):  # a new local Ray
        create_private_token()
        # Ray warns "Token authentication is enabled" on every local start; raynas said it
        # once, when it created the token.
        drop_messages(
            "ray._private.authentication.authentication_token_setup",
            "Token authentication is enabled for this Ray cluster",
        )
    secure_token_file()
    if address is not None:
        check_cluster_token(address)
