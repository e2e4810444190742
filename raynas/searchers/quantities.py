"""Quantities a search space computes from a config without training the network.

Searchers use them as the cost side of a search: bounds in evolution's ``constraint`` and the
predicted cost of REINFORCE's MnasNet-style ``reward_target``. ``make(space, name, options)``
returns a picklable callable ``config -> float``.

- nb201 ``params_m``: parameters (millions) of the network with the space's C and N, as
  ``raynas.benchmarks.nb201.params_and_macs`` counts them;
- nb201 ``flops_m``: multiply-accumulates (millions) of one input, same counter;
- mobilenetv3 ``latency_ms``: end-to-end latency (ms) predicted by the per-device
  ``raynas.hardware.LatencyTable``, without building the network.

Options (entries of the same mapping as the bounds, see ``OPTION_KEYS``):

- ``dataset`` (nb201; cifar10 | cifar100 | imagenet16-120, default cifar10): sets the classes
  and the input resolution of the counted network, as the table trainable does.
- ``latency_table`` (mobilenetv3): options of ``LatencyTable.build`` (``device``,
  ``batch_size``, ``threads``, ``resolution``, ``width_mult``, ``num_classes``,
  ``cache_dir``, ``clock``, ``rebuild``, and the measuring effort: ``probes``, ``warmup``,
  ``repeats``, ``rounds``, ``calibration_subnets``, ``calibration_repeats``). Defaults:
  the space's ``resolution`` and ``width_mult``, device ``cpu``, batch 1, **1 thread**
  (trials usually run with the train trainable's ``threads: 1``), 10 classes, cache folder
  ``$RAYNAS_LATENCY_CACHE`` or ``~/.cache/raynas/latency``. For predictions to match what a
  trial measures (the train trainable's ``latency: true``), these must agree with the trial:
  same device, threads, batch 1, input size = the dataset's image size, classes.

The latency table is measured the first time a prediction is asked for, in the process that
asks (the Tune driver, where the searcher runs), and cached on disk per device key
(``LatencyTable.build``), so later experiments on the same machine read it in milliseconds.
The table is then kept inside the quantity, so a pickled searcher keeps predicting with the
same table (a searcher rebuilt and restored from its saved state, as ``raynas resume`` does,
reads the cache file again: keep it, or pass ``rebuild``). It predicts the latency of the
machine it was measured on: on a cluster, build it on (or copy it from) a node of the kind the
trials run on (``device_name``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

#: Entries of a constraint / reward_target mapping that are options, not quantities; the
#: space each applies to.
OPTION_KEYS = {"dataset": "nb201", "latency_table": "mobilenetv3"}


class NB201Count:
    """``params_m`` or ``flops_m`` of an nb201 config (picklable callable).

    Args:
        space: an ``NB201Space`` with integer C and N.
        quantity: ``params_m`` or ``flops_m``.
        dataset: NB201 dataset whose classes and resolution the network uses.
    """

    def __init__(self, space: Any, quantity: str, dataset: str = "cifar10") -> None:
        from raynas.benchmarks.nb201 import check_dataset

        check_dataset(dataset)
        if not isinstance(space.N, int):
            raise ValueError(f"nb201 quantities need an integer N, got N={space.N!r}")
        self.space = space
        self.quantity = quantity
        self.dataset = dataset

    def __call__(self, config: Mapping[str, Any]) -> float:
        from raynas.benchmarks import nb201

        info = nb201.DATASET_INFO[self.dataset]
        params, macs = nb201.params_and_macs(
            self.space.decode(config).ops,
            C=self.space.C,
            N=self.space.N,
            classes=info["classes"],
            resolution=info["resolution"],
        )
        return (params if self.quantity == "params_m" else macs) / 1e6

    def __repr__(self) -> str:
        return f"NB201Count({self.quantity!r}, dataset={self.dataset!r})"


class PredictedLatency:
    """Predicted latency (ms) of a mobilenetv3 config from the per-device lookup table.

    Args:
        space: a ``MobileNetV3Space`` (its ``resolution``/``width_mult`` are the defaults).
        options: ``LatencyTable.build`` options (see the module docstring); validated now,
            the table is built (or read from the cache) on the first prediction.
    """

    def __init__(self, space: Any, options: Mapping[str, Any] | None = None) -> None:
        from raynas.hardware import check_build_options

        self.space = space
        self.options = {
            "device": "cpu",
            "threads": 1,
            "batch_size": 1,
            "resolution": space.resolution,
            "width_mult": space.width_mult,
            **check_build_options(options),
        }
        self._table: Any = None

    @property
    def table(self) -> Any:
        """The ``LatencyTable`` (measured or read from the cache on first access)."""
        if self._table is None:
            from raynas.hardware import LatencyTable

            self._table = LatencyTable.build(self.space, **self.options)
        return self._table

    def __call__(self, config: Mapping[str, Any]) -> float:
        return float(self.table.predict(self.space.decode(config)))

    def __repr__(self) -> str:
        return f"PredictedLatency({self.options!r})"


#: space name -> quantity -> (factory(space, options) -> callable, options it reads)
_QUANTITIES: dict[str, dict[str, tuple[Callable[..., Any], tuple[str, ...]]]] = {
    "nb201": {
        "params_m": (lambda s, o: NB201Count(s, "params_m", **o), ("dataset",)),
        "flops_m": (lambda s, o: NB201Count(s, "flops_m", **o), ("dataset",)),
    },
    "mobilenetv3": {
        "latency_ms": (
            lambda s, o: PredictedLatency(s, o.get("latency_table")),
            ("latency_table",),
        ),
    },
}


def spaces() -> list[str]:
    """Names of the spaces that compute quantities, sorted."""
    return sorted(_QUANTITIES)


def names(space_name: str | None) -> list[str]:
    """Quantities of the space called ``space_name`` (empty for other spaces), sorted."""
    return sorted(_QUANTITIES.get(space_name or "", {}))


def split_options(space: Any, spec: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """Split a mapping into (quantity entries, option entries) (see ``OPTION_KEYS``).

    Raises:
        ValueError: an option for another space.
    """
    name = getattr(space, "name", None)
    entries, options = {}, {}
    for key, value in spec.items():
        if key in OPTION_KEYS:
            if OPTION_KEYS[key] != name:
                raise ValueError(
                    f"option {key!r} applies to the {OPTION_KEYS[key]} space, not {name!r}"
                )
            options[key] = value
        else:
            entries[key] = value
    return entries, options


def make(space: Any, quantity: str, options: Mapping[str, Any] | None = None) -> Any:
    """The callable ``config -> float`` computing ``quantity`` for ``space``.

    Args:
        space: a raynas search space.
        quantity: a name from ``names(space.name)``.
        options: ``dataset`` (nb201) / ``latency_table`` (mobilenetv3) options.

    Raises:
        ValueError: a space without quantities, an unknown quantity (valid ones listed) or a
            bad option.
    """
    name = getattr(space, "name", None)
    known = _QUANTITIES.get(name or "")
    if space is None or not known:
        raise ValueError(
            f"quantities need a search space that computes them ({', '.join(spaces())}), "
            f"got {name!r}"
        )
    if quantity not in known:
        raise ValueError(
            f"unknown quantity {quantity!r} for space {name!r}; choose from: "
            f"{', '.join(sorted(known))}"
        )
    factory, reads = known[quantity]
    return factory(space, {k: v for k, v in (options or {}).items() if k in reads})
