"""Supernet checkpoints: atomic writes, metadata checked on load, ``weights_only`` loading.

A checkpoint holds the training state at the end of an epoch (weights, optimizer,
scheduler, sampler and RNG states) plus metadata naming the space, the training
settings and the data fingerprint. Loading one trained for anything else is
refused with a message naming what differs, because silently evaluating
architectures with weights from another space or dataset gives plausible-looking
but meaningless accuracies.
"""

from __future__ import annotations

import os
from collections.abc import Collection, Mapping
from pathlib import Path
from typing import Any

import torch

FORMAT = 1


class CheckpointMismatch(ValueError):
    """A checkpoint that belongs to another space, supernet config or dataset."""


def save_atomic(state: Mapping[str, Any], path: str | os.PathLike[str]) -> None:
    """Write ``state`` to ``path`` so that a kill leaves either the old or the new file, never half of one."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.tmp{os.getpid()}")
    try:
        with open(tmp, "wb") as fh:
            torch.save(dict(state), fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, target)
    finally:
        if tmp.exists():
            tmp.unlink()


def _describe(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def mismatches(stored: Mapping[str, Any], expected: Mapping[str, Any], prefix: str = "") -> list[str]:
    """Human-readable differences between two metadata mappings (nested keys dotted)."""
    out = []
    for key in sorted(set(stored) | set(expected)):
        a, b = stored.get(key, "<missing>"), expected.get(key, "<missing>")
        if isinstance(a, Mapping) and isinstance(b, Mapping):
            out.extend(mismatches(a, b, f"{prefix}{key}."))
        elif a != b:
            out.append(f"{prefix}{key} (checkpoint: {_describe(a)}, now: {_describe(b)})")
    return out


def load_checked(
    path: str | os.PathLike[str], meta: Mapping[str, Any], ignore: Collection[str] = ()
) -> dict[str, Any]:
    """Load a checkpoint with ``weights_only=True`` and check its metadata against ``meta``.

    Args:
        path: The checkpoint file.
        meta: The metadata it must carry.
        ignore: Dotted metadata keys not compared (e.g. the few-shot settings of a
            one-shot checkpoint re-used as the parent of a few-shot supernet).

    Raises:
        CheckpointMismatch: naming each differing field (space, supernet.<key>, data).
        ValueError: if the file is not a readable supernet checkpoint.
    """
    p = Path(path)
    try:
        state = torch.load(p, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises several types for corrupt or foreign files
        raise ValueError(f"cannot read supernet checkpoint {p}: {type(exc).__name__}: {exc}") from None
    if not isinstance(state, dict) or state.get("format") != FORMAT or "meta" not in state:
        raise ValueError(f"{p} is not a supernet checkpoint of this version (format {FORMAT})")
    diff = [d for d in mismatches(state["meta"], meta) if d.split(" ", 1)[0] not in set(ignore)]
    if diff:
        raise CheckpointMismatch(
            f"refusing supernet checkpoint {p}: it was trained for another setup; differs in "
            + "; ".join(diff)
            + ". Delete it or set oracle.checkpoint to another path."
        )
    return state
