"""Experiment config -> Ray Tune run: build the parts, run, resume.

``build`` constructs the space, searcher, scheduler and trainable without starting Ray, so
every bad option fails before anything runs. ``run`` writes the resolved config next to Tune's
experiment state (``<storage_path>/<name>/raynas.yaml``, a local folder or a URI such as
``s3://bucket/raynas/<name>``); ``resume`` reads it back to rebuild the trainable and restores
the Tuner (searcher state included) from the folder or the URI.

The parts and every check that needs no running trial live in ``raynas.preflight``.
"""

from __future__ import annotations

import logging
import os
import socket
import stat
from pathlib import Path

import yaml

from raynas import storage
from raynas.config import ConfigError, ExperimentConfig, from_mapping, parse_yaml
from raynas.event_writer import tensorboardx_without_torch
from raynas.preflight import (  # noqa: F401 - also this module's API, as before
    NETWORK_FILESYSTEMS,
    Parts,
    build,
    check_data,
    check_metrics,
    check_resources,
    check_shared_storage,
    filesystem_type,
    machine_resources,
    preflight,
    shared_storage_problem,
)
from raynas.storage import Location, is_uri

log = logging.getLogger(__name__)

CONFIG_FILE = "raynas.yaml"

# Tune snapshots the experiment (trial states + searcher state) at most every ~10 s by
# default ("auto"); after a kill -9 of the driver the trials that finished since then run
# again. raynas snapshots every 2 s: a snapshot after every controller step ("0") made the
# driver of a 100-trial training experiment spend ~75% of its samples (py-spy) writing the
# 2 MB state JSON, a third of a core taken from the trials on a 2-core machine.
os.environ.setdefault("TUNE_GLOBAL_CHECKPOINT_S", "2")
# Trials waiting for resources no node has get one warning from raynas.resource_watch; Tune's
# own (after 60 s, repeated every 60 s, against the cluster total) would be a second one.
for _var in (
    "TUNE_WARN_INSUFFICENT_RESOURCE_THRESHOLD_S",
    "TUNE_WARN_INSUFFICENT_RESOURCE_THRESHOLD_S_AUTOSCALER",
):
    os.environ.setdefault(_var, "1e9")


def trial_dirname(trial) -> str:
    """Short trial folder names; Tune's default packs the whole config into the name."""
    return f"{trial.trainable_name}_{trial.trial_id}"


def storage_path(config: ExperimentConfig) -> str:
    """Absolute local path, or the URI unchanged."""
    if is_uri(config.storage_path):
        return config.storage_path
    return str(Path(config.storage_path).expanduser().resolve())


def experiment_location(config: ExperimentConfig) -> Location:
    """Where the experiment's folder is: ``<storage_path>/<name>``, local or at a URI."""
    return storage.locate(storage_path(config)).child(str(config.name))


def holds_experiment(loc: Location) -> bool:
    """Whether ``loc`` already holds a Tune experiment state."""
    try:
        names = loc.names()
    except OSError as e:
        raise ConfigError(f"cannot read storage {loc.shown}: {storage._one_line(e)}") from None
    return any(n.startswith("experiment_state-") and n.endswith(".json") for n in names)


def write_config(loc: Location, config: ExperimentConfig) -> None:
    """Write ``raynas.yaml`` into the experiment folder (secrets of a URI masked).

    Raises:
        ConfigError: the folder cannot be written (missing bucket, no permission, a file in
            the way).
    """
    storage.check_writable(loc)
    data = config.to_dict()
    data["storage_path"] = storage.redact(data["storage_path"])
    loc.write_text(CONFIG_FILE, yaml.safe_dump(data, sort_keys=False))


def _with_resources(parts: Parts):
    from ray import tune

    res = parts.config.resources
    return tune.with_resources(parts.trainable, {"cpu": res.cpu, "gpu": res.gpu})


def _progress(parts: Parts):
    """The status-line callback for ``parts`` (``raynas.progress.Progress``)."""
    from raynas import trainables
    from raynas.progress import Progress

    cfg = parts.config
    try:
        epochs = trainables.resolved_options(cfg.trainable.name, cfg.trainable.options).get(
            "epochs"
        )
    except (TypeError, ValueError):
        epochs = None
    return Progress(cfg.metric, cfg.mode, epochs=epochs if isinstance(epochs, int) else None)


def _callbacks(parts: Parts, loc: Location, verbose: int = 1) -> list:
    from raynas.beacon import DriverBeacon
    from raynas.loggers import result_loggers
    from raynas.plots import categorical_choices
    from raynas.recorder import CrashRecorder
    from raynas.resource_watch import ResourceWatch
    from raynas.snapshots import StateBackup
    from raynas.tensorboard import SearchProgressCallback
    from raynas.trainables import SEARCH_IN_TRIAL

    # With a URI the search-level TensorBoard file goes to Tune's driver staging folder, which
    # Tune uploads with its own state (None: found from the trials).
    local = str(loc.local_path()) if loc.is_local else None
    # The crash record (first: a completion is journaled before any other callback reports
    # it) needs a local folder: an fsynced append-only journal and atomic renames.
    # A URI has no crash record; a last good copy of Tune's state is kept there instead.
    keeper = CrashRecorder(local) if local is not None else StateBackup(loc.uri)
    cfg = parts.config
    # the op frequency pictures; not of the one-shot trainable, whose trials ignore their cell
    choices = (
        None
        if cfg.trainable.name in SEARCH_IN_TRIAL
        else categorical_choices(parts.space.tune_space())
    )
    return [
        keeper,
        # each epoch once in result.json/progress.csv/TensorBoard, also when a trial is
        # retried from an older checkpoint; one warning when trials ask what no node has
        *result_loggers([cfg.metric, *(cfg.searcher.options.get("objectives") or {})]),
        ResourceWatch(),
        SearchProgressCallback(
            local,
            cfg.metric,
            cfg.mode,
            label=f"{cfg.name} ({cfg.searcher.name})",
            choices=choices,
            objectives=cfg.searcher.options.get("objectives"),
        ),
        DriverBeacon(loc.uri),
        *([_progress(parts)] if verbose == 1 else []),
    ]


def check_reachable(address: str, timeout_s: float = 5.0) -> None:
    """Fail fast on a ``host:port`` that does not answer (``ray.init`` retries for minutes)."""
    if address == "auto" or "://" in address:
        return
    host, sep, port = address.rpartition(":")
    if not sep or not port.isdigit():
        raise ConfigError(
            f"invalid Ray address {address!r}; expected host:port, auto or ray://..."
        )
    try:
        socket.create_connection((host, int(port)), timeout=timeout_s).close()
    except OSError as e:
        raise ConfigError(f"cannot reach the Ray cluster at {address}: {e}") from None


def init_ray(address: str | None = None, num_cpus: int | None = None) -> None:
    """Connect to ``address`` or start an embedded local Ray (dashboard off)."""
    import ray

    if address:
        check_reachable(address)
    if ray.is_initialized():
        return
    from raynas import auth

    auth.prepare(address)  # token file mode 0600; a clear error when a needed token is missing
    try:
        if address:
            ray.init(address=address, log_to_driver=False)
        else:
            # "local": a new embedded Ray, never the cluster a `ray start` left on this machine
            # (ray.init() without an address attaches to the last one started).
            ray.init(
                address="local", num_cpus=num_cpus, include_dashboard=False, log_to_driver=False
            )
    except (ConnectionError, TimeoutError, ValueError) as e:
        raise ConfigError(f"cannot reach the Ray cluster at {address!r}: {e}") from None


def finished_trials(folder: Path) -> int:
    """Trials of the experiment folder ``folder`` that reported at least one result."""
    return sum(1 for f in folder.glob("*/result.json") if f.stat().st_size > 0)


def move_aside(folder: Path) -> Path:
    """Rename the experiment folder ``folder`` to ``<folder>.old-<YYYYmmdd-HHMMSS>`` (nothing
    is deleted) and return the new path."""
    import time

    stamp = time.strftime("%Y%m%d-%H%M%S")
    target = folder.with_name(f"{folder.name}.old-{stamp}")
    n = 1
    while target.exists():
        n += 1
        target = folder.with_name(f"{folder.name}.old-{stamp}-{n}")
    try:
        folder.rename(target)
    except OSError as e:
        raise ConfigError(f"cannot move {folder} aside to {target}: {e.strerror or e}") from None
    return target


def _taken(loc: Location, restart_hint: str) -> ConfigError:
    """The error for a run whose experiment folder already holds an experiment."""
    local = loc.local_path()
    if local is not None and finished_trials(local) == 0:
        what = "holds a run that stopped before any trial finished"
    else:
        what = "already holds an experiment"
    return ConfigError(
        f"experiment folder {loc.shown} {what}; continue it with `raynas resume {loc.shown}`, "
        f"start over with {restart_hint} (moves the old folder aside, nothing is deleted) or "
        "choose another --name"
    )


def prepare_folder(loc: Location, restart: bool, restart_hint: str = "--restart") -> None:
    """Make the experiment folder ready for a new run.

    Args:
        loc: the experiment folder.
        restart: move a folder that already holds an experiment aside (local folders only).
        restart_hint: how the user asks for a restart, for the error message.

    Raises:
        ConfigError: the folder holds an experiment (and ``restart`` is false, or it is at a
            URI), or a file is in the way.
    """
    from raynas.recovery import has_saved_state, start_over

    local = loc.local_path()
    if local is not None and local.exists() and not local.is_dir():
        raise ConfigError(f"experiment folder {loc.shown} is a file, not a folder")
    if holds_experiment(loc) or (local is not None and has_saved_state(local)):
        if not restart:
            raise _taken(loc, restart_hint)
        if local is None:
            raise ConfigError(
                f"--restart moves local folders only; {loc.shown} is at a URI: choose "
                "another --name"
            )
        moved = move_aside(local)
        log.warning("moved the old experiment folder aside to %s", moved)
    elif local is not None and local.is_dir():
        start_over(local)  # what a driver killed before Tune's first save left
        # its driver beacon too: the new run's times (report's wall time) start afresh
        from raynas.beacon import BEACON_FILE

        (local / BEACON_FILE).unlink(missing_ok=True)


def run(
    config: ExperimentConfig,
    address: str | None = None,
    verbose: int = 1,
    restart: bool = False,
    restart_hint: str = "--restart",
):
    """Run the experiment to completion and return Tune's ``ResultGrid``.

    Args:
        config: the experiment.
        address: a Ray cluster to connect to; None starts an embedded local Ray.
        verbose: 0: only the final summary; 1: raynas's status line
            (``raynas.progress``); 2: Tune's progress tables.
        restart: move an experiment folder that already holds an experiment aside first.
        restart_hint: the command that restarts, quoted in the error without ``restart``.

    Raises:
        ConfigError: bad config, a pre-flight check failed, or the experiment folder already
            holds an experiment (without ``restart``).
    """
    from ray import tune
    from ray.tune.search import Searcher

    parts = build(config)
    preflight(parts, address)
    root = storage_path(config)
    loc = experiment_location(config)
    if address:
        check_reachable(address)
    if loc.is_local:
        storage.check_writable(storage.locate(root))
    if verbose < 2:
        from raynas.progress import quiet_tune

        quiet_tune()
    if storage.has_secret(root):
        log.warning(
            "the storage URI carries credentials; raynas masks them in what it writes and "
            "prints, but Tune keeps the URI in its own state files: prefer the environment "
            "(AWS_ACCESS_KEY_ID, ...) or an instance role"
        )
    prepare_folder(loc, restart, restart_hint)
    write_config(loc, config)
    init_ray(address)
    check_shared_storage(loc)
    tensorboardx_without_torch()
    tuner = tune.Tuner(
        _with_resources(parts),
        # Trainables may add keys of their own (the darts trainable's sweep of settings).
        param_space={
            **parts.space.tune_space(),
            **getattr(parts.trainable, "param_space", {}),
        },
        tune_config=tune.TuneConfig(
            metric=config.metric,
            mode=config.mode,
            search_alg=parts.searcher,
            scheduler=parts.scheduler,
            num_samples=config.num_samples,
            # Searchers that limit concurrency themselves (random) got it in build().
            max_concurrent_trials=(
                config.max_concurrent if isinstance(parts.searcher, Searcher) else None
            ),
            time_budget_s=config.time_budget_s,
            reuse_actors=True,
            trial_dirname_creator=trial_dirname,
        ),
        run_config=tune.RunConfig(
            name=config.name,
            storage_path=root,
            callbacks=_callbacks(parts, loc, verbose),
            failure_config=tune.FailureConfig(max_failures=config.max_failures),
            # Trial folders (TensorBoard files, DARTS alpha images) reach the storage path
            # from every node of a cluster, not only checkpoints.
            sync_config=tune.SyncConfig(sync_artifacts=True),
            verbose=1 if verbose >= 2 else 0,
        ),
    )
    return _fit(tuner, loc, quiet=verbose < 2)


def _fit(tuner, loc: Location, quiet: bool = True):
    """``tuner.fit()``, the driver's beacon marked stopped however it ends; SIGTERM and SIGHUP
    stop it as Ctrl-C does (``raynas.stop``); ``quiet``: Tune's messages that raynas says
    itself are left out (``raynas.progress.quiet_tune``)."""
    from raynas import stop
    from raynas.beacon import mark_stopped
    from raynas.progress import quiet_tune

    saved = os.environ.get("RAY_AIR_NEW_OUTPUT")
    if quiet:
        quiet_tune()
        # Tune's new output prints its configuration table and hints (`Tuner.restore`,
        # `tensorboard --logdir /tmp/ray/...`) even at verbosity 0; its older one prints
        # nothing at 0.
        os.environ["RAY_AIR_NEW_OUTPUT"] = "0"
    try:
        with stop.graceful():
            return tuner.fit()
    finally:
        if quiet:
            if saved is None:
                os.environ.pop("RAY_AIR_NEW_OUTPUT", None)
            else:
                os.environ["RAY_AIR_NEW_OUTPUT"] = saved
        mark_stopped(loc.uri)


def load_experiment_config(path: str | Path | Location) -> ExperimentConfig:
    """The config saved in an experiment folder (local or at a URI) by ``run``."""
    loc = path if isinstance(path, Location) else storage.locate(path)
    try:
        found = loc.is_dir()
    except OSError as e:
        raise ConfigError(f"cannot read {loc.shown}: {storage._one_line(e)}") from None
    if not found:
        raise ConfigError(f"experiment folder not found: {loc.shown}")
    if not loc.exists(CONFIG_FILE):
        raise ConfigError(f"{loc.shown} is not a raynas experiment folder (no {CONFIG_FILE})")
    source = f"{loc.shown}/{CONFIG_FILE}"
    try:
        data = loc.read_bytes(CONFIG_FILE)
    except OSError as e:
        raise ConfigError(f"{source}: cannot read: {storage._one_line(e)}") from None
    return from_mapping(parse_yaml(data, source), source)


def check_private(folder: Path) -> None:
    """ConfigError when another user could have written into the experiment folder.

    ``resume`` unpickles Tune's and the searcher's state and loads checkpoints from it, so a
    folder or file that is group- or world-writable, or owned by another user, could make it
    run someone else's code.
    """
    me = os.getuid()
    for root, dirs, files in os.walk(folder):
        for name in [None, *dirs, *files]:
            target = Path(root) if name is None else Path(root) / name
            try:
                st = os.lstat(target)
            except OSError:
                continue
            why = None
            if stat.S_ISLNK(st.st_mode):
                continue
            if st.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
                why = f"is writable by other users (mode {stat.filemode(st.st_mode)})"
            elif st.st_uid != me:
                why = f"is owned by another user (uid {st.st_uid})"
            if why:
                raise ConfigError(
                    f"{target} {why}; raynas resume loads pickled state from {folder}, so it "
                    f"refuses: make it yours and private first (e.g. chmod -R go-w {folder})"
                )
        dirs[:] = [d for d in dirs if not os.path.islink(os.path.join(root, d))]


def resume(path: str | Path, address: str | None = None, verbose: int = 1):
    """Continue an interrupted experiment (a local folder or a URI): unfinished and errored
    trials are run again, finished ones are kept; the searcher continues from its saved state.
    """
    from ray import tune
    from ray.tune.search import Searcher

    from raynas.recovery import recover
    from raynas.snapshots import check_or_repair

    loc = storage.locate(path)
    config = load_experiment_config(loc)
    local = loc.local_path()
    if local is not None:
        check_private(local)
    parts = build(config)
    preflight(parts, address)
    # Before Tune, which would restart on a damaged state: the state rebuilt from the crash
    # record (a local folder), else the last good copy of Tune's own files.
    recovered = None
    if local is not None:
        limit = config.max_concurrent if isinstance(parts.searcher, Searcher) else None
        recovered = recover(local, parts.searcher, limit, _with_resources(parts))
    if recovered:
        log.warning("%s", recovered.message())
    else:
        repaired = check_or_repair(loc)
        if repaired:
            log.warning("%s", repaired)
    target = str(local) if local is not None and not is_uri(loc.uri) else loc.uri
    if not tune.Tuner.can_restore(target):
        hint = ""
        if local is not None:
            hint = (
                f" (a run stopped before its first save); start it again with: raynas run "
                f"{local / CONFIG_FILE} --storage-path {local.parent} --name {local.name}"
            )
        raise ConfigError(f"{loc.shown} has no Tune experiment state to resume from{hint}")
    if address:
        check_reachable(address)
    from raynas.progress import quiet_tune

    quiet_tune()
    init_ray(address)
    check_shared_storage(loc)
    tensorboardx_without_torch()
    tuner = tune.Tuner.restore(
        target, trainable=_with_resources(parts), resume_unfinished=True, resume_errored=True
    )
    del verbose  # Tune keeps the RunConfig of the original run.
    return _fit(tuner, loc)
