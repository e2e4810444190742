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
import sys
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


def _tensorboardx_without_torch() -> None:
    """Import tensorboardX, for Tune's per-trial TensorBoard logger, without torch.

    The logger's ``tensorboardX.writer`` imports torch when it can (1.5 s idle, 5 s on a
    loaded 2-core machine) only to accept torch tensors, which Tune never passes; the driver
    would otherwise import it before its first trial starts. torch stays importable: the
    block lasts for this one import.
    """
    if "tensorboardX" in sys.modules or "torch" in sys.modules:
        return
    sys.modules["torch"] = None  # type: ignore[assignment]  # `import torch` -> ImportError
    try:
        import tensorboardX  # noqa: F401
    except ImportError:  # not installed: Tune skips the logger
        pass
    finally:
        if sys.modules.get("torch", 0) is None:
            del sys.modules["torch"]


def _with_resources(parts: Parts):
    from ray import tune

    res = parts.config.resources
    return tune.with_resources(parts.trainable, {"cpu": res.cpu, "gpu": res.gpu})


def _callbacks(parts: Parts, exp_dir: str | None) -> list:
    from raynas.recorder import CrashRecorder
    from raynas.snapshots import StateBackup
    from raynas.tensorboard import SearchProgressCallback

    if exp_dir is None:
        return []
    return [
        # First: a completion is journaled before any other callback reports it.
        CrashRecorder(exp_dir),
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
    from raynas.recovery import has_saved_state, start_over

    parts = build(config)
    root = storage_path(config)
    exp_dir = None if is_uri(root) else Path(root) / str(config.name)
    if exp_dir is not None:
        if exp_dir.exists() and has_saved_state(exp_dir):
            raise ConfigError(
                f"experiment folder {exp_dir} already holds an experiment; "
                f"continue it with `raynas resume {exp_dir}` or choose another --name"
            )
    init_ray(address)
    if exp_dir is not None:
        exp_dir.mkdir(parents=True, exist_ok=True)
        start_over(exp_dir)  # what a driver killed before Tune's first save left
        (exp_dir / CONFIG_FILE).write_text(yaml.safe_dump(config.to_dict(), sort_keys=False))
    return _tuner(parts, root, exp_dir, verbose).fit()


def _tuner(parts: Parts, root: str, exp_dir: Path | None, verbose: int):
    """The Tuner of a new run of ``parts`` under ``root``."""
    from ray import tune
    from ray.tune.search import Searcher

    config = parts.config
    _tensorboardx_without_torch()
    return tune.Tuner(
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
            name=exp_dir.name if exp_dir is not None else config.name,
            storage_path=root,
            callbacks=_callbacks(parts, None if exp_dir is None else str(exp_dir)),
            failure_config=tune.FailureConfig(max_failures=config.max_failures),
            # Trial folders (TensorBoard files, DARTS alpha images) reach the storage path
            # from every node of a cluster, not only checkpoints.
            sync_config=tune.SyncConfig(sync_artifacts=True),
            verbose=verbose,
        ),
    )


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
    from ray.tune.search import Searcher

    from raynas.recovery import recover
    from raynas.snapshots import check_or_repair

    path = Path(path).expanduser().resolve()
    config = load_experiment_config(path)
    parts = build(config)
    # Before Tune, which would restart on a damaged state: the crash record's state, else
    # (an experiment without one) the last good copy of Tune's own files.
    limit = config.max_concurrent if isinstance(parts.searcher, Searcher) else None
    recovered = recover(path, parts.searcher, limit, _with_resources(parts))
    if recovered:
        log.warning("%s", recovered.message())
    else:
        repaired = check_or_repair(path)
        if repaired:
            log.warning("%s", repaired)
    if not tune.Tuner.can_restore(str(path)):
        raise ConfigError(
            f"{path} has no Tune experiment state to resume from (a run stopped before its "
            f"first save); start it again with: raynas run {path / CONFIG_FILE} "
            f"--storage-path {path.parent} --name {path.name}"
        )
    init_ray(address)
    _tensorboardx_without_torch()
    tuner = tune.Tuner.restore(
        str(path), trainable=_with_resources(parts), resume_unfinished=True, resume_errored=True
    )
    del verbose  # Tune keeps the RunConfig of the original run.
    return tuner.fit()
