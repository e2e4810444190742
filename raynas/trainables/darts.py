"""``darts`` / ``oneshot`` trainable: one weight-sharing architecture search per trial.

Registered twice: ``oneshot`` (the family's name) and ``darts`` (its first name, kept: same
options, same metrics, same ``darts.*`` config keys). The ``method`` option picks the search:

* ``darts`` (default): DARTS / PC-DARTS, described below (``order: 1`` is DARTS-V1,
  ``order: 2`` DARTS-V2, ``pc_k > 1`` PC-DARTS).
* ``rsps``, ``gdas``, ``setn``, ``enas``: the single-path methods of ``raynas.oneshot.methods``
  (see its docstring for each algorithm). Their own options, each an error with another
  method (``METHOD_OPTIONS``): ``candidates`` (N, default 100) and ``eval_batches`` (1) for
  rsps and setn; ``tau_max`` (10) and ``tau_min`` (0.1) for gdas; ``controller_lr`` (1e-3),
  ``controller_hidden`` (32), ``controller_temperature`` (5), ``controller_tanh`` (2.5),
  ``entropy_weight`` (1e-4) and ``baseline_decay`` (0.99) for enas. ``order: 2``, ``pc_k > 1``
  and ``edge_norm`` are DARTS settings (an error with the others). They share the supernet,
  data split, optimisers (w by SGD as below; α by Adam as below for gdas and setn), the
  checkpoint, TensorBoard and derivation. Besides DARTS' metrics, each epoch reports: rsps
  and setn ``candidates``, ``candidate_best_loss``, ``candidate_best_acc``,
  ``candidate_median_loss``, ``candidate_worst_loss``, ``candidate_distinct`` (the ranking of
  the epoch's candidates on the same val batches; the best is the derived ``arch``); gdas
  ``tau`` (the epoch's temperature); enas ``controller_entropy`` (mean entropy per decision
  along the policy's argmax path, nats), ``controller_baseline`` and ``controller_reward``
  (mean reward, val batch accuracy in [0, 1], of the epoch's controller steps). Their
  ``val_loss`` / ``val_acc`` are the derived path's on the val split (BN batch statistics),
  not the mixed supernet's; α is unused (and reported at its initial value) by rsps and enas.

The search engine is ``raynas.oneshot`` (``search``: ``DartsSearch``; ``options``; ``memory``;
``board``: TensorBoard views; ``derive``); this module runs one search as a Tune trial, with
a checkpoint per epoch. Their names are importable from here too.

A trial trains the weight-sharing supernet of the experiment's space (``darts`` or ``nb201``,
see ``raynas.nn.supernet``) with DARTS' bilevel optimisation (Liu et al., ICLR 2019) on a
split of the training data: the weights w by SGD on the ``train`` split, the architecture
parameters α by Adam on the ``val`` split (``val_fraction``, half of the images by default as
in DARTS). Each iteration first updates α on a val batch, then w on a train batch:

* ``order: 1`` (first order, ξ = 0): ∇α L_val(w, α).
* ``order: 2`` (second order, one unrolled step): ∇α L_val(w', α) - ξ ∇²_{α,w} L_train(w, α)
  ∇w' L_val(w', α) with w' = w - ξ (momentum · m + ∇w L_train(w, α) + wd · w) and ξ the
  current weight learning rate; the Hessian-vector product by central finite differences
  with ε = ``fd_r`` / ||∇w' L_val|| (DARTS' ``_hessian_vector_product``).
* ``pc_k: K > 1`` with ``edge_norm`` (default on with K > 1): PC-DARTS (Xu et al., ICLR
  2020): partial channel connections with ratio 1/K and edge normalisation. PC-DARTS also
  waits ``arch_warmup_epochs`` (15 in the paper) before updating α; the default here is 0.

Defaults are the DARTS paper's: w by SGD lr 0.025, momentum 0.9, weight decay 3e-4, cosine
to 0.001, gradient clipping at 5; α by Adam lr 3e-4, betas (0.5, 0.999), weight decay 1e-3;
supernet C=16 with 8 cells (darts) or C=16, N=5 (nb201).

**Tune config.** The experiment passes the space's ``tune_space()`` as param space; a darts
trial IGNORES those architecture keys (the search happens inside the trial). It reads only
these optional keys, which override the options of the same name, so several searches can be
trials of one experiment (unknown ``darts.*`` keys are an error):

    darts.seed       int       seed of the data split, supernet init, α init and batch order
    darts.order      1 | 2     first or second order
    darts.pc_k       int >= 1  PC-DARTS channel ratio (1 = DARTS)
    darts.edge_norm  bool      PC-DARTS edge normalisation (default: pc_k > 1)

The ``sweep`` option (e.g. ``{seed: [0, 1, 2], order: [1, 2]}``) builds these keys as Tune
grid searches; they are in ``make(...).param_space``, which the experiment merges into the
param space (with Tune's random searcher: every combination is run ``num_samples`` times).

**Reported per epoch** (plus Tune's own keys): ``epoch``, ``train_loss``, ``train_acc`` (the
weight steps, train mode), ``val_loss``, ``val_acc`` (the supernet on the whole val split, eval
mode), ``arch`` (the derived genotype's canonical string), ``genotype`` (``space.to_json`` of
it, as JSON text so Tune's loggers keep it whole), ``alpha_entropy`` (mean entropy of
softmax(α) over all edges, nats; per cell type as ``alpha_entropy_normal`` and, for darts,
``alpha_entropy_reduce``), ``alpha_normal`` (and ``alpha_reduce``) the raw α as a nested list
(edges x ops, 4 decimals; an nb201 cell's α is ``alpha_normal``), ``beta_*`` with edge
normalisation, ``lr``, ``params_m`` (supernet weights), ``peak_mem_mb``, ``cost_s`` (seconds
for the epoch, evaluation included), ``seed``, ``order``, ``pc_k``; with ``nb201_table`` set
(nb201 space only) ``table_val_acc`` / ``table_test_acc`` of the derived cell in the shipped
NB201 table.

``peak_mem_mb``: on CUDA ``torch.cuda.max_memory_allocated`` over the epoch (reset at the
start). On CPU the peak resident set size of the process over the epoch: ``VmHWM`` of
``/proc/self/status``, reset at the start of the epoch by writing ``5`` to
``/proc/self/clear_refs`` (Linux >= 4.0); where that is impossible, the process lifetime peak
(``ru_maxrss``). It includes the process baseline (Python, torch, Ray, the dataset), so compare
it between trials of one machine; ``benchmarks/darts.py`` measures activation memory alone.

**Checkpoints** every epoch: supernet weights and α/β, both optimisers, the LR schedule, both
batch-order generators, torch's RNG, the epoch; a restored trial continues exactly (CPU,
fixed seed). **TensorBoard**: per epoch, softmax(α) of each cell type as a heatmap image
(rows: edges, columns: ops; colours scaled from the image's min to its max), the α table and
the genotype as text (methods that never train α, ``rsps`` and ``enas``, get the genotype
only), written into the trial's folder (``tune.get_context().get_trial_dir()``;
Tune copies it to the experiment folder with ``SyncConfig(sync_artifacts=True)``), next to
Tune's scalars, and flushed to disk before the epoch is reported, so a trial stopped right after
its report keeps its last epoch (``raynas.event_writer.summary_writer``). A non-finite loss or α
ends the trial with ``FloatingPointError``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import torch

from raynas.nn.supernet import SUPERNET_OPTIONS, check_supernet_options
from raynas.oneshot.board import AlphaBoard, alpha_heatmap, alpha_table
from raynas.oneshot.memory import PeakMemory, rss_mb
from raynas.oneshot.methods import SEARCHES, make_search
from raynas.oneshot.options import (
    CONFIG_KEYS,
    CONFIG_PREFIX,
    DartsOptions,
    SearchSettings,
    check_setting,
    sweep_space,
)
from raynas.oneshot.search import DartsSearch
from raynas.trainables.checkpoint import CHECKPOINT_FILE, report_with_state, restore_state
from search_spaces.base import SearchSpace


def make(space: SearchSpace, **options: Any) -> Callable[[dict], None]:
    """The ``darts`` trainable for ``space``; options are those of ``DartsOptions``.

    The returned function has a ``param_space`` attribute: the Tune keys of ``sweep`` (empty
    without it), to be merged into the experiment's param space.

    Raises:
        ValueError: unsupported space, unknown option or invalid value.
    """
    return make_named("darts", space, **options)


def make_named(name: str, space: SearchSpace, **options: Any) -> Callable[[dict], None]:
    """``make`` for the trainable registered as ``name`` (``darts`` or ``oneshot``: the same
    trainable; ``name`` only appears in messages)."""
    valid = [f.name for f in dataclasses.fields(DartsOptions)]
    for key in options:
        if key not in valid:
            raise ValueError(
                f"unknown option {key!r} for trainable {name!r}; valid options: {', '.join(valid)}"
            )
    if space.name not in SUPERNET_OPTIONS:
        raise ValueError(
            f"trainable {name!r} supports the search spaces {', '.join(SUPERNET_OPTIONS)}, "
            f"not {space.name!r}"
        )
    opts = DartsOptions(**options)
    build = check_supernet_options(space.name, dict(opts.build))
    for k in {opts.pc_k, *(opts.sweep or {}).get("pc_k", [])}:
        if build["C"] % k:
            raise ValueError(f"build.C ({build['C']}) must be divisible by pc_k ({k})")
    if opts.nb201_table and space.name != "nb201":
        raise ValueError("option nb201_table needs the nb201 space")

    def darts_trainable(config: dict) -> None:
        from ray import tune

        settings = SearchSettings.resolve(opts, config)
        if opts.threads:
            torch.set_num_threads(opts.threads)
        search = make_search(space, opts, settings)
        state = restore_state()
        if state is not None:
            search.load_state_dict(state)
        board = AlphaBoard(tune.get_context().get_trial_dir()) if opts.tensorboard else None
        try:
            while search.epoch < opts.epochs:
                metrics = search.step()
                if board is not None:
                    board.log(search, metrics)
                report_with_state(metrics, search.state_dict())
        finally:
            if board is not None:
                board.close()

    darts_trainable.param_space = sweep_space(opts.sweep)
    return darts_trainable


__all__ = [
    "CHECKPOINT_FILE",
    "CONFIG_KEYS",
    "CONFIG_PREFIX",
    "AlphaBoard",
    "DartsOptions",
    "DartsSearch",
    "SEARCHES",
    "PeakMemory",
    "SearchSettings",
    "alpha_heatmap",
    "alpha_table",
    "check_setting",
    "make",
    "make_named",
    "make_search",
    "rss_mb",
    "sweep_space",
]
