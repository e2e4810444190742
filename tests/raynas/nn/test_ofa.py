"""The elastic OFA-MobileNetV3 supernet: subnets copied out equal the supernet's active path."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from raynas.nn.mobilenetv3 import MobileNetV3Network
from raynas.nn.ofa import LARGEST, SMALLEST, OFASupernet, check_stages, random_stages
from raynas.torch_state import single_thread
from search_spaces.mobilenetv3 import MobileNetV3Genotype, MobileNetV3Space

WIDTH = 0.35


@pytest.fixture(autouse=True)
def _one_thread():
    # Tiny tensors: torch's thread pool only adds contention on a shared machine.
    with single_thread():
        yield


def _scrambled(kernel_transform: bool = True, seed: int = 0) -> OFASupernet:
    """A supernet whose BN statistics, affine terms, transforms and classifier are not at their
    initial values, so a copy that drops any of them shows in the outputs."""
    torch.manual_seed(seed)
    net = OFASupernet(width_mult=WIDTH, kernel_transform=kernel_transform)
    with torch.no_grad():
        for name, tensor in net.state_dict().items():
            if "running_mean" in name or name.endswith(".bias"):
                tensor.uniform_(-0.3, 0.3)
            elif "running_var" in name:
                tensor.uniform_(0.5, 2.0)
            elif name.endswith(".weight") and tensor.dim() == 1:  # BatchNorm scales
                tensor.uniform_(0.5, 1.5)
            elif "transforms" in name:
                tensor.add_(0.1 * torch.randn_like(tensor))
        net.classifier[1].weight.normal_(0.0, 1.0)
    return net.eval()


def _genotypes(count: int, seed: int = 0) -> list:
    rng = np.random.default_rng(seed)
    return [LARGEST, SMALLEST, *(random_stages(rng) for _ in range(count))]


def _assert_subnets_match(net: OFASupernet, stages_list: list, x: torch.Tensor) -> None:
    for stages in stages_list:
        net.set_active(stages)
        expected = net(x)
        got = net.subnet(stages).eval()(x)
        assert isinstance(net.subnet(stages), MobileNetV3Network)
        torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("kernel_transform", [True, False])
def test_subnet_outputs_equal_the_active_path(kernel_transform):
    net = _scrambled(kernel_transform)
    x = torch.randn(3, 3, 32, 32)
    _assert_subnets_match(net, _genotypes(6), x)


def test_subnets_differ_between_genotypes():
    # The equality test above must be able to fail: different subnets give different outputs.
    net = _scrambled()
    x = torch.randn(3, 3, 32, 32)
    net.set_active(LARGEST)
    large = net(x)
    net.set_active(SMALLEST)
    assert not torch.allclose(large, net(x), atol=1e-3)


def test_sort_channels_keeps_the_largest_function_and_subnets_match_after():
    net = _scrambled(seed=1)
    x = torch.randn(3, 3, 32, 32)
    rng = np.random.default_rng(1)
    probe = random_stages(rng, expands=(3,))
    net.set_active(probe)
    before_small = net(x)
    net.set_active(LARGEST)
    before = net(x)
    net.sort_channels()
    torch.testing.assert_close(net(x), before, rtol=1e-4, atol=1e-5)
    net.set_active(probe)
    assert not torch.allclose(net(x), before_small, atol=1e-4)  # the channels did move
    _assert_subnets_match(net, _genotypes(4, seed=2), x)


def test_sort_channels_puts_the_most_important_channels_first():
    net = _scrambled(seed=2)
    net.sort_channels()
    for blocks in net.stages:
        for block in blocks:
            importance = block.project_conv.weight.abs().sum(dim=(0, 2, 3))
            assert torch.all(importance[:-1] >= importance[1:])
            if block.spec.se:
                se_importance = block.se_expand.weight.abs().sum(dim=(0, 2, 3))
                assert torch.all(se_importance[:-1] >= se_importance[1:])


def test_sort_channels_permutes_the_optimizer_momentum_with_the_weights():
    # SGD is permutation-equivariant: one step after sorting (momentum permuted too) gives the
    # same largest-subnet function as the same step without sorting.
    torch.manual_seed(3)
    nets = [OFASupernet(width_mult=WIDTH, dropout=0.0) for _ in range(2)]
    nets[1].load_state_dict(nets[0].state_dict())
    opts = [torch.optim.SGD(n.parameters(), lr=0.05, momentum=0.9) for n in nets]
    x, y = torch.randn(4, 3, 32, 32), torch.tensor([0, 1, 2, 3])

    def step(net, opt):
        opt.zero_grad()
        torch.nn.functional.cross_entropy(net.train()(x), y).backward()
        opt.step()

    for net, opt in zip(nets, opts, strict=True):
        step(net, opt)
    nets[0].sort_channels(opts[0])
    for net, opt in zip(nets, opts, strict=True):
        step(net, opt)
    outs = [net.eval()(x) for net in nets]
    torch.testing.assert_close(outs[0], outs[1], rtol=1e-4, atol=1e-5)


def test_kernel_transform_maps_the_centre_and_learns():
    net = OFASupernet(width_mult=WIDTH)
    block = net.stages[0][0]
    mid = block.mid_channels(6)
    centre5 = block.depthwise[:mid, :, 1:6, 1:6]
    # Identity at initialisation: 5x5 is the centre of 7x7, 3x3 the centre of that.
    torch.testing.assert_close(block.kernel_weight(5, mid), centre5)
    torch.testing.assert_close(block.kernel_weight(3, mid), block.depthwise[:mid, :, 2:5, 2:5])
    net.set_active(SMALLEST)  # kernel 3 everywhere: both matrices on the path
    net(torch.randn(2, 3, 32, 32)).sum().backward()
    assert block.transforms["5"].grad.abs().sum() > 0
    assert block.transforms["3"].grad.abs().sum() > 0
    plain = OFASupernet(width_mult=WIDTH, kernel_transform=False)
    assert not any("transforms" in name for name, _ in plain.named_parameters())


def test_elastic_batch_norm_updates_only_the_active_channels():
    net = OFASupernet(width_mult=WIDTH).train()
    net.set_active(SMALLEST)
    block = net.stages[0][0]
    mid = block.mid_channels(3)
    net(torch.randn(4, 3, 32, 32))
    running = block.expand_bn.running_mean
    assert running[:mid].abs().sum() > 0
    assert torch.all(running[mid:] == 0)


def test_exported_subnet_loads_into_the_space_build_without_supernet_code():
    space = MobileNetV3Space(width_mult=WIDTH)
    genotype = space.sample(np.random.default_rng(4))
    net = _scrambled(seed=4)
    sub = net.subnet(genotype)
    fresh = space.build(genotype, width_mult=WIDTH, num_classes=10)
    fresh.load_state_dict(sub.state_dict())
    x = torch.randn(2, 3, 32, 32)
    net.set_active(genotype)
    torch.testing.assert_close(fresh.eval()(x), net(x), rtol=1e-5, atol=1e-5)


def test_subnet_leaves_the_active_subnet_and_mode_alone():
    net = OFASupernet(width_mult=WIDTH).train()
    net.set_active(SMALLEST)
    sub = net.subnet(LARGEST)
    assert net.active == SMALLEST
    assert sub.training


def test_genotype_and_lists_are_accepted():
    genotype = MobileNetV3Genotype((2, 3, 2, 4, 2), [[(3, 4)] * d for d in (2, 3, 2, 4, 2)])
    assert check_stages(genotype) == genotype.blocks
    assert check_stages([list(map(list, stage)) for stage in genotype.blocks]) == genotype.blocks


@pytest.mark.parametrize(
    ("stages", "message"),
    [
        ([[(9, 6)] * 2] + [[(3, 3)] * 2] * 4, "s1.b1.kernel 9"),
        ([[(3, 3)] * 2] * 2 + [[(3, 8)] * 3] + [[(3, 3)] * 2] * 2, "s3.b1.expand 8"),
        ([[(3, 3)] * 5] + [[(3, 3)] * 2] * 4, "stage s1 has depth 5"),
        ([[(3, 3)] * 2] * 4 + [[(3, 3)]], "stage s5 has depth 1"),
        ([[(3, 3)] * 2] * 4, "5 stages, got 4"),
        ([[(3, 3)] * 2] * 4 + [[(3, 3), (5,)]], "block s5.b2 needs (kernel, expand)"),
    ],
)
def test_out_of_range_stages_name_the_slot(stages, message):
    net = OFASupernet(width_mult=WIDTH)
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        net.set_active(stages)
    with pytest.raises(ValueError, match="outside|needs|got"):
        net.subnet(stages)


def test_identity_names_what_a_checkpoint_must_match():
    net = OFASupernet(width_mult=0.5, num_classes=7, in_channels=1, kernel_transform=False)
    assert net.identity() == {
        "space": "mobilenetv3",
        "width_mult": 0.5,
        "num_classes": 7,
        "in_channels": 1,
        "kernel_transform": False,
    }
    x = torch.randn(2, 1, 16, 16)
    assert net.eval()(x).shape == (2, 7)
    net.set_active(SMALLEST)
    torch.testing.assert_close(net.subnet(SMALLEST).eval()(x), net(x))
