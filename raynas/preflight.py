"""An experiment's parts, built and checked before its trials run.

``build`` constructs the space, searcher, scheduler and trainable without starting Ray and
checks that the metric (and any searcher objective) is one the trainable reports;
``preflight`` checks the data and the resources a local run needs. ``check_shared_storage``
runs once Ray is up: on a cluster, trials on other machines write their results and
checkpoints to the storage path themselves, so a local folder works only when every node sees
it: it refuses a local ``storage_path`` when the cluster has nodes on other hosts, unless the
folder is on a network filesystem (NFS, Lustre, a FUSE mount...) or given as a ``file://`` URI
(the user's word that every node mounts it at that path). Each failure is a ``ConfigError``.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from raynas.config import ConfigError, ExperimentConfig
from raynas.storage import Location, is_uri

log = logging.getLogger(__name__)


@dataclass
class Parts:
    """Everything a Tuner needs, built and validated."""

    config: ExperimentConfig
    space: Any
    searcher: Any
    scheduler: Any
    trainable: Any


def _component_error(kind: str, name: str, err: Exception) -> ConfigError:
    text = str(err) or type(err).__name__
    if isinstance(err, TypeError):
        text = f"bad option: {text}"
    return ConfigError(f"{kind} {name!r}: {text}")


def build(config: ExperimentConfig) -> Parts:
    """Build all parts of ``config`` (no Ray started); ConfigError on any bad option."""
    import schedulers
    import search_spaces
    from raynas import searchers, trainables

    try:
        space = search_spaces.get(config.space.name, **config.space.options)
    except (TypeError, ValueError) as e:
        raise _component_error("space", config.space.name, e) from None
    try:
        searcher = searchers.make(
            config.searcher.name,
            space,
            metric=config.metric,
            mode=config.mode,
            seed=config.seed,
            max_concurrent=config.max_concurrent,
            **searcher_options(config),
        )
    except (TypeError, ValueError) as e:
        raise _component_error("searcher", config.searcher.name, e) from None
    try:
        scheduler = schedulers.make(config.scheduler.name, **config.scheduler.options)
    except (TypeError, ValueError) as e:
        raise _component_error("scheduler", config.scheduler.name, e) from None
    try:
        trainable = trainables.make(config.trainable.name, space, **config.trainable.options)
    except (TypeError, ValueError) as e:
        raise _component_error("trainable", config.trainable.name, e) from None
    check_metrics(config, space)
    return Parts(config, space, searcher, scheduler, trainable)


def searcher_options(config: ExperimentConfig) -> dict[str, Any]:
    """The searcher's options, its ``points_to_evaluate`` cut to ``num_samples``.

    ``num_samples`` is the number of trials for every searcher. Tune's searchers stop at
    ``num_samples`` suggestions, points included, but Tune's random search
    (``BasicVariantGenerator``) runs every point even beyond it; cutting the list here gives
    every searcher the same count, with one warning naming what is left out.
    """
    options = dict(config.searcher.options)
    points = options.get("points_to_evaluate")
    if isinstance(points, list) and len(points) > config.num_samples:
        log.warning(
            "searcher.options.points_to_evaluate has %d configs but num_samples is %d: only "
            "the first %d are run (raise num_samples to run them all)",
            len(points),
            config.num_samples,
            config.num_samples,
        )
        options["points_to_evaluate"] = points[: config.num_samples]
    return options


def check_metrics(config: ExperimentConfig, space: Any) -> None:
    """ConfigError when ``metric`` (or a searcher objective) is not a metric the trainable
    reports, listing the ones it does."""
    from raynas import trainables

    name = config.trainable.name
    try:
        reported = trainables.metrics(name, space, **config.trainable.options)
    except (TypeError, ValueError, OSError) as e:
        raise _component_error("trainable", name, e) from None
    wanted = {"metric": config.metric}
    objectives = config.searcher.options.get("objectives")
    if isinstance(objectives, dict):
        wanted.update({f"searcher objective {k!r}": k for k in objectives})
    for what, metric in wanted.items():
        if metric not in reported:
            shown = f"metric {metric!r}" if what == "metric" else what
            raise ConfigError(
                f"{shown} is not reported by trainable {name!r}; it reports: {', '.join(reported)}"
            )


def _datasets(parts: Parts) -> list[tuple[str, str, str | None]]:
    """``(who, dataset, root)`` for each dataset the experiment reads: the trainable's, and
    the searcher's proxy seeding batch (``proxy_seed``)."""
    from raynas import trainables

    cfg = parts.config
    found = []
    needed = trainables.dataset(cfg.trainable.name, **cfg.trainable.options)
    if needed is not None:
        found.append((f"trainable {cfg.trainable.name!r}", "trainable.options.root", *needed))
    searcher = getattr(parts.searcher, "searcher", parts.searcher)  # a ConcurrencyLimiter's
    seed = getattr(searcher, "proxy_seed", None)
    if seed is not None and getattr(seed, "dataset", None):
        who = f"searcher {cfg.searcher.name!r} proxy_seed"
        found.append((who, "searcher.options.proxy_seed.root", seed.dataset, seed.root))
    return found


def check_data(parts: Parts, address: str | None) -> None:
    """ConfigError when a dataset the experiment reads cannot be read here (folder missing, a
    file unreadable or corrupt, named). Skipped on a cluster (``address``): the trials read
    the data on their own nodes, which may hold it where the driver does not."""
    if address:
        return
    for who, key, name, root in _datasets(parts):
        from raynas import data  # torch: only when a dataset is read

        try:
            data.check(name, root)
        except data.DatasetError as e:
            hint = f" (--set {key}=PATH)" if "no data folder given" in str(e) else ""
            raise ConfigError(f"{who}: {e}{hint}") from None


def machine_resources() -> dict[str, float]:
    """CPUs and GPUs an embedded local Ray would see on this machine (Ray's own detection)."""
    from ray._private import accelerators, utils

    try:
        gpus = accelerators.get_accelerator_manager_for_resource(
            "GPU"
        ).get_current_node_num_accelerators()
    except Exception:  # noqa: BLE001 - no driver/library: Ray itself would find none
        gpus = 0
    return {"cpu": float(utils.get_num_cpus()), "gpu": float(gpus)}


def check_resources(config: ExperimentConfig, address: str | None) -> None:
    """ConfigError when a trial of a local run asks for more CPUs or GPUs than this machine
    has (the trial would wait forever). On a cluster (``address``) an autoscaler may add
    nodes, so ``raynas.resource_watch`` warns instead."""
    if address:
        return
    have = machine_resources()
    asked = {"cpu": config.resources.cpu, "gpu": config.resources.gpu}
    for kind in ("gpu", "cpu"):
        if asked[kind] > have[kind]:
            raise ConfigError(
                f"resources.{kind}={asked[kind]:g} per trial, but this machine has "
                f"{have[kind]:g} {kind.upper()}(s), so no trial could ever start; lower "
                f"resources.{kind} or run on a cluster with --address"
            )


def preflight(parts: Parts, address: str | None) -> None:
    """Every check that needs no Ray: data, resources (the metric is checked by ``build``)."""
    check_data(parts, address)
    check_resources(parts.config, address)


#: Filesystem types whose folders other machines can mount (a local path there is shared).
NETWORK_FILESYSTEMS = (
    "nfs",
    "nfs4",
    "cifs",
    "smb3",
    "smbfs",
    "lustre",
    "gpfs",
    "beegfs",
    "glusterfs",
    "ceph",
    "cephfs",
    "ocfs2",
    "gfs2",
    "9p",
    "fuse.",  # s3fs, gcsfuse, sshfs, juicefs, ...
)


def filesystem_type(path: str) -> str | None:
    """The type of the filesystem holding ``path`` (from /proc/mounts), None if unknown."""
    try:
        mounts = Path("/proc/mounts").read_text().splitlines()
    except OSError:
        return None
    best, kind = "", None
    target = os.path.realpath(path)
    for line in mounts:
        fields = line.split()
        if len(fields) < 3:
            continue
        point = fields[1].replace("\\040", " ")
        inside = target == point or target.startswith(point.rstrip("/") + "/")
        if inside and len(point) > len(best):
            best, kind = point, fields[2]
    return kind


def shared_storage_problem(
    path: str, node_addresses: list[str], driver_address: str, fs_type: str | None
) -> str | None:
    """Why the local folder ``path`` cannot hold a run on these nodes (None when it can).

    Args:
        path: the local storage path.
        node_addresses: the IP addresses of the cluster's alive nodes.
        driver_address: the IP address of the node the driver runs on.
        fs_type: the type of the filesystem holding ``path`` (``filesystem_type``).
    """
    others = sorted(set(node_addresses) - {driver_address})
    if not others:
        return None  # every node on this machine: they all see the folder
    if fs_type and any(
        fs_type == t or (t.endswith(".") and fs_type.startswith(t)) for t in NETWORK_FILESYSTEMS
    ):
        return None
    return (
        f"storage_path {path} is a folder of this machine ({fs_type or 'unknown'} filesystem), "
        f"but the cluster has nodes on {len(others)} other host(s) ({', '.join(others[:3])}"
        f"{', ...' if len(others) > 3 else ''}) whose trials could not write there; use a URI "
        "every node reaches (e.g. s3://bucket/raynas) or a shared filesystem (give it as "
        "file:///path if it is mounted at the same path on every node)"
    )


def check_shared_storage(loc: Location) -> None:
    """ConfigError when a local ``storage_path`` cannot be reached by the cluster's nodes."""
    import ray

    if is_uri(loc.uri) or not loc.is_local:
        return  # a URI: every node resolves it itself (file:// is the user's word it is shared)
    nodes = [n for n in ray.nodes() if n.get("Alive")]
    here = ray.get_runtime_context().get_node_id()
    driver = next((n["NodeManagerAddress"] for n in nodes if n.get("NodeID") == here), None)
    if driver is None:
        return
    problem = shared_storage_problem(
        str(Path(loc.path).parent),
        [n["NodeManagerAddress"] for n in nodes],
        driver,
        filesystem_type(str(Path(loc.path).parent)),
    )
    if problem:
        raise ConfigError(problem)
