"""Experiment files: YAML read once at the edge into a typed, frozen, validated config.

Example::

    name: nb201-optuna
    space: nb201                      # or {name: nb201, options: {C: 16, N: 5}}
    searcher: {name: optuna, options: {n_startup_trials: 10}}
    scheduler: fifo                   # fifo | asha | median (+ options)
    trainable: {name: table, options: {dataset: cifar10}}
    metric: val_acc
    mode: max
    num_samples: 100
    max_concurrent: 2
    resources: {cpu: 1, gpu: 0}
    seed: 0
    storage_path: ~/raynas_results
    max_failures: 3                   # retries of a failed trial (0: fail fast, -1: no limit)

``max_failures`` (default 3) is how often Tune starts a failed trial again, from its last
checkpoint (the ``train``, ``darts`` and ``curves`` trainables checkpoint every epoch; ``table``
and ``proxy`` trials, one result each, start over). A trial whose node is lost (a machine
goes away, a spot instance is reclaimed, the worker is killed for memory) is a failed trial:
with 0 the first lost node ends it (and Tune 2.60 saves a trial whose worker died as still
running, so ``raynas run`` ends "interrupted", exit 130). 3 rides out a few lost nodes, while
a trial that fails every time (a bug, a diverged loss: ``FloatingPointError``) is given up
after 3 more tries, one epoch each for checkpointed trainables. ``max_failures: 0`` fails
fast (while developing a trainable), -1 retries without limit.

``searcher: bohb`` without a ``scheduler`` key gets ``scheduler: hyperband_for_bohb`` (the
scheduler BOHB needs; ``raynas.preflight.build`` refuses BOHB with any other one).

Every problem is reported as a ``ConfigError`` whose message is one line naming the key.
Component options are checked by building the components (without Ray) in
``raynas.experiment.build``.
"""

from __future__ import annotations

import re
from collections.abc import Hashable, Iterable
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from raynas.errors import ConfigError as ConfigError


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Component(_Strict):
    """A registry entry and its options; a bare string means ``{name: <string>}``."""

    name: str
    options: dict[str, Any] = Field(default_factory=dict)

    @model_validator(mode="before")
    @classmethod
    def _from_string(cls, value: Any) -> Any:
        if isinstance(value, str):
            return {"name": value}
        return value


class Resources(_Strict):
    """Resources of one trial."""

    cpu: float = Field(default=1.0, gt=0)
    gpu: float = Field(default=0.0, ge=0)


def _registry_names(kind: str) -> list[str]:
    if kind == "space":
        import search_spaces

        return search_spaces.names()
    if kind == "searcher":
        from raynas import searchers

        return searchers.names()
    if kind == "scheduler":
        import schedulers

        return schedulers.names()
    from raynas import trainables

    return trainables.names()


_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]*$")


class ExperimentConfig(_Strict):
    """A validated experiment."""

    name: str | None = None
    space: Component
    searcher: Component = Component(name="random")
    scheduler: Component = Component(name="fifo")
    trainable: Component = Component(name="table")
    metric: str = "val_acc"
    mode: Literal["max", "min"] = "max"
    num_samples: int = Field(default=20, ge=1)
    max_concurrent: int | None = Field(default=None, ge=1)
    resources: Resources = Resources()
    seed: int | None = 0
    storage_path: str = "~/raynas_results"
    time_budget_s: float | None = Field(default=None, gt=0)
    max_failures: int = Field(default=3, ge=-1)

    @model_validator(mode="before")
    @classmethod
    def _bohb_scheduler(cls, data: Any) -> Any:
        searcher = data.get("searcher") if isinstance(data, dict) else None
        name = searcher.get("name") if isinstance(searcher, dict) else searcher
        if name == "bohb" and "scheduler" not in data:
            return {**data, "scheduler": "hyperband_for_bohb"}
        return data

    @field_validator("space", "searcher", "scheduler", "trainable")
    @classmethod
    def _known_name(cls, value: Component, info) -> Component:
        kind = info.field_name
        valid = _registry_names(kind)
        if value.name not in valid:
            raise ValueError(f"unknown {kind} {value.name!r}; choose one of: {', '.join(valid)}")
        return value

    @field_validator("name")
    @classmethod
    def _safe_name(cls, value: str | None) -> str | None:
        if value is not None and not _NAME_RE.match(value):
            raise ValueError(f"name must be letters, digits, '_', '-' or '.', got {value!r}")
        return value

    @field_validator("metric")
    @classmethod
    def _metric_not_empty(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("metric must not be empty")
        return value

    def experiment_dir(self) -> Path:
        """Local folder of the experiment (storage_path/name)."""
        return Path(self.storage_path).expanduser() / str(self.name)

    def to_dict(self) -> dict[str, Any]:
        return self.model_dump(mode="json")


def _format_error(err: ValidationError, source: str) -> str:
    """One line per problem, the first problem first; the CLI prints them joined."""
    lines = []
    for e in err.errors():
        loc = ".".join(str(p) for p in e["loc"] if p not in ("function-after",))
        if e["type"] == "extra_forbidden":
            msg = f"unknown key {loc!r}"
            parent = loc.rpartition(".")[0]
            fields = _fields_at(parent)
            if fields:
                msg += f"; valid keys: {', '.join(fields)}"
        elif e["type"] == "missing":
            msg = f"missing required key {loc!r}"
        else:
            text = e["msg"].removeprefix("Value error, ")
            got = e.get("input")
            msg = f"{loc}: {text}"
            if e["type"] not in ("value_error",) and not isinstance(got, dict | list):
                msg += f" (got {got!r})"
        lines.append(msg)
    return f"{source}: " + "; ".join(lines)


def _fields_at(parent: str) -> list[str]:
    model: Any = ExperimentConfig
    for part in filter(None, parent.split(".")):
        field = model.model_fields.get(part)
        if field is None:
            return []
        model = field.annotation
    return list(getattr(model, "model_fields", {}))


def parse_override(text: str) -> tuple[list[str], Any]:
    """``key.sub=value`` -> (["key", "sub"], value parsed as a YAML scalar)."""
    key, sep, raw = text.partition("=")
    if not sep or not key.strip():
        raise ConfigError(f"--set expects key=value, got {text!r}")
    try:
        value = yaml.safe_load(raw) if raw.strip() else ""
    except yaml.YAMLError as e:
        raise ConfigError(f"--set {key}: cannot parse value {raw!r}: {e}") from None
    return key.strip().split("."), value


#: The keys of an experiment that name a registry entry (a string or {name, options}).
COMPONENTS = ("space", "searcher", "scheduler", "trainable")


def apply_overrides(data: dict[str, Any], overrides: Iterable[str]) -> dict[str, Any]:
    """Apply ``--set`` overrides to the raw mapping (before validation)."""
    for text in overrides:
        path, value = parse_override(text)
        node = data
        for part in path[:-1]:
            child = node.get(part)
            if isinstance(child, str) and part in COMPONENTS:
                child = {"name": child}
            if child is None and node is data and part in COMPONENTS:
                # a component the file leaves at its default: --set searcher.options.seed=3
                default = ExperimentConfig.model_fields[part].default
                child = {} if not isinstance(default, Component) else {"name": default.name}
            if child is None:
                child = {}
            if not isinstance(child, dict):
                raise ConfigError(f"--set {'.'.join(path)}: {part!r} is not a mapping")
            node[part] = child
            node = child
        node[path[-1]] = value
    return data


def from_mapping(data: Any, source: str = "<config>") -> ExperimentConfig:
    """Validate a raw mapping into an ``ExperimentConfig`` (ConfigError on any problem)."""
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: an experiment file must be a YAML mapping, got {data!r:.60}")
    try:
        return ExperimentConfig.model_validate(data)
    except ValidationError as e:
        raise ConfigError(_format_error(e, source)) from None


def load(path: str | Path, overrides: Iterable[str] = ()) -> ExperimentConfig:
    """Read and validate an experiment file; ``name`` defaults to the file's stem.

    Raises:
        ConfigError: missing file, invalid YAML, or invalid content.
    """
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"experiment file not found: {path}")
    data = read_yaml(path)
    if data is None:
        raise ConfigError(f"{path}: the experiment file is empty")
    if isinstance(data, dict):
        data = apply_overrides(data, overrides)
        if data.get("name") is None:  # absent or `name:` left empty
            data["name"] = path.stem
    return from_mapping(data, str(path))


def read_yaml(path: Path) -> Any:
    """A YAML file's content (ConfigError naming the file if it cannot be read or parsed)."""
    try:
        data = path.read_bytes()
    except OSError as e:
        raise ConfigError(f"{path}: cannot read: {e.strerror or e}") from None
    return parse_yaml(data, str(path))


def parse_yaml(data: bytes, source: str) -> Any:
    """The content of a YAML document (ConfigError naming ``source`` if it cannot be parsed)."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise ConfigError(f"{source}: not UTF-8 text ({e.reason} at byte {e.start})") from None
    try:
        return yaml.load(text, Loader=_UniqueKeyLoader)  # noqa: S506 (a SafeLoader)
    except yaml.YAMLError as e:
        raise ConfigError(f"{source}: invalid YAML: {' '.join(str(e).split())}") from None


class _UniqueKeyLoader(yaml.SafeLoader):
    """PyYAML's safe loader, except that a key given twice in one mapping is an error (plain
    YAML keeps the last, so a second ``num_samples:`` further down silently wins)."""

    def construct_mapping(self, node, deep=False):
        seen = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=True)
            if isinstance(key, Hashable) and key in seen:
                raise yaml.constructor.ConstructorError(
                    None, None, f"duplicate key {key!r}", key_node.start_mark
                )
            seen.add(key)
        return super().construct_mapping(node, deep=deep)
