"""A searcher that runs a given list of architectures, each once, in order.

This is the second step of search-then-evaluate: train the architecture a search found (or a
published one) from scratch, e.g. with the ``train`` trainable::

    raynas run examples/darts_cifar10.yaml --storage-path results   # the search
    raynas run examples/darts_eval.yaml --storage-path results      # its best, from scratch

Each entry of ``archs`` is one of:

- a canonical architecture string of the experiment's space (``space.to_str``), e.g. an NB201
  string ``|nor_conv_3x3~0|+|...|`` or a DARTS ``Genotype(normal=[...], ...)`` (the papers'
  text, ``range(2, 6)`` concats included, is accepted);
- the path of a JSON file written by ``raynas export`` (its ``arch``);
- the path of a raynas experiment folder: its best architecture among the finished
  (``TERMINATED``) trials, as ``raynas export`` would write it (for a ``darts`` search: the
  genotype derived by the best search).

Relative paths are resolved against the current directory when the searcher is built, which
``raynas resume`` of the evaluation experiment does again (run it from the same directory).
Every entry is resolved and checked when the experiment is built, before Ray starts: an
unknown op, a missing path, an architecture of another space or an experiment without a
finished trial is a ``ValueError`` (``raynas`` exits with one line, code 2).

Each entry is suggested once, in the order given (an architecture listed twice runs twice);
then ``suggest`` returns ``Searcher.FINISHED``. The experiment's ``num_samples`` must equal the
number of entries: the Tuner reports ``num_samples`` to the searcher when it starts, and a
mismatch is a ``ConfigError`` before any trial runs (with more samples the experiment would end
early and look unfinished; with fewer, entries would silently be left out). The seed is
ignored: there is no randomness. The position in the list (and the trials in flight) is saved
and restored with the experiment.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from raynas.searchers.base import NASSearcher
from search_spaces.base import SearchSpace

log = logging.getLogger(__name__)


class FixedSearcher(NASSearcher):
    """Suggests the configs of ``archs`` once each, in order, then ``FINISHED``.

    Args:
        space: the experiment's search space.
        archs: canonical architecture strings of ``space`` (already resolved, see
            ``resolve_arch``).
        metric: metric of the experiment (only recorded).
        mode: "max" or "min" (only recorded).
    """

    def __init__(
        self,
        space: SearchSpace,
        archs: Sequence[str],
        metric: str | None = None,
        mode: str | None = None,
    ) -> None:
        if not archs:
            raise ValueError("archs must list at least one architecture")
        self.archs = [str(a) for a in archs]
        configs = [space.encode(space.from_str(a)) for a in self.archs]
        super().__init__(space, metric=metric, mode=mode, points_to_evaluate=configs)

    def set_search_properties(
        self, metric: str | None, mode: str | None, config: dict, **spec: Any
    ) -> bool:
        num_samples = spec.get("num_samples")
        if num_samples is not None and int(num_samples) != len(self.archs):
            from raynas.errors import ConfigError

            raise ConfigError(
                f"searcher 'fixed' runs each of its {len(self.archs)} archs once, but "
                f"num_samples is {num_samples}; set num_samples: {len(self.archs)}"
            )
        return super().set_search_properties(metric, mode, config, **spec)

    def suggest(self, trial_id: str) -> dict | None:
        if not self.points_to_evaluate:
            return NASSearcher.FINISHED
        return super().suggest(trial_id)

    def _propose(self) -> dict:  # never called: suggest stops when the list is used up
        raise RuntimeError("FixedSearcher proposes nothing beyond its archs")

    def _observe(self, config: dict, score: float | None) -> None:
        pass  # nothing to learn

    def get_state(self) -> dict[str, Any]:
        return {**super().get_state(), "archs": self.archs}

    def set_state(self, state: dict[str, Any]) -> None:
        super().set_state(state)
        self.archs = list(state["archs"])


def _check_in_space(space: SearchSpace, arch: str) -> str:
    """Canonical string of ``arch`` in ``space``; ValueError if it is not an architecture."""
    genotype = space.from_str(arch)
    # decode checks every value against the space's own choices (e.g. a reduced op set).
    return space.to_str(space.decode(space.encode(genotype)))


def _from_experiment(path: Path) -> dict[str, Any]:
    import dataclasses

    from raynas import results

    summary = results.load(path)
    trials = summary.trials
    finished = trials[trials["status"] == "TERMINATED"] if len(trials) else trials
    if finished.empty:
        states = ", ".join(f"{s.lower()}: {n}" for s, n in sorted(summary.states.items()))
        raise ValueError(
            f"experiment {path} has no finished trial ({states or 'no trials'}); "
            f"finish it with `raynas resume {path}`"
        )
    return results.best(dataclasses.replace(summary, trials=finished))


def _from_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ValueError(f"cannot read {path} as a `raynas export` JSON file: {e}") from None
    if not isinstance(data, dict) or not isinstance(data.get("arch"), str):
        raise ValueError(f"{path} is not a `raynas export` JSON file (no 'arch' string)")
    return data


def resolve_arch(space: SearchSpace, entry: Any) -> str:
    """The canonical architecture string that ``entry`` of ``archs`` stands for.

    Args:
        space: the experiment's search space.
        entry: an architecture string of ``space``, or the path of a ``raynas export`` JSON
            file or of a raynas experiment folder (relative to the current directory).

    Raises:
        ValueError: ``entry`` is neither a valid architecture of ``space`` nor an existing
            file or folder, or that file or folder holds no architecture of ``space``.
    """
    if not isinstance(entry, str) or not entry.strip():
        raise ValueError(f"{entry!r} is not an architecture string or a path (expected a string)")
    try:
        return _check_in_space(space, entry)
    except ValueError as e:
        not_arch = str(e)
    path = Path(entry).expanduser().resolve()
    try:
        exists = path.exists()
    except OSError:  # e.g. an architecture string longer than a file name may be
        exists = False
    if not exists:
        where = f" ({path} not found)" if "/" in entry or entry.startswith("~") else ""
        raise ValueError(
            f"{entry!r} is neither an architecture of the {space.name} space ({not_arch}) "
            f"nor an existing file or folder{where}"
        )
    data = _from_experiment(path) if path.is_dir() else _from_json(path)
    source = data.get("space")
    if source is not None and source != space.name:
        raise ValueError(
            f"{entry!r} holds an architecture of the {source!r} space, not of {space.name!r}"
        )
    try:
        return _check_in_space(space, data["arch"])
    except ValueError as e:
        raise ValueError(
            f"{entry!r}: {data['arch']!r} is not in this {space.name} space: {e}"
        ) from None


def make_fixed(
    space: SearchSpace,
    metric: str | None,
    mode: str | None,
    seed: int | None,
    archs: Sequence[str] | None = None,
) -> FixedSearcher:
    """Run exactly the architectures ``archs`` (see the module docstring).

    Args:
        archs: architecture strings, ``raynas export`` JSON files or experiment folders.
        seed: ignored (nothing is random).

    Raises:
        ValueError: ``archs`` missing or empty, or an entry that does not resolve.
    """
    del seed
    if archs is None or isinstance(archs, str) or not isinstance(archs, Sequence) or not archs:
        raise ValueError(
            f"archs must be a non-empty list of architecture strings, `raynas export` JSON "
            f"files or experiment folders, got {archs!r}"
        )
    resolved = []
    for i, entry in enumerate(archs):
        try:
            resolved.append(resolve_arch(space, entry))
        except ValueError as e:
            raise ValueError(f"archs[{i}]: {e}") from None
    for entry, arch in zip(archs, resolved, strict=True):
        if entry != arch:
            log.info("fixed searcher: %s -> %s", entry, arch)
    return FixedSearcher(space, resolved, metric=metric, mode=mode)
