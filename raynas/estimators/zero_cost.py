"""Zero-cost proxies: score an untrained network from one minibatch, higher = predicted better.

``compute(name, model, inputs, targets)`` returns one float for the proxy ``name``:

- ``naswot`` (Mellor et al., ICML 2021, "NAS without training", v2): the binary code of every
  ``nn.ReLU``/``nn.ReLU6`` unit (1 where its input is > 0) over the batch, concatenated per
  sample; ``K[i, j]`` = number of units where samples i and j agree (= N_A - Hamming
  distance); score = ``log|det K|`` (``slogdet``). ``-inf`` when K is singular, e.g. two
  samples with the same code or a network whose cells carry nothing. The reference hooks
  every module whose class name contains "ReLU", which also double-counts NB201's
  ``ReLUConvBN`` blocks; we hook the activation modules only, as the paper defines it.
- ``synflow`` (Tanaka et al., NeurIPS 2020, as in zero-cost-nas): on a copy of the network
  with every BatchNorm replaced by the identity (the reference's ``bn=False`` copy), all
  parameters and buffers made non-negative, float64; R = sum of the outputs for one all-ones
  input of the batch's image shape (batch size 1, as the reference; without BN the sum over a
  batch of identical rows is only a constant factor); score = sum over conv/linear weights of
  ``|theta * dR/dtheta|``.
- ``snip`` (Lee et al., ICLR 2019): sum over conv/linear weights of ``|w * dL/dw|``, L the
  cross-entropy on the batch, network in training mode (batch BN statistics), as the
  reference's weight-mask gradient.
- ``grad_norm``: sum over conv/linear weights of the L2 norm of ``dL/dw`` (same L).
- ``jacov`` (Mellor et al. v1, as in zero-cost-nas ``jacob_cov``): per-sample input
  gradients of the summed outputs (training mode), their correlation matrix C over the
  batch, eigenvalues v of C; score = ``-sum(log(v + 1e-5) + 1 / (v + 1e-5))``. ``nan`` when
  the output does not depend on the input (C undefined), as the reference.
- ``params``: number of parameters (an auxiliary head, if any, left out).
- ``flops``: multiply-accumulates of one forward of a single input (eval mode), from
  ``torch.utils.flop_counter.FlopCounterMode`` (FLOPs // 2).

The caller's model is left as it was: synflow, which changes weights, works on a deep copy;
the other proxies run the model itself and put back its buffers (BN running statistics),
``requires_grad`` flags and train/eval modes afterwards, never writing ``.grad``. Randomness
(e.g. dropout) is drawn from a forked RNG seeded with 0, so a proxy is a deterministic
function of the weights and the batch, and the global RNG is left as it was.

Non-finite results are returned as they are, never raised: ``-inf`` (naswot, singular
kernel) and ``nan`` (jacov, undefined correlation) mark degenerate architectures, which are
common in cell spaces (all paths through a cell are ``none``). Callers that rank must decide
where they go; the ``proxy`` trainable reports ``nan`` as ``-inf`` (the worst) and names the
raw values in its ``nonfinite`` metric.
"""

from __future__ import annotations

import contextlib
import copy
import math
from collections.abc import Callable, Iterator

import torch
import torch.nn.functional as F
from torch import nn

from raynas.nn.measure import count_macs, count_params

_RELUS = (nn.ReLU, nn.ReLU6)
_WEIGHTED = (nn.modules.conv._ConvNd, nn.Linear)
JACOV_EPS = 1e-5


def _logits(out) -> torch.Tensor:
    """The main output of a network that may also return auxiliary logits."""
    return out[0] if isinstance(out, tuple | list) else out


@contextlib.contextmanager
def _borrowed(model: nn.Module, train: bool = True) -> Iterator[nn.Module]:
    """``model`` in the given mode with every parameter trainable; on exit its buffers (BN
    running statistics), ``requires_grad`` flags and per-module modes are put back.

    Cheaper than a deep copy (which costs ~50 ms on an NB201 network) for the proxies that
    only run forward/backward passes; gradients are taken with ``torch.autograd.grad`` so the
    ``.grad`` fields are never written.
    """
    buffers = [(b, b.detach().clone()) for b in model.buffers()]
    modes = [(m, m.training) for m in model.modules()]
    flags = [(p, p.requires_grad) for p in model.parameters()]
    drop_path = _drop_path_off(model)
    try:
        model.train(train)
        for p, _ in flags:
            p.requires_grad_(True)
        yield model
    finally:
        with torch.no_grad():
            for b, saved in buffers:
                b.copy_(saved)
        for m, training in modes:
            m.training = training
        for p, flag in flags:
            p.requires_grad_(flag)
        for m, name, value in drop_path:
            setattr(m, name, value)


def _drop_path_off(model: nn.Module) -> list[tuple[nn.Module, str, object]]:
    """Switch off drop-path (a DARTS network's ``drop_path_prob``, which zeroes paths at
    random in training), so a proxy scores the network that is evaluated; returns
    ``(module, "drop_path_prob", old value)`` to put back. The auxiliary head is left to run:
    the proxies use the main logits only, and NASWOT skips its ReLUs (``_scored_relus``)."""
    saved = []
    for m in model.modules():
        if isinstance(getattr(m, "drop_path_prob", None), int | float) and m.drop_path_prob:
            saved.append((m, "drop_path_prob", m.drop_path_prob))
            m.drop_path_prob = 0.0
    return saved


def _scored_relus(model: nn.Module) -> list[nn.Module]:
    """The ReLUs NASWOT codes: not those of an auxiliary head, which only training has."""
    return [
        m
        for name, m in model.named_modules()
        if isinstance(m, _RELUS) and "auxiliary_head" not in name.split(".")
    ]


def _weights(net: nn.Module) -> list[torch.Tensor]:
    """Weights of the conv and linear layers (the layers the reference measures)."""
    return [m.weight for m in net.modules() if isinstance(m, _WEIGHTED)]


def _loss_grads(model: nn.Module, inputs: torch.Tensor, targets: torch.Tensor):
    """Conv/linear weights of a training-mode copy and the gradients of the CE loss."""
    with _borrowed(model) as net:
        weights = _weights(net)
        if not weights:
            raise ValueError("the model has no conv or linear layers to score")
        loss = F.cross_entropy(_logits(net(inputs)), targets)
        grads = torch.autograd.grad(loss, weights, allow_unused=True)
    return [w.detach() for w in weights], grads


def _naswot(model: nn.Module, inputs: torch.Tensor, targets: torch.Tensor) -> float:
    n = inputs.shape[0]
    kernel = torch.zeros(n, n, dtype=torch.float64, device=inputs.device)
    hooked = [0]

    def hook(module, args, output) -> None:
        # A ReLU's output is > 0 exactly where its input is (also for inplace ReLUs).
        signs = (output.detach().reshape(n, -1) > 0).to(torch.float32) * 2 - 1
        units = signs.shape[1]
        # Agreements = (units + <s_i, s_j>) / 2 for +-1 codes; exact in float32 below 2**24.
        dtype = torch.float32 if units < 2**24 else torch.float64
        signs = signs.to(dtype)
        kernel.add_(((signs @ signs.T).double() + units) / 2)
        hooked[0] += 1

    with _borrowed(model) as net:
        handles = [m.register_forward_hook(hook) for m in _scored_relus(net)]
        try:
            with torch.no_grad():
                net(inputs)
        finally:
            for h in handles:
                h.remove()
    if not hooked[0]:
        raise ValueError("naswot needs nn.ReLU activations, and none ran in the model")
    return float(torch.linalg.slogdet(kernel).logabsdet)


def _remove_batchnorm(module: nn.Module) -> None:
    for name, child in module.named_children():
        if isinstance(child, nn.modules.batchnorm._BatchNorm):
            setattr(module, name, nn.Identity())
        else:
            _remove_batchnorm(child)


def _synflow(model: nn.Module, inputs: torch.Tensor, targets: torch.Tensor) -> float:
    net = copy.deepcopy(model).train()  # weights are changed: work on a copy
    _drop_path_off(net)
    _remove_batchnorm(net)
    for p in net.parameters():
        p.grad = None
        p.requires_grad_(True)
    dtype = torch.float32 if inputs.device.type == "mps" else torch.float64
    net.to(dtype)
    with torch.no_grad():
        for value in net.state_dict().values():
            if value.is_floating_point():
                value.abs_()
    weights = _weights(net)
    if not weights:
        raise ValueError("the model has no conv or linear layers to score")
    ones = torch.ones((1, *inputs.shape[1:]), dtype=dtype, device=inputs.device)
    output = _logits(net(ones)).sum()
    if not output.requires_grad:
        return 0.0
    grads = torch.autograd.grad(output, weights, allow_unused=True)
    with torch.no_grad():
        return math.fsum(
            float((w * g).abs().sum())
            for w, g in zip(weights, grads, strict=True)
            if g is not None
        )


def _snip(model: nn.Module, inputs: torch.Tensor, targets: torch.Tensor) -> float:
    weights, grads = _loss_grads(model, inputs, targets)
    with torch.no_grad():
        return math.fsum(
            float((w * g).abs().sum())
            for w, g in zip(weights, grads, strict=True)
            if g is not None
        )


def _grad_norm(model: nn.Module, inputs: torch.Tensor, targets: torch.Tensor) -> float:
    _, grads = _loss_grads(model, inputs, targets)
    return math.fsum(float(g.norm()) for g in grads if g is not None)


def _jacov(model: nn.Module, inputs: torch.Tensor, targets: torch.Tensor) -> float:
    x = inputs.detach().clone().requires_grad_(True)
    with _borrowed(model) as net:
        output = _logits(net(x))
        if not output.requires_grad:
            return math.nan  # the output ignores the input: no Jacobian to correlate
        (jacobian,) = torch.autograd.grad(output.sum(), x, allow_unused=True)
    if jacobian is None:
        return math.nan
    jacobian = jacobian.reshape(len(x), -1).double()
    corr = torch.corrcoef(jacobian)
    if not torch.isfinite(corr).all():
        return math.nan  # a sample with a constant (e.g. all-zero) Jacobian
    eig = torch.linalg.eigvalsh(corr)
    return float(-(torch.log(eig + JACOV_EPS) + 1.0 / (eig + JACOV_EPS)).sum())


def _params(model: nn.Module, inputs: torch.Tensor, targets: torch.Tensor) -> float:
    return float(count_params(model))


def _flops(model: nn.Module, inputs: torch.Tensor, targets: torch.Tensor) -> float:
    return float(count_macs(model, tuple(inputs.shape[1:])))


_PROXIES: dict[str, Callable[[nn.Module, torch.Tensor, torch.Tensor], float]] = {
    "naswot": _naswot,
    "synflow": _synflow,
    "snip": _snip,
    "grad_norm": _grad_norm,
    "jacov": _jacov,
    "params": _params,
    "flops": _flops,
}
#: Proxies that compare samples of the batch with each other.
_NEEDS_PAIRS = ("naswot", "jacov")


def names() -> list[str]:
    """Names of the zero-cost proxies, sorted."""
    return sorted(_PROXIES)


def check_name(name: str) -> str:
    """``name`` if it is a proxy; ValueError listing the valid names otherwise."""
    if name not in _PROXIES:
        raise ValueError(f"unknown zero-cost proxy {name!r}; choose one of: {', '.join(names())}")
    return name


def compute(name: str, model: nn.Module, inputs: torch.Tensor, targets: torch.Tensor) -> float:
    """Score ``model`` with the proxy ``name`` on one batch; higher = predicted better.

    Args:
        name: one of ``names()``.
        model: an (untrained) network mapping ``inputs`` to class logits; it may return
            ``(logits, aux_logits)``. It is not modified.
        inputs: one batch of normalised inputs, ``(N, C, H, W)``, on the model's device.
        targets: int64 class labels of the batch, ``(N,)``.

    Returns:
        The score as a float. Degenerate networks give ``-inf`` (naswot) or ``nan`` (jacov),
        see the module docstring.

    Raises:
        ValueError: unknown proxy, a batch too small for it, mismatched targets, or a model
            without the layers the proxy reads.
    """
    check_name(name)
    if not isinstance(inputs, torch.Tensor) or inputs.dim() < 2:
        raise ValueError(f"inputs must be a batched tensor, got {type(inputs).__name__}")
    if name in _NEEDS_PAIRS and inputs.shape[0] < 2:
        raise ValueError(f"{name} needs a batch of >= 2 inputs, got {inputs.shape[0]}")
    if targets.shape[:1] != inputs.shape[:1]:
        raise ValueError(
            f"targets must hold one label per input: {tuple(targets.shape)} for "
            f"{tuple(inputs.shape)} inputs"
        )
    devices = [inputs.device] if inputs.device.type == "cuda" else []
    with torch.random.fork_rng(devices=devices):
        torch.manual_seed(0)
        return float(_PROXIES[name](model, inputs, targets))
