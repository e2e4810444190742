"""Imports run one way: no cycle, no arrow against the layering (ARCHITECTURE.md).

The graph is read from the source by ``scripts/import_graph.py`` (every import, also inside
functions); run that script to see the offending arrows by name.
"""

from __future__ import annotations

import textwrap

import import_graph as ig  # scripts/ is on the tests' pythonpath (pyproject.toml)
import pytest


@pytest.fixture(scope="module")
def graph():
    return ig.graph()


def test_import_graph_sees_known_arrows(graph):
    # The test must be able to fail: the reader finds module-level and function-level imports.
    assert "raynas.nn.ops" in graph["raynas.nn.darts"]
    assert "raynas.nn.darts" in graph["search_spaces.darts"]  # inside DartsSpace.build
    assert "raynas.decision_report" in graph["raynas.results"]


def test_no_import_cycles(graph):
    assert ig.cycles(graph) == []


def test_no_arrow_against_the_layering(graph):
    assert ig.arrows_against_layering(graph) == []


def test_every_module_has_a_layer(graph):
    assert ig.unassigned(graph) == []


def test_a_new_cycle_or_upward_arrow_is_caught(tmp_path, monkeypatch):
    # A copy of two real modules with an added arrow from nn up to search_spaces: both a
    # cycle and an arrow against the layering.
    for pkg in ig.PACKAGES:
        (tmp_path / pkg).mkdir()
        (tmp_path / pkg / "__init__.py").write_text("")
    (tmp_path / "raynas" / "nn").mkdir()
    (tmp_path / "raynas" / "nn" / "__init__.py").write_text("")
    (tmp_path / "raynas" / "nn" / "darts.py").write_text("from search_spaces.darts import OPS\n")
    (tmp_path / "search_spaces" / "darts.py").write_text(
        textwrap.dedent(
            """
            def build():
                from raynas.nn.darts import DartsNetwork
            """
        )
    )
    monkeypatch.setattr(ig, "ROOT", tmp_path)
    g = ig.graph()
    assert ig.cycles(g) == [["raynas.nn.darts", "search_spaces.darts"]]
    assert ig.arrows_against_layering(g) == [("raynas.nn.darts", "search_spaces.darts")]


def test_searcher_importing_a_trainable_is_caught(tmp_path, monkeypatch):
    for pkg in ("raynas", "raynas/searchers", "raynas/trainables", "search_spaces", "schedulers"):
        (tmp_path / pkg).mkdir(parents=True, exist_ok=True)
        (tmp_path / pkg / "__init__.py").write_text("")
    (tmp_path / "raynas" / "trainables" / "proxy.py").write_text("X = 1\n")
    (tmp_path / "raynas" / "searchers" / "seeding.py").write_text(
        "from raynas.trainables.proxy import X\n"
    )
    monkeypatch.setattr(ig, "ROOT", tmp_path)
    g = ig.graph()
    assert ig.arrows_against_layering(g) == [
        ("raynas.searchers.seeding", "raynas.trainables.proxy")
    ]


def test_namespaced_names_are_the_same_modules():
    import raynas.schedulers.lce
    import raynas.search_spaces.nb201

    import search_spaces.nb201
    from schedulers import lce

    assert raynas.search_spaces.nb201 is search_spaces.nb201
    assert raynas.schedulers.lce is lce
    from raynas import search_spaces as ns

    assert ns.get("nb201").size() == 15625
