"""Zero-cost proxies: formulas against direct computations, orderings, determinism, no side
effects on the caller's model."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch import nn

import search_spaces
from raynas.estimators import zero_cost


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    """One torch thread: tiny networks gain nothing from more, and a busy 2-core machine
    makes oversubscribed threads spin for seconds."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _uniform(op: str) -> str:
    return f"|{op}~0|+|{op}~0|{op}~1|+|{op}~0|{op}~1|{op}~2|"


CONVS = _uniform("nor_conv_3x3")
ONE_BY_ONE = _uniform("nor_conv_1x1")
DEAD = _uniform("none")
MIXED = "|nor_conv_3x3~0|+|skip_connect~0|nor_conv_1x1~1|+|avg_pool_3x3~0|none~1|nor_conv_3x3~2|"


def _batch(n: int = 8, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    return torch.randn(n, 3, 8, 8, generator=gen), torch.randint(0, 10, (n,), generator=gen)


def _nb201(arch: str, seed: int = 0) -> nn.Module:
    space = search_spaces.get("nb201")
    torch.manual_seed(seed)
    return space.build(space.from_str(arch), C=4, N=1)


@pytest.mark.parametrize("name", zero_cost.names())
def test_proxy_is_finite_and_deterministic(name):
    x, y = _batch()
    first = zero_cost.compute(name, _nb201(MIXED), x, y)
    second = zero_cost.compute(name, _nb201(MIXED), x, y)
    assert math.isfinite(first)
    assert first == second


@pytest.mark.parametrize("name", zero_cost.names())
def test_proxy_leaves_model_and_global_rng_untouched(name):
    model = _nb201(MIXED)
    model.eval()
    model.stem[0].weight.requires_grad_(False)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    rng = torch.get_rng_state()
    x, y = _batch()
    zero_cost.compute(name, model, x, y)
    after = model.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)
    assert not any(m.training for m in model.modules())
    assert not model.stem[0].weight.requires_grad
    assert all(p.grad is None for p in model.parameters())
    assert torch.equal(torch.get_rng_state(), rng)


@pytest.mark.parametrize("name", ["naswot", "synflow", "snip", "grad_norm"])
def test_dead_cell_scores_below_conv_cell(name):
    x, y = _batch()
    dead = zero_cost.compute(name, _nb201(DEAD), x, y)
    convs = zero_cost.compute(name, _nb201(CONVS), x, y)
    assert dead < convs


def test_dead_cell_is_degenerate_for_naswot_and_jacov():
    x, y = _batch()
    assert zero_cost.compute("naswot", _nb201(DEAD), x, y) == -math.inf
    assert math.isnan(zero_cost.compute("jacov", _nb201(DEAD), x, y))


@pytest.mark.parametrize("name", ["params", "flops"])
def test_cost_proxies_order_by_kernel_size(name):
    x, y = _batch()
    scores = [zero_cost.compute(name, _nb201(a), x, y) for a in (DEAD, ONE_BY_ONE, CONVS)]
    assert scores[0] < scores[1] < scores[2]


def test_params_and_flops_of_a_linear_layer():
    model = nn.Sequential(nn.Flatten(), nn.Linear(12, 5))
    x, y = torch.randn(4, 3, 2, 2), torch.zeros(4, dtype=torch.long)
    assert zero_cost.compute("params", model, x, y) == 12 * 5 + 5
    assert zero_cost.compute("flops", model, x, y) == 12 * 5


def test_naswot_matches_hamming_kernel():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(12, 7), nn.ReLU(), nn.Linear(7, 6), nn.ReLU())
    x = torch.randn(5, 3, 2, 2)
    h1 = torch.relu(model[1](model[0](x)))
    h2 = torch.relu(model[3](h1))
    codes = torch.cat([h1 > 0, h2 > 0], dim=1).numpy().astype(int)
    hamming = (codes[:, None, :] != codes[None, :, :]).sum(-1)
    kernel = codes.shape[1] - hamming
    expected = np.linalg.slogdet(kernel.astype(float))[1]
    got = zero_cost.compute("naswot", model, x, torch.zeros(5, dtype=torch.long))
    assert got == pytest.approx(expected, rel=1e-9)


def test_synflow_of_a_linear_chain_is_layers_times_output():
    # Without nonlinearity the output R = 1^T |W2| |W1| 1, and each layer's sum of
    # |theta * dR/dtheta| equals R (Euler's theorem), so synflow = 2 R. BN is removed first.
    torch.manual_seed(0)
    model = nn.Sequential(
        nn.Flatten(), nn.Linear(4, 3, bias=False), nn.BatchNorm1d(3), nn.Linear(3, 2, bias=False)
    )
    x = torch.randn(6, 1, 2, 2)
    w1, w2 = model[1].weight.detach().double().abs(), model[3].weight.detach().double().abs()
    r = float((w2 @ w1).sum())
    got = zero_cost.compute("synflow", model, x, torch.zeros(6, dtype=torch.long))
    assert got == pytest.approx(2 * r, rel=1e-12)


def test_snip_and_grad_norm_match_direct_gradients():
    model = _nb201(MIXED)
    x, y = _batch()
    reference = _nb201(MIXED).train()
    nn.functional.cross_entropy(reference(x), y).backward()
    layers = [m for m in reference.modules() if isinstance(m, nn.Conv2d | nn.Linear)]
    snip = sum(float((m.weight * m.weight.grad).abs().sum().detach()) for m in layers)
    norm = sum(float(m.weight.grad.norm()) for m in layers)
    assert zero_cost.compute("snip", model, x, y) == pytest.approx(snip, rel=1e-5)
    assert zero_cost.compute("grad_norm", model, x, y) == pytest.approx(norm, rel=1e-5)


def test_jacov_matches_reference_formula():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(12, 16), nn.ReLU(), nn.Linear(16, 3))
    x = torch.randn(6, 3, 2, 2)
    rows = []
    for sample in x:  # no BN: each sample's input gradient is independent of the others
        s = sample[None].clone().requires_grad_(True)
        model(s).sum().backward()
        rows.append(s.grad.reshape(-1).numpy().astype(float))
    eig = np.linalg.eig(np.corrcoef(np.stack(rows)))[0].real
    expected = -np.sum(np.log(eig + 1e-5) + 1.0 / (eig + 1e-5))
    got = zero_cost.compute("jacov", model, x, torch.zeros(6, dtype=torch.long))
    assert got == pytest.approx(expected, rel=1e-6)


def test_auxiliary_logits_are_ignored():
    class WithAux(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.body = nn.Sequential(nn.Flatten(), nn.Linear(12, 8), nn.ReLU())
            self.head = nn.Linear(8, 3)
            self.auxiliary_head = nn.Linear(8, 3)

        def forward(self, x):
            h = self.body(x)
            return self.head(h), self.auxiliary_head(h)

    x, y = torch.randn(4, 3, 2, 2), torch.tensor([0, 1, 2, 0])
    for name in zero_cost.names():
        assert not math.isnan(zero_cost.compute(name, WithAux(), x, y))
    assert zero_cost.compute("params", WithAux(), x, y) == 12 * 8 + 8 + 8 * 3 + 3


def test_unknown_proxy_lists_names():
    x, y = _batch()
    with pytest.raises(ValueError, match="unknown zero-cost proxy 'nasowt'; choose one of: flops"):
        zero_cost.compute("nasowt", _nb201(MIXED), x, y)


def test_pairwise_proxies_need_two_inputs():
    x, y = _batch(n=1)
    with pytest.raises(ValueError, match="naswot needs a batch of >= 2"):
        zero_cost.compute("naswot", _nb201(MIXED), x, y)


def test_naswot_needs_relus():
    model = nn.Sequential(nn.Flatten(), nn.Linear(192, 3))
    x, y = _batch()
    with pytest.raises(ValueError, match="naswot needs nn.ReLU"):
        zero_cost.compute("naswot", model, x, y)


def test_training_only_parts_of_a_darts_network_do_not_change_the_scores():
    # The auxiliary head (extra ReLUs for NASWOT) and drop-path (random zeroed paths) exist
    # only in training; the proxies score the network that is evaluated.
    space = search_spaces.get("darts")
    genotype = space.sample(np.random.default_rng(0))
    torch.manual_seed(0)
    extras = space.build(genotype, C=4, layers=3, auxiliary=True, drop_path_prob=0.3)
    plain = space.build(genotype, C=4, layers=3)
    plain.load_state_dict(extras.state_dict(), strict=False)
    x, y = torch.randn(8, 3, 32, 32), torch.randint(0, 10, (8,))
    for name in ("naswot", "snip", "synflow"):
        assert zero_cost.compute(name, extras, x, y) == pytest.approx(
            zero_cost.compute(name, plain, x, y), rel=1e-5
        ), name
    assert extras.drop_path_prob == 0.3  # put back
