"""Checks of a ``ray up`` cluster file (``raynas check-cluster FILE``).

Ray's own ``prepare_config`` + ``validate_config`` (what ``ray up`` runs first) fill in the
provider's defaults and check the file against Ray's schema. That schema accepts any key under
``provider:``, so a misspelt ``regoin:`` is silently ignored and the cluster starts in the
default region; for the providers raynas ships files for (``aws``, ``local``) the provider keys
are checked against the keys Ray reads.
"""

from __future__ import annotations

import copy
import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from raynas.config import ConfigError, read_yaml

#: Provider keys Ray's autoscaler reads for every provider type.
COMMON_PROVIDER_KEYS = frozenset(
    {
        "type",
        "use_internal_ips",
        "disable_node_updaters",
        "disable_launch_config_check",
        "foreground_node_launch",
    }
)
#: Provider keys Ray reads per provider type (ray/autoscaler/_private/<type>/, Ray 2.60).
PROVIDER_KEYS = {
    "aws": COMMON_PROVIDER_KEYS
    | {
        "region",
        "availability_zone",
        "cache_stopped_nodes",
        "security_group",
        "key_pair",
        "aws_credentials",
        "cloudwatch",
        "use_external_head_ip",
    },
    "local": COMMON_PROVIDER_KEYS
    | {"head_ip", "worker_ips", "coordinator_address", "external_head_ip"},
}


@dataclass(frozen=True)
class ClusterSummary:
    """What a checked cluster file describes."""

    path: str
    name: str
    provider: str
    where: str  # region or head address
    node_types: dict[str, tuple[int, int]]  # name -> (min_workers, max_workers)
    max_workers: int
    token_auth: bool

    def format(self) -> str:
        """One short paragraph: name, provider, node types, token auth."""
        types = ", ".join(f"{n} {lo}..{hi}" for n, (lo, hi) in self.node_types.items())
        auth = "on" if self.token_auth else "OFF (no RAY_AUTH_MODE=token in the start commands)"
        return (
            f"{self.path}: ok\n"
            f"  cluster {self.name!r}, provider {self.provider} ({self.where}), "
            f"max {self.max_workers} workers\n"
            f"  node types (min..max workers): {types}\n"
            f"  token authentication: {auth}"
        )


def read(path: str | Path) -> dict[str, Any]:
    """The cluster file as a mapping; ConfigError when missing or not a YAML mapping."""
    path = Path(path).expanduser()
    if not path.is_file():
        raise ConfigError(f"cluster file not found: {path}")
    data = read_yaml(path)
    if not isinstance(data, dict):
        raise ConfigError(f"cluster file {path} must be a YAML mapping, got {type(data).__name__}")
    return data


def check_provider_keys(config: dict[str, Any], where: str = "cluster file") -> None:
    """Unknown ``provider:`` keys of an ``aws`` or ``local`` provider are an error.

    Raises:
        ConfigError: no ``provider.type``, or a key Ray does not read, naming the valid ones.
    """
    provider = config.get("provider")
    if not isinstance(provider, dict) or not provider.get("type"):
        raise ConfigError(f"{where}: needs a `provider:` mapping with a `type` (e.g. aws, local)")
    valid = PROVIDER_KEYS.get(provider["type"])
    if valid is None:
        return  # other providers: Ray's own validation only
    unknown = sorted(set(provider) - valid)
    if unknown:
        raise ConfigError(
            f"{where}: unknown provider key {unknown[0]!r} for provider type "
            f"{provider['type']!r}; valid keys: {', '.join(sorted(valid))}"
        )


def validate_with_ray(config: dict[str, Any], where: str = "cluster file") -> dict[str, Any]:
    """Ray's ``prepare_config`` + ``validate_config`` (what ``ray up`` runs first).

    Returns:
        The prepared config (Ray's defaults filled in).

    Raises:
        ConfigError: Ray rejects the file; the message names the offending part.
    """
    import click
    import jsonschema
    import ray.autoscaler
    from ray.autoscaler._private.util import prepare_config, validate_config

    # Ray's schema first on the file as written (Ray's prepare_config crashes on some wrong
    # types, e.g. a string max_workers), without `required`: prepare_config fills those in.
    schema_path = Path(ray.autoscaler.__file__).parent / "ray-schema.json"
    schema = json.loads(schema_path.read_text())
    try:
        jsonschema.validate(config, {**schema, "required": []})
    except jsonschema.ValidationError as e:
        raise ConfigError(f"{where}: {_schema_error(e)}") from None
    quiet = logging.getLogger("ray.autoscaler")  # its INFO lines about filled-in defaults
    level = quiet.level
    quiet.setLevel(logging.WARNING)
    try:
        prepared = prepare_config(copy.deepcopy(config))
        validate_config(prepared)
    except jsonschema.ValidationError as e:
        raise ConfigError(f"{where}: {_schema_error(e)}") from None
    except (ValueError, NotImplementedError, click.ClickException) as e:
        raise ConfigError(f"{where}: {e}") from None
    finally:
        quiet.setLevel(level)
    return prepared


def _schema_error(err) -> str:
    """A jsonschema error in one line: where, then what."""
    at = ".".join(str(p) for p in err.absolute_path) or "top level"
    return f"{at}: {' '.join(err.message.split())}"


def _token_auth(config: dict[str, Any]) -> bool:
    """Whether every Ray start command of the file runs with ``RAY_AUTH_MODE=token``."""
    setup = " ".join(str(c) for c in config.get("setup_commands") or [])
    exported = "export RAY_AUTH_MODE=token" in setup
    starts = [
        str(c)
        for key in ("head_start_ray_commands", "worker_start_ray_commands")
        for c in config.get(key) or []
        if "ray start" in str(c)
    ]
    return bool(starts) and all(exported or "RAY_AUTH_MODE=token" in c for c in starts)


def check_file(path: str | Path) -> ClusterSummary:
    """Check a cluster file as ``ray up`` would, plus its provider keys.

    Raises:
        ConfigError: the first problem found, in one line.
    """
    where = f"cluster file {path}"
    config = read(path)
    check_provider_keys(config, where)
    prepared = validate_with_ray(config, where)
    provider = prepared["provider"]
    if provider["type"] == "local":
        place = f"head {provider.get('head_ip', provider.get('coordinator_address'))}"
    else:
        place = provider.get("region") or provider.get("location") or "default region"
    node_types = {
        name: (int(t.get("min_workers", 0)), int(t.get("max_workers", 0)))
        for name, t in prepared.get("available_node_types", {}).items()
    }
    return ClusterSummary(
        path=str(path),
        name=str(prepared.get("cluster_name", "default")),
        provider=str(provider["type"]),
        where=str(place),
        node_types=node_types,
        max_workers=int(prepared.get("max_workers", 0)),
        token_auth=_token_auth(prepared),
    )
