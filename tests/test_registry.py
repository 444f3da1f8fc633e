"""Strategy registry: decorator, duplicates, patterns, options, entry-point plugins."""

from __future__ import annotations

import importlib
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from engine.spaces import get_space
from engine.strategies import _registry, create_strategy, get_strategy, list_strategies, register
from engine.strategies._random import RandomSearch


@pytest.fixture
def clean_registry() -> Iterator[None]:
    """Undo registrations and plugin loading done by a test."""
    saved = dict(_registry._REGISTRY)
    loaded = _registry._plugins_loaded
    yield
    _registry._REGISTRY.clear()
    _registry._REGISTRY.update(saved)
    _registry._plugins_loaded = loaded


def test_spine_strategies_are_registered() -> None:
    assert {"random", "regularized_evolution", "local_search"} <= set(list_strategies())
    assert get_strategy("random") is RandomSearch and RandomSearch.name == "random"


def test_duplicate_name_is_an_error(clean_registry: None) -> None:
    class Other(RandomSearch):
        pass

    with pytest.raises(ValueError, match=r"'random' is already registered by engine\.strategies\._random"):
        register("random")(Other)
    assert get_strategy("random") is RandomSearch
    register("random")(RandomSearch)  # re-registering the same class is harmless


def test_register_needs_a_strategy_class(clean_registry: None) -> None:
    with pytest.raises(TypeError, match="Strategy subclass"):
        register("nope")(object)  # type: ignore[type-var]


def test_list_by_pattern(clean_registry: None) -> None:
    @register("zz_test_alpha")
    class A(RandomSearch):
        pass

    @register("zz_test_beta")
    class B(RandomSearch):
        pass

    assert list_strategies("zz_test_*") == ["zz_test_alpha", "zz_test_beta"]
    assert list_strategies("*_beta") == ["zz_test_beta"]
    assert list_strategies("no_such_*") == []
    assert list_strategies() == sorted(list_strategies())


def test_unknown_strategy_lists_the_available_ones() -> None:
    with pytest.raises(ValueError, match=r"unknown strategy 'evolution'; available: .*regularized_evolution"):
        get_strategy("evolution")


def test_create_strategy_options() -> None:
    space = get_space("nb201")
    s = create_strategy("regularized_evolution", space, seed=3, population=20, sample=4)
    assert (s.seed, s.population_size, s.sample_size) == (3, 20, 4)  # type: ignore[attr-defined]
    with pytest.raises(ValueError, match=r"bad options for strategy 'random'.*temperature"):
        create_strategy("random", space, temperature=2.0)
    with pytest.raises(ValueError, match=r"strategy\.sample must be in \[1, population=3\]"):
        create_strategy("regularized_evolution", space, population=3, sample=5)
    with pytest.raises(ValueError, match=r"strategy\.mutation_tries must be an integer, got 'abc'"):
        create_strategy("regularized_evolution", space, mutation_tries="abc")


def _scalar_options(name: str) -> list[tuple[str, type]]:
    import typing

    hints = typing.get_type_hints(get_strategy(name).__init__)
    return [(k, h) for k, h in hints.items() if k not in ("seed", "return") and h in (int, float)]


@pytest.mark.parametrize("name", list_strategies())
def test_every_numeric_option_refuses_a_word(name: str) -> None:
    """A word for a numeric option is refused at construction, naming ``strategy.<option>``, for every strategy."""
    space = get_space("nb201")
    options = _scalar_options(name)
    for key, _ in options:
        with pytest.raises(ValueError, match=rf"^strategy\.{key} must be (an integer|a number)"):
            create_strategy(name, space, **{key: "abc"})


@pytest.mark.parametrize("seed", [-1, 1.5, True, "0"])
def test_bad_seed(seed: object) -> None:
    with pytest.raises(ValueError, match="seed must be a non-negative integer"):
        RandomSearch(get_space("nb201"), seed=seed)  # type: ignore[arg-type]


def _write_plugin(root: Path, dist: str, module: str, entries: str, source: str) -> None:
    (root / f"{module}.py").write_text(textwrap.dedent(source))
    info = root / f"{dist}-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text(f"[{_registry.ENTRY_POINT_GROUP}]\n{textwrap.dedent(entries)}")


def test_entry_point_plugins_are_discovered(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, clean_registry: None, caplog: pytest.LogCaptureFixture
) -> None:
    _write_plugin(
        tmp_path,
        "nas_test_plugin",
        "nas_test_plugin_mod",
        """\
        zz_plugin_walk = nas_test_plugin_mod:Walk
        zz_plugin_broken = nas_test_plugin_missing_mod:Nothing
        """,
        """\
        from engine.strategies import Strategy

        class Walk(Strategy):
            def _ask(self, n):
                return [self.sample_new() for _ in range(n)]
        """,
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    importlib.invalidate_caches()
    _registry._plugins_loaded = False
    with caplog.at_level("WARNING", logger="engine.strategies._registry"):
        names = list_strategies()
    assert "zz_plugin_walk" in names and "zz_plugin_broken" not in names
    assert "could not load strategy plugin 'zz_plugin_broken'" in caplog.text  # a broken plugin hides nothing
    cls = get_strategy("zz_plugin_walk")
    assert cls.name == "zz_plugin_walk"
    strategy = create_strategy("zz_plugin_walk", get_space("nb201"), seed=1)
    assert len(strategy.ask(3)) == 3
    sys.modules.pop("nas_test_plugin_mod", None)


def test_plugin_cannot_take_a_builtin_name(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, clean_registry: None
) -> None:
    _write_plugin(
        tmp_path,
        "nas_test_plugin2",
        "nas_test_plugin2_mod",
        "random = nas_test_plugin2_mod:Fake\n",
        """\
        from engine.strategies import Strategy

        class Fake(Strategy):
            def _ask(self, n):
                return []
        """,
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    importlib.invalidate_caches()
    _registry._plugins_loaded = False
    list_strategies()
    assert get_strategy("random") is RandomSearch
    sys.modules.pop("nas_test_plugin2_mod", None)
