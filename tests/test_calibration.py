"""Calibration of a supernet search: the set, the agreement and its verdict, resume, budget, the runner."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest
from scipy import stats

from engine.calibration import PICK, PRUNE, agreement, choose, run_calibration
from engine.spaces import Architecture, get_space
from engine.testing import ToyOracle
from engine.types import Evaluation

SPACE = get_space("nb201")


def _archs(n: int, seed: int = 0) -> list[Architecture]:
    rng = np.random.default_rng(seed)
    out: list[Architecture] = []
    while len(out) < n:
        a = SPACE.sample(rng)
        if a not in out:
            out.append(a)
    return out


def test_the_set_is_the_top_then_an_even_spread_over_the_ranking() -> None:
    archs = _archs(20)
    scores = {a: float(i) for i, a in enumerate(archs)}  # archs[19] is the best
    chosen = choose(scores, size=6, top=3)
    assert chosen[:3] == [archs[19], archs[18], archs[17]]
    rest = [scores[a] for a in chosen[3:]]
    assert rest == [16.0, 8.0, 0.0]  # the best, middle and worst of the remaining 17
    assert choose(scores, size=3, top=3) == chosen[:3]
    assert len(choose({a: 1.0 for a in archs[:4]}, size=6, top=3)) == 4  # fewer archs than the set
    assert choose({archs[0]: float("nan"), archs[1]: 2.0}, size=6, top=1) == [archs[1]]


def test_agreement_is_scipy_kendall_with_an_interval_and_a_verdict_by_its_lower_end() -> None:
    rng = np.random.default_rng(1)
    truth = rng.normal(size=30)
    for noise in (0.05, 1.0, 20.0):
        cheap = truth + noise * rng.normal(size=30)
        got = agreement(cheap, truth, top=5, seed=0, bootstrap=500)
        assert got["kendall_tau"] == pytest.approx(stats.kendalltau(cheap, truth).statistic)
        lo, hi = got["tau_interval"]
        assert lo <= got["kendall_tau"] <= hi
        expected = "pick" if lo >= PICK else "prune" if lo > PRUNE else "none"
        assert got["verdict"] == expected, (noise, lo)
        top_cheap = set(np.argsort(-cheap)[:5])
        assert got["top_k_overlap"] == pytest.approx(len(top_cheap & set(np.argsort(-truth)[:5])) / 5)
    assert agreement(truth, truth, 5)["verdict"] == "pick"
    assert agreement(-truth, truth, 5)["verdict"] == "none"
    assert agreement([1.0, 2.0], [2.0, 1.0], 3)["verdict"] == "unknown"


class Trainer:
    """A stand-alone stand-in with a known objective; raises on a chosen call, as a kill would."""

    def __init__(self, kill_at: int | None = None) -> None:
        self.toy = ToyOracle(SPACE, seed=4)
        self.calls: list[str] = []
        self.kill_at = kill_at
        self.closed = False

    def evaluate(self, archs: Sequence[Architecture]) -> list[Evaluation]:
        if self.kill_at is not None and len(self.calls) == self.kill_at:
            raise KeyboardInterrupt
        self.calls.extend(a.string for a in archs)
        return [Evaluation(arch=e.arch, objective=e.objective, metrics=e.metrics, reported={"test_acc": 1.0},
                           cost=1.0) for e in self.toy.evaluate(archs)]

    def close(self) -> None:
        self.closed = True


def _history(archs: Sequence[Architecture]) -> list[Evaluation]:
    toy = ToyOracle(SPACE, seed=4)
    rng = np.random.default_rng(3)
    # A supernet score that follows the true objective loosely.
    return [Evaluation(arch=a, objective=toy.true_objective(a) + 3.0 * float(rng.normal())) for a in archs]


def test_calibration_resumes_from_its_file_and_confirms_the_pick(tmp_path: Path) -> None:
    history = _history(_archs(40))
    path = tmp_path / "calibration.jsonl"
    first = Trainer(kill_at=2)
    with pytest.raises(KeyboardInterrupt):
        run_calibration(history, lambda: first, path, size=6, top=3)
    assert first.closed and len(path.read_text().splitlines()) == 2
    second = Trainer()
    got = run_calibration(history, lambda: second, path, size=6, top=3)
    assert len(second.calls) == 4 and not set(second.calls) & set(first.calls)  # nothing trained twice
    assert got["trained"] == 6 and not got["cut_by_budget"]
    rows = got["architectures"]
    truth = ToyOracle(SPACE, seed=4)
    for r in rows:
        assert r["standalone"] == pytest.approx(truth.true_objective(SPACE.parse(r["arch"])))
    candidates = [r for r in rows if r["candidate"]]
    assert sorted(r["supernet_rank"] for r in candidates) == [1, 2, 3]
    best = max(candidates, key=lambda r: r["standalone"])
    assert got["pick"]["arch"] == best["arch"] and got["pick"]["standalone"] == best["standalone"]
    assert got["kendall_tau"] == pytest.approx(
        stats.kendalltau([r["supernet"] for r in rows], [r["standalone"] for r in rows]).statistic
    )
    again = Trainer()
    assert run_calibration(history, lambda: again, path, size=6, top=3)["trained"] == 6
    assert again.calls == []  # all in the file: nothing to train


def test_calibration_stops_where_the_budget_ends(tmp_path: Path) -> None:
    trainer = Trainer()
    got = run_calibration(_history(_archs(30)), lambda: trainer, tmp_path / "c.jsonl", size=6, top=2,
                          seconds_left=2.5)
    assert len(trainer.calls) == 3 and got["trained"] == 3 and got["cut_by_budget"]


def test_a_supernet_search_is_calibrated_by_the_runner(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    from hydra import compose, initialize_config_dir

    from engine.cli import config_dir
    from engine.runner import ConfigError, format_summary, run_search

    base = ["oracle=supernet", "space=nb201", "dataset=synthetic", "dataset.num_samples=96", "dataset.num_classes=3",
            "dataset.shape=[1,6,6]", "supernet.epochs=1", "supernet.batch_size=16", "supernet.model={channels: 4}",
            "supernet.measure_latency=false", "budget.evaluations=8", "strategy=random",
            "calibration.size=4", "calibration.top=2", "calibration.oracle.epochs=2",
            "calibration.oracle.model={nb201: {channels: 4, cells: 1}}"]
    with initialize_config_dir(config_dir=config_dir(), version_base=None):
        summary = run_search(compose("config", overrides=base), tmp_path / "run")
        cal = summary["calibration"]
        assert cal["trained"] == 4 and cal["failed"] == 0 and cal["seconds"] > 0
        assert cal["verdict"] in {"pick", "prune", "none", "unknown"}
        assert cal["pick"]["arch"] in {r["arch"] for r in cal["architectures"] if r["candidate"]}
        assert json.loads((tmp_path / "run" / "summary.json").read_text())["calibration"] == cal
        assert len((tmp_path / "run" / "calibration.jsonl").read_text().splitlines()) == 4
        text = format_summary(summary)
        assert "verdict      " in text and "pick         " in text
        with pytest.raises(ConfigError, match=r"calibration\.top=5 is more than calibration\.size=4"):
            run_search(compose("config", overrides=[*base, "calibration.top=5"]), tmp_path / "bad")
        assert not (tmp_path / "bad").exists()
        with caplog.at_level("WARNING"):
            run_search(compose("config", overrides=["budget.evaluations=2", "calibration.size=3"]), tmp_path / "tab",
                       overrides=["calibration.size=3"])
        assert "calibration.* has no effect" in caplog.text
