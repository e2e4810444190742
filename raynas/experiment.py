"""Experiment config -> Ray Tune run: build the parts, run, resume.

``build`` constructs the space, searcher, scheduler and trainable without starting Ray, so
every bad option fails before anything runs. ``run`` writes the resolved config next to Tune's
experiment state (``<storage_path>/<name>/raynas.yaml``); ``resume`` reads it back to rebuild
the trainable and restores the Tuner (searcher state included).
"""

from __future__ import annotations

import logging
import os
import socket
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from raynas.config import ConfigError, ExperimentConfig, from_mapping, read_yaml

log = logging.getLogger(__name__)

CONFIG_FILE = "raynas.yaml"

# Tune snapshots the experiment (trial states + searcher state) at most every ~10 s by
# default ("auto"); after a kill -9 of the driver the trials that finished since then run
# again. raynas snapshots every 2 s: a snapshot after every controller step ("0") made the
# driver of a 100-trial training experiment spend ~75% of its samples (py-spy) writing the
# 2 MB state JSON, a third of a core taken from the trials on a 2-core machine.
os.environ.setdefault("TUNE_GLOBAL_CHECKPOINT_S", "2")


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
            **config.searcher.options,
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
    return Parts(config, space, searcher, scheduler, trainable)


def trial_dirname(trial) -> str:
    """Short trial folder names; Tune's default packs the whole config into the name."""
    return f"{trial.trainable_name}_{trial.trial_id}"


def is_uri(path: str) -> bool:
    """A storage path such as s3://bucket/x or file:///tmp/x (not a local folder)."""
    return "://" in path


def storage_path(config: ExperimentConfig) -> str:
    """Absolute local path, or the URI unchanged."""
    if is_uri(config.storage_path):
        return config.storage_path
    return str(Path(config.storage_path).expanduser().resolve())


def _with_resources(parts: Parts):
    from ray import tune

    res = parts.config.resources
    return tune.with_resources(parts.trainable, {"cpu": res.cpu, "gpu": res.gpu})


def _callbacks(parts: Parts, exp_dir: str | None) -> list:
    from raynas.snapshots import StateBackup
    from raynas.tensorboard import SearchProgressCallback

    if exp_dir is None:
        return []
    return [
        SearchProgressCallback(exp_dir, parts.config.metric, parts.config.mode),
        StateBackup(exp_dir),
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
            ray.init(num_cpus=num_cpus, include_dashboard=False, log_to_driver=False)
    except (ConnectionError, TimeoutError, ValueError) as e:
        raise ConfigError(f"cannot reach the Ray cluster at {address!r}: {e}") from None


def run(config: ExperimentConfig, address: str | None = None, verbose: int = 1):
    """Run the experiment to completion and return Tune's ``ResultGrid``.

    Raises:
        ConfigError: bad config, or the experiment folder already holds an experiment.
    """
    from ray import tune
    from ray.tune.search import Searcher

    parts = build(config)
    root = storage_path(config)
    exp_dir = None if is_uri(root) else Path(root) / str(config.name)
    if exp_dir is not None:
        if exp_dir.exists() and any(exp_dir.glob("experiment_state-*.json")):
            raise ConfigError(
                f"experiment folder {exp_dir} already holds an experiment; "
                f"continue it with `raynas resume {exp_dir}` or choose another --name"
            )
    init_ray(address)
    if exp_dir is not None:
        exp_dir.mkdir(parents=True, exist_ok=True)
        (exp_dir / CONFIG_FILE).write_text(yaml.safe_dump(config.to_dict(), sort_keys=False))
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
            callbacks=_callbacks(parts, None if exp_dir is None else str(exp_dir)),
            failure_config=tune.FailureConfig(max_failures=config.max_failures),
            # Trial folders (TensorBoard files, DARTS alpha images) reach the storage path
            # from every node of a cluster, not only checkpoints.
            sync_config=tune.SyncConfig(sync_artifacts=True),
            verbose=verbose,
        ),
    )
    return tuner.fit()


def load_experiment_config(path: str | Path) -> ExperimentConfig:
    """The config saved in an experiment folder by ``run``."""
    path = Path(path).expanduser()
    if not path.is_dir():
        raise ConfigError(f"experiment folder not found: {path}")
    file = path / CONFIG_FILE
    if not file.is_file():
        raise ConfigError(f"{path} is not a raynas experiment folder (no {CONFIG_FILE})")
    return from_mapping(read_yaml(file), str(file))


def resume(path: str | Path, address: str | None = None, verbose: int = 1):
    """Continue an interrupted experiment: unfinished and errored trials are run again,
    finished ones are kept; the searcher continues from its saved state."""
    from ray import tune

    from raynas.snapshots import check_or_repair

    path = Path(path).expanduser().resolve()
    config = load_experiment_config(path)
    repaired = check_or_repair(path)  # before Tune, which would restart on a damaged state
    if repaired:
        log.warning("%s", repaired)
    if not tune.Tuner.can_restore(str(path)):
        raise ConfigError(f"{path} has no Tune experiment state to resume from")
    parts = build(config)
    init_ray(address)
    tuner = tune.Tuner.restore(
        str(path), trainable=_with_resources(parts), resume_unfinished=True, resume_errored=True
    )
    del verbose  # Tune keeps the RunConfig of the original run.
    return tuner.fit()
