"""Hardware costs: FLOPs match a hand count, latency is measured or taken from the user's table."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from engine.spaces import NB201Space
from oracles.hardware import HardwareCost, LatencyTable, count_flops, count_params, measure_latency

torch.set_num_threads(1)


def test_flops_match_a_hand_count() -> None:
    # 3x3 conv, 1 -> 2 channels, same padding, on 4x4: 2 * 16 outputs * 9 multiply-adds = 288 MACs = 576 FLOPs;
    # linear 32 -> 3: 96 MACs = 192 FLOPs.
    model = nn.Sequential(nn.Conv2d(1, 2, 3, padding=1, bias=False), nn.Flatten(), nn.Linear(32, 3))
    assert count_flops(model, (1, 4, 4)) == 576 + 192
    conv1d = nn.Conv1d(2, 4, 5, padding=2, bias=False)  # 4 * 10 outputs * (2 * 5) MACs = 400 MACs
    assert count_flops(conv1d, (2, 10)) == 800
    assert count_params(model) == 18 + 32 * 3 + 3


def test_counting_and_timing_leave_the_model_unchanged() -> None:
    model = nn.Sequential(nn.Conv2d(1, 2, 3, padding=1), nn.BatchNorm2d(2), nn.Flatten(), nn.Linear(32, 3))
    model.train()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    count_flops(model, (1, 4, 4))
    ms = measure_latency(model, (1, 4, 4), batch_size=4, device="cpu", min_run_time=0.01)
    assert ms > 0 and np.isfinite(ms)
    assert model.training
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    with pytest.raises(ValueError, match="batch_size must be a positive integer"):
        measure_latency(model, (1, 4, 4), batch_size=0)


def test_hardware_cost_of_cells_and_the_latency_table(tmp_path: Path) -> None:
    space = NB201Space()
    heavy = space.parse(
        "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|nor_conv_3x3~0|nor_conv_3x3~1|nor_conv_3x3~2|"
    )
    light = space.parse("|skip_connect~0|+|none~0|skip_connect~1|+|none~0|none~1|skip_connect~2|")
    measured = HardwareCost(space, (1, 8, 8), 10, {"channels": 4}, min_run_time=0.01)
    h, lt = measured(heavy), measured(light)
    assert h["flops"] > lt["flops"] and h["params"] > lt["params"]
    assert h["latency_ms"] > 0
    table = tmp_path / "lat.csv"
    table.write_text(f"arch,latency_ms\n{heavy.string},12.5\n{light.string},3.0\n")
    tabled = HardwareCost(space, (1, 8, 8), 10, {"channels": 4}, latency_table=str(table))
    assert tabled(heavy)["latency_ms"] == 12.5 and tabled(light)["latency_ms"] == 3.0
    other = space.parse("|avg_pool_3x3~0|+|none~0|skip_connect~1|+|none~0|none~1|skip_connect~2|")
    with pytest.raises(KeyError, match="has no row for"):
        tabled(other)
    off = HardwareCost(space, (1, 8, 8), 10, {"channels": 4}, latency=False)
    assert "latency_ms" not in off(light)


def test_latency_table_rejects_bad_files(tmp_path: Path) -> None:
    space = NB201Space()
    with pytest.raises(ValueError, match="table file not found"):
        LatencyTable(space, tmp_path / "none.csv")
    bad = tmp_path / "bad.csv"
    bad.write_text("arch,latency_ms\n|skip_connect~0|+|none~0|skip_connect~1|+|none~0|none~1|skip_connect~2|,fast\n")
    with pytest.raises(ValueError, match="line 2, column 'latency_ms': not a number"):
        LatencyTable(space, bad)
    nocol = tmp_path / "nocol.csv"
    nocol.write_text("arch,ms\n")
    with pytest.raises(ValueError, match="has no column 'latency_ms'"):
        LatencyTable(space, nocol)
