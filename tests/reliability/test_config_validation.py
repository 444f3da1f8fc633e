"""Config validation, property-based: a bad value is a one-line ConfigError naming its key, and nothing is written."""

from __future__ import annotations

import itertools
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from omegaconf import OmegaConf

from engine.runner import ConfigError, run_search

CONFIG_CASES = 200

# key -> generated values (valid ones included, so valid and invalid combinations both occur)
FIELDS: dict[str, st.SearchStrategy] = {
    "seed": st.sampled_from([0, 1, -1, "abc", 1.5, None, True, [0]]),
    "batch_size": st.sampled_from([1, 2, 0, -3, "2", 2.5, None, True]),
    "budget.evaluations": st.sampled_from([0, 2, -1, None, "x", 2.5, True, [1]]),
    "budget.max_stall": st.sampled_from([10, 0, -1, "x", None]),
    "budget.wall_seconds": st.sampled_from([None, -1, 0.0, "x"]),
    "budget.per_fidelity": st.sampled_from([{}, {"default": 2}, {"default": -1}, {"default": "x"}, [1], "x"]),
    "strategy.population": st.sampled_from([10, 0, -2, "x", None, 2.5]),
    "strategy.sample": st.sampled_from([5, 0, 11, "x"]),
    "strategy.mutation_tries": st.sampled_from([10, 0, -1, "x", 1.5]),
    "strategy.unknown_option": st.sampled_from([None, 1]),
    "retry": st.sampled_from([{"attempts": 1, "errors": ["OutOfMemoryError"]}, {"attempts": -1, "errors": []},
                              {"attempts": 1, "errors": "OutOfMemoryError"}, {"attempts": 1, "errors": [""]},
                              {"tries": 1}, "x", None]),
    "budget.oracle_seconds": st.sampled_from([None, 5.0, -1, "x", True]),
    "budget.evalutions": st.sampled_from([None, 10]),
    "resume": st.sampled_from([False, "auto", True, "maybe", 1]),
    "output.journal": st.sampled_from(["journal.sqlite", "../j.sqlite", "/tmp/j.sqlite", "", "sub/j.sqlite"]),
    "output.summary": st.sampled_from(["summary.json", "../s.json", "s/"]),
    "space.params": st.sampled_from([{}, {"stages": 2}, {"bogus": 1}, "x"]),
    "oracle.objective": st.sampled_from(["val_acc", "test_acc", "nope", ""]),
    "oracle.table": st.sampled_from([None, "/nonexistent/t.csv", ""]),
    "oracle.cost_seconds": st.sampled_from([0.0, -1.0, float("nan"), "x"]),
}


# Values that must be refused whatever else is set (type-checked at start, issue 12 item 3).
INVALID: dict[str, list] = {
    "seed": [-1, "abc", 1.5, None, True, [0]],
    "batch_size": [0, -3, "2", 2.5, None, True],
    "budget.evaluations": [-1, "x", 2.5, True, [1]],
    "budget.max_stall": [0, -1, "x", None],
    "budget.wall_seconds": [-1, "x"],
    "budget.oracle_seconds": [-1, "x", True],
    "budget.evalutions": [10],  # a typo of a budget key
    "strategy.mutation_tries": [-1, "x", 1.5],  # read only when a child is mutated: refused at start anyway
    "resume": [True, "maybe", 1],  # true with no journal to resume is refused too
}


def _invalid(values: dict) -> list[str]:
    return [k for k, v in values.items() if any(type(v) is type(x) and v == x for x in INVALID.get(k, []))]


def _set(cfg, dotted: str, value) -> None:
    if dotted in ("strategy.unknown_option", "budget.evalutions") and value is None:
        return
    OmegaConf.update(cfg, dotted, value, force_add=True, merge=False)


def test_config_values(make_cfg, tmp_path: Path) -> None:
    base = OmegaConf.to_container(make_cfg("budget.evaluations=2"), resolve=True)
    runs = itertools.count()
    seen = {"ok": 0, "error": 0}

    @settings(max_examples=CONFIG_CASES, deadline=None, database=None, derandomize=True,
              suppress_health_check=list(HealthCheck))
    @given(st.fixed_dictionaries({}, optional=FIELDS))
    def case(values: dict) -> None:
        cfg = OmegaConf.create(base)
        for k, v in values.items():
            _set(cfg, k, v)
        out = tmp_path / f"run{next(runs)}"
        try:
            summary = run_search(cfg, out)
        except ConfigError as exc:
            seen["error"] += 1
            text = str(exc)
            assert text and "\n" not in text
            named = [k for k in values if k.split(".")[0] in text or k.split(".")[-1] in text]
            assert named, f"the error names none of the changed keys {sorted(values)}: {text}"
            assert not out.exists(), f"a refused config wrote {sorted(p.name for p in out.rglob('*'))}"
        else:
            seen["ok"] += 1
            assert not _invalid(values), f"ran although {_invalid(values)} are invalid: {values}"
            assert summary["evaluations"] <= 2

    case()
    assert seen["ok"] > 0 and seen["error"] > 0, seen
    print(f"\nconfig validation cases: {sum(seen.values())} ({seen['error']} refused, {seen['ok']} ran)")
