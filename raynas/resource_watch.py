"""Say once, clearly, when trials wait for resources that no node of the cluster has.

A trial asks for ``resources`` (``{cpu: 1, gpu: 1}``...) and Tune keeps it PENDING until a node
can place it. On a cluster with no such node (a GPU trial on CPU nodes, more CPUs per trial
than a node has) it waits forever, which is right on an autoscaling cluster that will start
such a node, and a silent hang anywhere else: Tune's own warning comes after 60 s, repeats
every 60 s and compares with the cluster's total, not with what one node has.

``ResourceWatch`` (a Tune callback) compares, every ``period_s`` while a trial is PENDING, the
trial's request with the resources of every live node (``ray.nodes()``). When no node could
ever hold it, it logs one warning naming the request, the largest node and the cluster's
total; it warns again only after the request became placeable and then unplaceable again (a
node holding such resources left). The trials stay PENDING: nothing is stopped. The period is
5 s unless the environment variable ``RAYNAS_RESOURCE_WATCH_S`` (seconds, > 0) of the driver
says otherwise.
"""

from __future__ import annotations

import logging
import math
import os
import time
from collections.abc import Mapping

from ray.tune import Callback

from raynas.errors import ConfigError

log = logging.getLogger(__name__)

#: Environment variable with the seconds between checks (default ``DEFAULT_PERIOD_S``).
PERIOD_ENV = "RAYNAS_RESOURCE_WATCH_S"
DEFAULT_PERIOD_S = 5.0

#: Ray resource names as an experiment file spells them.
_NAMES = {"CPU": "cpu", "GPU": "gpu"}


def _fmt(resources: Mapping[str, float]) -> str:
    parts = [f"{_NAMES.get(k, k)}: {v:g}" for k, v in sorted(resources.items())]
    return "{" + ", ".join(parts) + "}"


def fits(request: Mapping[str, float], node: Mapping[str, float]) -> bool:
    """Whether a node with total resources ``node`` could hold ``request``."""
    return all(node.get(k, 0.0) >= v for k, v in request.items() if v > 0)


def unplaceable_message(
    request: Mapping[str, float], nodes: list[Mapping[str, float]], waiting: int
) -> str | None:
    """The warning for ``waiting`` trials that each ask ``request`` of a cluster whose live
    nodes have ``nodes`` (total resources each); None when some node could hold one."""
    request = {k: float(v) for k, v in request.items() if v > 0}
    if any(fits(request, node) for node in nodes):
        return None
    largest = {k: max((n.get(k, 0.0) for n in nodes), default=0.0) for k in request}
    total = {k: sum(n.get(k, 0.0) for n in nodes) for k in request}
    trials = "1 trial waits" if waiting == 1 else f"{waiting} trials wait"
    return (
        f"{trials} (PENDING) for resources no node of the cluster has: each asks "
        f"{_fmt(request)}, the largest of the {len(nodes)} live nodes has {_fmt(largest)} "
        f"(cluster total {_fmt(total)}); they start when a node with enough joins (an "
        "autoscaling cluster starts one if its node types allow), else stop the run and "
        "lower `resources` in the experiment file"
    )


def _period_from_env() -> float:
    """``RAYNAS_RESOURCE_WATCH_S`` as seconds, or the default when it is unset or empty."""
    text = os.environ.get(PERIOD_ENV, "").strip()
    if not text:
        return DEFAULT_PERIOD_S
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not (math.isfinite(value) and value > 0):
        raise ConfigError(f"{PERIOD_ENV} must be a number of seconds > 0, got {text!r}")
    return value


class ResourceWatch(Callback):
    """Warns once when PENDING trials ask for resources no live node has (see module doc).

    Args:
        period_s: seconds between checks (each check asks the GCS for the node list); None:
            ``RAYNAS_RESOURCE_WATCH_S`` of the environment if set, else 5.

    Raises:
        ConfigError: ``RAYNAS_RESOURCE_WATCH_S`` is set but not a number of seconds > 0.
    """

    def __init__(self, period_s: float | None = None) -> None:
        if period_s is None:
            period_s = _period_from_env()
        if not period_s > 0:
            raise ValueError(f"period_s must be > 0, got {period_s!r}")
        self.period_s = float(period_s)
        self._next: float | None = None
        self._warned = False

    def __getstate__(self) -> dict:
        state = self.__dict__.copy()
        state.update(_next=None, _warned=False)  # a resumed run looks afresh
        return state

    def on_step_begin(self, iteration: int, trials: list, **info) -> None:
        now = time.monotonic()
        if self._next is None:  # first check one period in: let starting nodes join
            self._next = now + self.period_s
        if now < self._next:
            return
        self._next = now + self.period_s
        pending = [t for t in trials if t.status == "PENDING"]
        if not pending:
            return
        message = self.check(pending)
        if message is None:
            self._warned = False
        elif not self._warned:
            log.warning("%s", message)
            self._warned = True

    @staticmethod
    def check(pending: list) -> str | None:
        """The warning for the ``pending`` trials on the current cluster, or None."""
        import ray

        nodes = [n.get("Resources", {}) for n in ray.nodes() if n.get("Alive")]
        request = pending[0].placement_group_factory.required_resources
        return unplaceable_message(request, nodes, len(pending))
