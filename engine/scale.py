"""The scale of an accuracy, said wherever one is printed.

The shipped NAS-Bench-201 table gives accuracies in %, the torch oracles as fractions
of 1; a user comparing a summary, a report and a ``nas-gap`` table must never have to
guess which one a figure is on.
"""

from __future__ import annotations

import math
from collections.abc import Iterable


def accuracy_scale(name: str, values: Iterable[float]) -> str | None:
    """``"in %"`` or ``"a fraction of 1"`` for a metric whose name says accuracy; ``None`` otherwise.

    The scale is read off the values (any finite one above 1 means %), because a user's
    own table may hold either and nothing else says which.
    """
    if "acc" not in name.lower():
        return None
    finite = [abs(float(v)) for v in values if isinstance(v, (int, float)) and math.isfinite(float(v))]
    if not finite:
        return None
    return "in %" if max(finite) > 1.0 else "a fraction of 1"


def with_scale(name: str, values: Iterable[float]) -> str:
    """``"val_acc (in %)"``: the name with its scale, or the name alone when it is no accuracy."""
    scale = accuracy_scale(name, values)
    return f"{name} ({scale})" if scale else name
