"""Conformance checks for search spaces, re-exported by :mod:`engine.testing`.

A space author checks a new space with one call::

    from engine.testing import check_space
    check_space(MySpace(...))          # raises AssertionError naming what broke

Strategies only ever use the :class:`~engine.spaces.SearchSpace` API, so these are
the properties every strategy relies on: strings are canonical and round-trip,
the operators stay inside the space and return canonical architectures, the
encodings have a fixed shape and are deterministic, and sampling reaches every
option. Each check draws from its own generator, so a failure is reproducible.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from engine.spaces._base import Architecture, SearchSpace

DEFAULT_SAMPLES = 300
ENUMERATE_LIMIT = 20_000
SMALL_SPACE = 2_000  # spaces up to this size are enumerated to learn which options their members use


def _draw(space: SearchSpace, n: int, seed: int) -> list[Architecture]:
    rng = np.random.default_rng(seed)
    return [space.sample(rng) for _ in range(n)]


def _member(space: SearchSpace, arch: object, what: str) -> None:
    """``arch`` is a canonical architecture of ``space`` whose string is its canonical string."""
    if not isinstance(arch, Architecture):
        raise AssertionError(f"space {space.name!r}: {what} returned {type(arch).__name__}, not an Architecture")
    if not space.contains(arch):
        raise AssertionError(f"space {space.name!r}: {what} returned {arch.string!r}, not a canonical member")
    if arch.string != space.format(arch.decisions):
        raise AssertionError(
            f"space {space.name!r}: {what} returned string {arch.string!r} but its decisions format as"
            f" {space.format(arch.decisions)!r}"
        )


def check_space_roundtrip(space: SearchSpace, *, samples: int = DEFAULT_SAMPLES, seed: int = 0) -> None:
    """``parse(format(a)) == a`` with equal hashes; two different architectures never share a string."""
    seen: dict[str, tuple[int, ...]] = {}
    for arch in _draw(space, samples, seed):
        _member(space, arch, "sample()")
        try:
            again = space.parse(arch.string)
        except Exception as exc:
            raise AssertionError(
                f"space {space.name!r}: parse() refused its own string {arch.string!r}: {exc}"
            ) from exc
        if again != arch or hash(again) != hash(arch) or again.string != arch.string:
            raise AssertionError(
                f"space {space.name!r}: parse({arch.string!r}) gave {again.string!r} {again.decisions},"
                f" not {arch.decisions}"
            )
        other = seen.setdefault(arch.string, arch.decisions)
        if other != arch.decisions:
            raise AssertionError(
                f"space {space.name!r}: decisions {other} and {arch.decisions} both format as {arch.string!r}"
            )


def check_space_errors(space: SearchSpace) -> None:
    """Malformed strings and decision lists raise ValueError (what a CSV or a journal may hold)."""
    good = space.sample(np.random.default_rng(0))
    bad_strings = ["", "?", good.string + ",", good.string[: max(1, len(good.string) // 2)] + "#", "\n"]
    for text in bad_strings:
        try:
            arch = space.parse(text)
        except ValueError:
            continue
        except Exception as exc:
            raise AssertionError(
                f"space {space.name!r}: parse({text!r}) raised {type(exc).__name__}, not ValueError: {exc}"
            ) from exc
        if arch.string != text:
            raise AssertionError(f"space {space.name!r}: parse({text!r}) accepted a malformed string as {arch}")
    n = len(space.decisions)
    for decisions in ([0] * (n + 1), [0] * max(0, n - 1), [space.decisions[0].n] + [0] * (n - 1), [-1] * n):
        try:
            space.architecture(decisions)
        except ValueError:
            continue
        raise AssertionError(f"space {space.name!r}: architecture({decisions}) was accepted")


def check_space_operators(space: SearchSpace, *, samples: int = DEFAULT_SAMPLES, seed: int = 0) -> None:
    """mutate, crossover and neighbours stay in the space, canonical; a mutation is one of the neighbours."""
    rng = np.random.default_rng(seed)
    archs = _draw(space, samples, seed + 1)
    for a, b in zip(archs, archs[1:] + archs[:1]):
        nbs = space.neighbours(a)
        for nb in nbs:
            _member(space, nb, f"neighbours({a.string!r})")
        if a in nbs:
            raise AssertionError(f"space {space.name!r}: {a.string!r} is among its own neighbours")
        if len(set(nbs)) != len(nbs):
            raise AssertionError(f"space {space.name!r}: neighbours({a.string!r}) repeats an architecture")
        if space.size > 1:
            m = space.mutate(a, rng)
            _member(space, m, f"mutate({a.string!r})")
            if m == a:
                raise AssertionError(f"space {space.name!r}: mutate({a.string!r}) returned the same architecture")
            if m not in set(nbs):
                raise AssertionError(
                    f"space {space.name!r}: mutate({a.string!r}) gave {m.string!r}, which is not one of its neighbours"
                )
        c = space.crossover(a, b, rng)
        _member(space, c, f"crossover({a.string!r}, {b.string!r})")
    if space.neighbours(archs[0]) != space.neighbours(archs[0]):
        raise AssertionError(f"space {space.name!r}: neighbours() is not in a fixed order")


def check_space_encoding(space: SearchSpace, *, samples: int = DEFAULT_SAMPLES, seed: int = 0) -> None:
    """Every encoding: a finite 1-D float vector of one length, deterministic; ``onehot`` tells archs apart."""
    archs = _draw(space, samples, seed + 2)
    if not space.encodings:
        raise AssertionError(f"space {space.name!r} declares no encoding")
    for enc in space.encodings:
        first = np.asarray(space.encode(archs[0], enc))
        seen: dict[bytes, Architecture] = {}
        for arch in archs:
            x = space.encode(arch, enc)
            if not isinstance(x, np.ndarray) or x.ndim != 1 or x.shape != first.shape:
                raise AssertionError(
                    f"space {space.name!r}: encode({arch.string!r}, {enc!r}) has shape"
                    f" {getattr(x, 'shape', None)}, not {first.shape}"
                )
            if not np.issubdtype(x.dtype, np.floating) or not np.isfinite(x).all():
                raise AssertionError(f"space {space.name!r}: encode(..., {enc!r}) is not a finite float vector")
            if not np.array_equal(x, space.encode(space.parse(arch.string), enc)):
                raise AssertionError(f"space {space.name!r}: encode({arch.string!r}, {enc!r}) is not deterministic")
            other = seen.setdefault(x.tobytes(), arch)
            if enc == "onehot" and other != arch:
                raise AssertionError(
                    f"space {space.name!r}: {other.string!r} and {arch.string!r} have the same one-hot encoding"
                )
    try:
        space.encode(archs[0], "no-such-encoding")
    except ValueError:
        pass
    else:
        raise AssertionError(f"space {space.name!r}: an unknown encoding was accepted instead of a ValueError")


def check_space_sampling(space: SearchSpace, *, samples: int = DEFAULT_SAMPLES, seed: int = 0) -> None:
    """Sampling is deterministic per generator and reaches every option of every decision.

    A small space (one restricted to a table's cells) need only reach the options its members use.
    """
    n = max(samples, 30 * max(d.n for d in space.decisions))
    archs = _draw(space, n, seed + 3)
    if archs != _draw(space, n, seed + 3):
        raise AssertionError(f"space {space.name!r}: sample() with equal generators gave different architectures")
    members = list(space.enumerate()) if space.size <= SMALL_SPACE else None
    for i, dec in enumerate(space.decisions):
        seen = {a.decisions[i] for a in archs if space.active(a.decisions)[i]}
        used = range(dec.n) if members is None else {a.decisions[i] for a in members if space.active(a.decisions)[i]}
        missing = [dec.options[o] for o in used if o not in seen]
        if missing:
            raise AssertionError(
                f"space {space.name!r}: {n} samples never chose {missing} for decision {dec.name!r}"
            )


def check_space_size(space: SearchSpace, *, limit: int = ENUMERATE_LIMIT) -> None:
    """``enumerate()`` yields ``size`` distinct canonical members (spaces up to ``limit`` architectures)."""
    if space.size > limit:
        return
    archs = list(space.enumerate())
    for a in archs:
        _member(space, a, "enumerate()")
    if len(set(archs)) != len(archs) or len(archs) != space.size:
        raise AssertionError(
            f"space {space.name!r}: enumerate() gave {len(archs)} architectures ({len(set(archs))} distinct),"
            f" size says {space.size}"
        )


SPACE_CHECKS: dict[str, Callable[..., None]] = {
    "roundtrip": check_space_roundtrip,
    "errors": check_space_errors,
    "operators": check_space_operators,
    "encoding": check_space_encoding,
    "sampling": check_space_sampling,
    "size": check_space_size,
}
"""Every space check by name; each takes ``(space, **options)`` and raises AssertionError."""


def check_space(space: SearchSpace, *, skip: Sequence[str] = ()) -> None:
    """Run every check of :data:`SPACE_CHECKS` on ``space`` except those in ``skip``.

    Raises:
        AssertionError: naming the space and what broke.
        ValueError: for an unknown name in ``skip``.
    """
    unknown = sorted(set(skip) - set(SPACE_CHECKS))
    if unknown:
        raise ValueError(f"unknown space checks {unknown}; known: {sorted(SPACE_CHECKS)}")
    if not isinstance(space, SearchSpace):
        raise AssertionError(f"{space!r} is not an engine.spaces.SearchSpace")
    for name, check in SPACE_CHECKS.items():
        if name not in skip:
            check(space)
