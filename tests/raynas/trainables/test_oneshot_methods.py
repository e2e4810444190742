"""The ``oneshot`` trainable's single-path methods (RSPS, GDAS, SETN, ENAS): single-path
forward, each method's update, exact resume, bad options (also through ``raynas run``)."""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest
import torch
from helpers import EXAMPLES, RAYNAS, cli_env, read_events

import search_spaces
from raynas import trainables
from raynas.nn.controller import Controller
from raynas.nn.supernet import DARTS_PRIMITIVES, build_supernet
from raynas.oneshot import derive
from raynas.oneshot.board import AlphaBoard
from raynas.oneshot.methods import ENASSearch, GDASSearch, RSPSSearch, SETNSearch, make_search
from raynas.oneshot.options import DartsOptions
from raynas.searchers import controller as searcher_controller

NB201_SMALL = {"C": 4, "N": 1}
DARTS_SMALL = {"C": 4, "layers": 3}
METHODS = ("rsps", "gdas", "setn", "enas")


def _search(method: str, space: str = "nb201", **options):
    build = NB201_SMALL if space == "nb201" else DARTS_SMALL
    extra = {"candidates": 4} if method in ("rsps", "setn") else {}
    opts = DartsOptions(
        **{
            "dataset": "synthetic",
            "epochs": 3,
            "batch_size": 32,
            "build": build,
            "subset": 64,
            "val_fraction": 64,
            "method": method,
            "threads": 1,
            **extra,
            **options,
        }
    )
    return make_search(search_spaces.get(space), opts)


def test_single_path_forward_computes_only_the_chosen_op_of_each_edge():
    torch.manual_seed(0)
    model = build_supernet("nb201", C=4, N=1, num_classes=3, in_channels=3)
    calls: dict[int, int] = {}

    def count(i):
        return lambda module, args, out: calls.__setitem__(i, calls.get(i, 0) + 1)

    for cell in model.cells:
        for edge in getattr(cell, "ops", []):
            for i, op in enumerate(edge.ops):
                op.register_forward_hook(count(i))
    x = torch.randn(2, 3, 8, 8)
    path = {"normal": [1, 2, 3, 4, 1, 2]}  # conv3x3, conv1x1, pool, skip, conv3x3, conv1x1
    model(x, path)
    # one op per edge: 6 edges in each of the 3 cells (one per stage)
    assert calls == {1: 6, 2: 6, 3: 3, 4: 3}
    calls.clear()
    model(x)  # the mixed supernet computes every op other than ``none``
    assert calls == {1: 18, 2: 18, 3: 18, 4: 18}


def test_single_path_equals_the_mixed_supernet_with_one_hot_alpha():
    torch.manual_seed(0)
    model = build_supernet("nb201", C=4, N=1, num_classes=3).eval()
    path = {"normal": [3, 1, 0, 4, 2, 1]}
    with torch.no_grad():
        model.alphas["normal"].copy_(torch.full((6, 5), -1e4))
        model.alphas["normal"][range(6), path["normal"]] = 0.0
        x = torch.randn(2, 3, 8, 8)
        assert torch.allclose(model(x, path), model(x), atol=1e-5)


@pytest.mark.parametrize("space", ["nb201", "darts"])
def test_paths_and_genotypes_round_trip(space):
    search = _search("rsps", space)
    for _ in range(5):
        path = search.draw_path(search.uniform_probs())
        genotype = search.path_genotype(path)
        search.space.to_str(genotype)  # a valid genotype of the space
        assert derive.path_of(search.model, genotype) == path
        if space == "darts":
            for t in search.model.cell_types:
                assert sum(op != DARTS_PRIMITIVES.index("none") for op in path[t]) == 8


def test_gdas_temperature_anneals_and_alpha_gets_straight_through_gradients():
    search = _search("gdas", epochs=3)
    assert isinstance(search, GDASSearch)
    assert [search.tau(e) for e in range(3)] == pytest.approx([10.0, 5.05, 0.1])
    path, weights = search.gumbel_path(1.0)
    assert all(float(w.detach().sum(-1).max()) == pytest.approx(1.0) for w in weights.values())
    x, y = next(iter(search._loader("val", True, torch.Generator())))
    loss = torch.nn.functional.cross_entropy(search.model(x, path, weights), y)
    (grad,) = torch.autograd.grad(loss, search.alphas)
    assert grad.abs().sum() > 0  # through softmax: every op of an edge, not only the drawn one
    before = search.alphas[0].detach().clone()
    metrics = search.step()
    assert metrics["tau"] == 10.0 and not torch.equal(before, search.alphas[0].detach())


def test_rsps_and_setn_keep_the_lowest_loss_candidate():
    for method, cls in (("rsps", RSPSSearch), ("setn", SETNSearch)):
        search = _search(method, candidates=6)
        assert isinstance(search, cls)
        metrics = search.step()
        assert metrics["candidates"] == 6
        assert metrics["candidate_best_loss"] <= metrics["candidate_median_loss"]
        assert metrics["candidate_median_loss"] <= metrics["candidate_worst_loss"]
        assert metrics["arch"] == search.space.to_str(search.path_genotype(search.best_path))
        assert search.arch() == metrics["arch"]
    # rsps never trains α; setn trains its template distribution
    rsps, setn = _search("rsps"), _search("setn")
    a_rsps, a_setn = rsps.alphas[0].detach().clone(), setn.alphas[0].detach().clone()
    rsps.step(), setn.step()
    assert torch.equal(a_rsps, rsps.alphas[0].detach())
    assert not torch.equal(a_setn, setn.alphas[0].detach())


def test_enas_uses_the_reinforce_searchers_policy_and_trains_it():
    assert searcher_controller.Controller is Controller  # one policy, not a copy
    search = _search("enas", entropy_weight=0.01, controller_lr=0.01)
    assert isinstance(search, ENASSearch) and isinstance(search.controller, Controller)
    before = [p.detach().clone() for p in search.controller.parameters()]
    metrics = search.step()
    after = list(search.controller.parameters())
    assert any(not torch.equal(b, a.detach()) for b, a in zip(before, after, strict=True))
    assert 0 <= metrics["controller_reward"] <= 1 and 0 <= metrics["controller_baseline"] <= 1
    assert 0 < metrics["controller_entropy"] <= torch.log(torch.tensor(5.0)).item() + 1e-6
    greedy = search.controller.greedy()[0].tolist()
    assert metrics["arch"] == search.space.to_str(search.path_genotype({"normal": greedy}))


@pytest.mark.slow
@pytest.mark.parametrize("method", METHODS)
def test_darts_space_epoch_derives_a_valid_cell(method):
    metrics = _search(method, "darts", epochs=1).step()
    search_spaces.get("darts").from_str(metrics["arch"])


@pytest.mark.slow
@pytest.mark.parametrize("method", METHODS)
def test_resume_from_checkpoint_is_exact(method, tmp_path):
    keys = ("train_loss", "train_acc", "val_loss", "val_acc", "arch", "alpha_normal", "lr")
    own = trainables.METHOD_METRICS[method]
    straight = _search(method)
    expected = [straight.step() for _ in range(3)]
    interrupted = _search(method)
    got = [interrupted.step()]
    torch.save(interrupted.state_dict(), tmp_path / "state.pt")
    torch.manual_seed(1234)  # another process's RNG state must not matter
    resumed = _search(method)
    resumed.load_state_dict(torch.load(tmp_path / "state.pt", weights_only=False))
    got += [resumed.step(), resumed.step()]
    pick = lambda m: [m[k] for k in (*keys, *own)]  # noqa: E731
    assert [pick(m) for m in got] == [pick(m) for m in expected]


def test_checkpoint_of_another_method_is_refused():
    with pytest.raises(ValueError, match="checkpoint is for the search"):
        _search("rsps").load_state_dict(_search("setn").state_dict())


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"method": "nao"}, "unknown method 'nao'; choose one of: darts, rsps, gdas, setn, enas"),
        ({"method": "rsps", "tau_max": 5}, "option tau_max is for method gdas, not rsps"),
        ({"tau_min": 0.5}, "option tau_min is for method gdas, not darts"),
        ({"method": "gdas", "candidates": 5}, "option candidates is for method rsps and setn"),
        ({"method": "rsps", "candidates": 0}, "candidates must be an integer >= 1"),
        ({"method": "setn", "eval_batches": 0}, "eval_batches must be an integer >= 1"),
        ({"method": "gdas", "tau_max": 1, "tau_min": 2}, r"tau_min \(2\) must be <= tau_max"),
        ({"method": "gdas", "order": 2}, "order=2 is a setting of method darts, not gdas"),
        ({"method": "enas", "pc_k": 2}, "pc_k=2 is a setting of method darts, not enas"),
        ({"method": "rsps", "sweep": {"order": [1, 2]}}, "sweep.order is a setting of method"),
        ({"method": "enas", "baseline_decay": 1.0}, r"baseline_decay must be in \[0, 1\)"),
    ],
)
def test_bad_method_options(options, message):
    with pytest.raises(ValueError, match=message):
        trainables.make("oneshot", search_spaces.get("nb201"), **options)


@pytest.mark.parametrize("method, heatmaps", [("gdas", True), ("rsps", False), ("enas", False)])
def test_tensorboard_shows_alpha_only_for_methods_that_train_it(method, heatmaps, tmp_path):
    search = _search(method, epochs=1)
    board = AlphaBoard(str(tmp_path))
    try:
        board.log(search, search.step())
    finally:
        board.close()
    events = read_events(str(tmp_path))
    assert ("alpha/normal" in events["images"]) is heatmaps, sorted(events["images"])
    assert "genotype/text_summary" in events["tensors"]


def test_darts_name_is_the_same_trainable_with_the_same_options():
    space = search_spaces.get("nb201")
    assert trainables.metrics("darts", space) == trainables.metrics("oneshot", space)
    assert "tau" in trainables.metrics("darts", space, method="gdas")
    trainables.make("darts", space, method="rsps", candidates=3)


@pytest.mark.parametrize(
    ("sets", "says"),
    [
        (["trainable.options.method=nao"], "unknown method 'nao'"),
        (["trainable.options.method=rsps"], "option tau_max is for method gdas, not rsps"),
        (
            [
                "trainable.options.method=rsps",
                "trainable.options.tau_max=null",
                "trainable.options.tau_min=null",
                "trainable.options.candidates=0",
            ],
            "candidates must be an integer >= 1",
        ),  # fmt: skip
    ],
)
def test_bad_method_options_through_raynas_run_are_one_line_exit_2(sets, says, tmp_path):
    ray_tmp = Path(tempfile.mkdtemp(prefix="rn-"))
    try:
        argv = [*RAYNAS, "run", str(EXAMPLES / "gdas_nb201.yaml")]
        argv += [a for s in sets for a in ("--set", s)]
        argv += ["--storage-path", str(tmp_path / "res")]
        env = {**cli_env(), "RAY_TMPDIR": str(ray_tmp)}
        proc = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=120)
        lines = proc.stderr.strip().splitlines()
        assert proc.returncode == 2, proc.stderr
        assert len(lines) == 1 and lines[0].startswith("raynas: error: "), proc.stderr
        assert says in lines[0]
        assert "Traceback" not in proc.stderr + proc.stdout
        assert not list((ray_tmp / "ray").glob("session_2*"))
    finally:
        shutil.rmtree(ray_tmp, ignore_errors=True)


@pytest.mark.slow
def test_oneshot_gdas_trainable_in_tuner_reports_its_own_metrics(ray_address, tmp_path):
    from ray import tune

    space = search_spaces.get("nb201")
    trainable = trainables.make(
        "oneshot", space, method="gdas", dataset="synthetic", epochs=2, batch_size=32,
        build=NB201_SMALL, subset=64, val_fraction=64, threads=1, tensorboard=True,
    )  # fmt: skip
    grid = tune.Tuner(
        tune.with_resources(trainable, {"cpu": 1}),
        param_space=space.tune_space(),
        tune_config=tune.TuneConfig(metric="val_acc", mode="max", num_samples=1),
        run_config=tune.RunConfig(storage_path=str(tmp_path), name="gdas"),
    ).fit()
    assert not grid.errors
    result = grid[0]
    assert result.metrics["training_iteration"] == 2 and result.metrics["epoch"] == 2
    assert result.metrics["tau"] == pytest.approx(0.1)
    space.from_str(result.metrics["arch"])
    assert result.checkpoint is not None


@pytest.mark.slow
def test_oneshot_experiment_exports_the_derived_cell(ray_address, tmp_path):
    # The experiment layer knows the ``oneshot`` name as it knows ``darts``: the best trial's
    # architecture is the derived one (the trial ignores its sampled cell).
    import json

    from raynas import cli, results

    experiment = {
        "name": "rsps-tiny",
        "space": "nb201",
        "searcher": "random",
        "scheduler": "fifo",
        "trainable": {
            "name": "oneshot",
            "options": {
                "method": "rsps",
                "candidates": 3,
                "dataset": "synthetic",
                "epochs": 2,
                "batch_size": 64,
                "build": NB201_SMALL,
                "threads": 1,
            },  # fmt: skip
        },
        "metric": "val_acc",
        "mode": "max",
        "num_samples": 1,
        "resources": {"cpu": 1, "gpu": 0},
    }
    file = tmp_path / "rsps.yaml"
    file.write_text(json.dumps(experiment))
    cli.main(["run", str(file), "--storage-path", str(tmp_path), "--name", "rsps", "-q"])
    summary = results.load(tmp_path / "rsps")
    (trial,) = summary.trials["trial_id"].tolist()
    derived = summary.history(trial)["arch"].tolist()[-1]
    space = search_spaces.get("nb201")
    best = results.best(summary)
    assert best["arch"] == derived
    assert best["config"] == space.encode(space.from_str(derived))
