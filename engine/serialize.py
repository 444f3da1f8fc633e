"""JSON encoding for strategy states and journal rows, without pickle.

Strategy states hold plain values, numpy arrays and architectures; they are
stored as tagged JSON so that loading a journal never executes code.
"""

from __future__ import annotations

import base64
import json
from typing import Any

import numpy as np

from engine.spaces import Architecture


def _encode(obj: Any) -> Any:
    if isinstance(obj, Architecture):
        return {"__arch__": [obj.space, list(obj.decisions), obj.string]}
    if isinstance(obj, np.ndarray):
        arr = np.ascontiguousarray(obj)
        return {
            "__ndarray__": base64.b64encode(arr.tobytes()).decode("ascii"),
            "dtype": arr.dtype.str,
            "shape": list(arr.shape),
        }
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, tuple):
        return {"__tuple__": [_encode(x) for x in obj]}
    if isinstance(obj, dict):
        if not all(isinstance(k, str) for k in obj):
            return {"__items__": [[_encode(k), _encode(v)] for k, v in obj.items()]}
        return {k: _encode(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_encode(x) for x in obj]
    if obj is None or isinstance(obj, (str, int, float, bool)):
        return obj
    raise TypeError(f"cannot serialise {type(obj).__name__} in a strategy state")


def _decode(obj: Any) -> Any:
    if isinstance(obj, list):
        return [_decode(x) for x in obj]
    if not isinstance(obj, dict):
        return obj
    if "__arch__" in obj:
        space, decisions, string = obj["__arch__"]
        return Architecture(space, tuple(decisions), string)
    if "__ndarray__" in obj:
        dtype = np.dtype(obj["dtype"])
        if dtype.hasobject:
            raise ValueError("object arrays are not allowed in a stored state")
        data = base64.b64decode(obj["__ndarray__"])
        return np.frombuffer(data, dtype=dtype).reshape(obj["shape"]).copy()
    if "__tuple__" in obj:
        return tuple(_decode(x) for x in obj["__tuple__"])
    if "__items__" in obj:
        return {_decode(k): _decode(v) for k, v in obj["__items__"]}
    return {k: _decode(v) for k, v in obj.items()}


def dumps(obj: Any) -> str:
    """Serialise plain values, tuples, numpy arrays and architectures to JSON text."""
    return json.dumps(_encode(obj), separators=(",", ":"), allow_nan=True)


def loads(text: str) -> Any:
    """Inverse of :func:`dumps`."""
    return _decode(json.loads(text))
