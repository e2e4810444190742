"""MnasNet-style reward shaping of the REINFORCE searcher: ``R = score * (cost / T) ** w``.

``reward_target`` is ``{"metric": "latency_ms" | "params_m" | "flops_m", "target": T,
"w": -0.07}``; the cost is read from the trial's result, or, with ``"predict": true``, computed
from the config by the space (``raynas.searchers.quantities``; options ``"latency_table"``
for mobilenetv3's predicted ``latency_ms``, ``"dataset"`` for nb201's ``params_m``/``flops_m``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from raynas.registry import is_real
from raynas.searchers import quantities

#: Cost metrics that ``reward_target`` may read from a trial result.
COST_METRICS = ("latency_ms", "params_m", "flops_m")


def check_reward_target(
    target: Mapping[str, Any] | None,
) -> tuple[dict[str, Any] | None, dict[str, Any] | None]:
    """The ``reward_target`` option checked: ``(shaping, cost options)``.

    Returns:
        ``{"metric", "target", "w"}`` (None without a target), and the quantity options
        when the cost is predicted from the config (``predict: true``), else None.

    Raises:
        ValueError: naming the first bad key or value.
    """
    if target is None:
        return None, None
    if not isinstance(target, Mapping):
        raise ValueError(f"reward_target must be a dict with metric, target, w; got {target!r}")
    valid = ("metric", "target", "w", "predict", *quantities.OPTION_KEYS)
    unknown = sorted(set(target) - set(valid))
    if unknown:
        raise ValueError(
            f"unknown reward_target key {unknown[0]!r}; valid keys: {', '.join(valid)}"
        )
    predict = target.get("predict", False)
    if not isinstance(predict, bool):
        raise ValueError(f"reward_target predict must be true or false, got {predict!r}")
    options = {k: target[k] for k in quantities.OPTION_KEYS if k in target}
    if options and not predict:
        raise ValueError(f"reward_target {', '.join(options)} only applies with predict: true")
    metric = target.get("metric")
    if metric not in COST_METRICS:
        raise ValueError(
            f"reward_target metric must be one of: {', '.join(COST_METRICS)}; got {metric!r}"
        )
    value = target.get("target")
    if not is_real(value) or not value > 0:
        raise ValueError(f"reward_target target must be a number > 0, got {value!r}")
    w = target.get("w", -0.07)
    if not is_real(w) or not -1 <= w <= 0:
        raise ValueError(f"reward_target w must be in [-1, 0], got {w!r}")
    return {"metric": metric, "target": float(value), "w": float(w)}, (
        options if predict else None
    )


def shaped(score: float, cost: float, target: Mapping[str, Any]) -> float:
    """``score`` times ``(cost / target) ** w``; a negative score (a "min" metric) is divided
    by the factor instead, so a costly architecture is still penalised."""
    factor = (cost / target["target"]) ** target["w"]
    return score * factor if score >= 0 else score / factor
