"""Mutation testing of the modules whose numbers users trust (issue 15, item 2).

Each mutant is one small AST-level change to one module (a comparison operator
swapped, ``+`` for ``-``, a constant off by one, a condition negated, ``and``
for ``or``, a slice bound moved, a return value replaced by ``None``, one term
of a guard dropped, ``x`` read where ``y`` was meant, ``min`` for ``max``),
written into a private copy of the repository under the system temporary
directory; the module's fast tests then run there in a forked child under a
timeout. A mutant is *killed* when a test fails (or the run times out) and
*survives* when every test passes. The source tree is never written to.

    python bench/mutation.py                   # every module below
    python bench/mutation.py gap search        # modules by (part of) their path
    python bench/mutation.py gap --list        # print the mutants, run nothing
    python bench/mutation.py gap --survivors   # print each survivor's diff line
    python bench/mutation.py --json out.json   # machine-readable results

Not part of the regular test run (minutes per module on two cores). Mutants
known to be equivalent (no test could tell them from the original) are listed
in ``EQUIVALENT`` with the reason, and counted apart from the kill rate; the
results and that list are in ``bench/results/mutation.md``.

Tests that fail on the unmutated copy (a tree someone is editing) are
deselected for that module, with a warning, so that they do not count as kills.
"""

from __future__ import annotations

import argparse
import ast
import contextlib
import copy
import gc
import importlib
import importlib.metadata
import json
import os
import shutil
import signal
import sys
import tempfile
import time
from collections import Counter
from dataclasses import asdict, dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

# The fast tests that exercise each module; the first failure kills a mutant (pytest -x),
# so the most sensitive tests come first.
MODULES: dict[str, list[str]] = {
    "engine/gap.py": [
        "tests/test_gap_values.py",
        "tests/test_gap.py",
    ],
    "engine/search.py": [
        "tests/test_mut_search.py",
        "tests/test_search.py",
    ],
    "engine/journal.py": [
        "tests/test_mut_journal.py",
        "tests/test_journal.py",
        "tests/test_search.py::test_evaluations_are_journaled_before_the_strategy_is_told",
        "tests/test_search.py::test_resume_in_process_matches_uninterrupted_run",
        "tests/test_search.py::test_resume_of_a_finished_search_evaluates_nothing",
    ],
    "oracles/tabular.py": [
        "tests/test_mut_tabular.py",
        "tests/test_own_table.py",
        "tests/test_search.py::test_report_only_metrics_never_reach_the_strategy",
    ],
    "engine/strategies/_base.py": [
        "tests/test_mut_strategy_base.py",
        "tests/test_search.py",
        "tests/test_conformance.py::test_suite_catches_broken_strategies",
        *(f"tests/test_conformance.py::test_registered_strategy_conforms[{name}-nb201-{check}]"
          for name in ("random", "regularized_evolution", "local_search")
          for check in ("contract", "failures", "budget", "determinism", "state_roundtrip", "resume")),
    ],
}

# The test files written to kill this harness's survivors (``--existing-only`` leaves them out, for the
# kill rate before them).
NEW_TESTS = ("tests/test_gap_values.py", "tests/test_mutation_kills.py", "tests/test_mut_")

# Mutants no test can tell from the original, keyed by module -> (source line, stripped; mutation) -> reason.
# Keyed by the text of the line rather than its number, so the list survives edits elsewhere in the file.
EQUIVALENT: dict[str, dict[tuple[str, str], str]] = {
    'engine/gap.py': {
        ('return float(value) if value is not None and math.isfinite(value) else float("nan")', 'boolop: and -> or'):
            'unreachable: the callers return nan before scipy could give None or a non-finite value',
        ('return float(value) if value is not None and math.isfinite(value) else float("nan")', 'drop-term: drop value is not None'):  # noqa: E501
            'unreachable: the callers return nan before scipy could give None or a non-finite value',
        ('return float(value) if value is not None and math.isfinite(value) else float("nan")', 'drop-term: drop math.isfinite(value)'):  # noqa: E501
            'unreachable: the callers return nan before scipy could give None or a non-finite value',
        ('if a.size < 2 or np.ptp(a) == 0 or np.ptp(b) == 0:', 'drop-term: drop np.ptp(a) == 0'):
            "scipy's kendalltau/spearmanr give nan themselves below 2 points or for a constant vector; a and b have one shape",  # noqa: E501
        ('if a.size < 2 or np.ptp(a) == 0 or np.ptp(b) == 0:', 'drop-term: drop np.ptp(b) == 0'):
            "scipy's kendalltau/spearmanr give nan themselves below 2 points or for a constant vector; a and b have one shape",  # noqa: E501
        ('if a.size < 2 or np.ptp(a) == 0 or np.ptp(b) == 0:', 'swap-name: a -> b'):
            "scipy's kendalltau/spearmanr give nan themselves below 2 points or for a constant vector; a and b have one shape",  # noqa: E501
        ('if a.size < 2 or np.ptp(a) == 0 or np.ptp(b) == 0:', 'constant: 2 -> 1'):
            "scipy's kendalltau/spearmanr give nan themselves below 2 points or for a constant vector; a and b have one shape",  # noqa: E501
        ('if a.size < 2 or np.ptp(a) == 0 or np.ptp(b) == 0:', 'swap-name: a -> b #1'):
            "scipy's kendalltau/spearmanr give nan themselves below 2 points or for a constant vector; a and b have one shape",  # noqa: E501
        ('if a.size < 2 or np.ptp(a) == 0 or np.ptp(b) == 0:', 'constant: 0 -> -1'):
            "scipy's kendalltau/spearmanr give nan themselves below 2 points or for a constant vector; a and b have one shape",  # noqa: E501
        ('if a.size < 2 or np.ptp(a) == 0 or np.ptp(b) == 0:', 'swap-name: b -> a'):
            "scipy's kendalltau/spearmanr give nan themselves below 2 points or for a constant vector; a and b have one shape",  # noqa: E501
        ('if a.size < 2 or np.ptp(a) == 0 or np.ptp(b) == 0:', 'constant: 0 -> -1 #1'):
            "scipy's kendalltau/spearmanr give nan themselves below 2 points or for a constant vector; a and b have one shape",  # noqa: E501
        ('if a.size < 2 or np.ptp(a) == 0 or np.ptp(b) == 0:', 'swap-name: a -> b #2'):
            "scipy's kendalltau/spearmanr give nan themselves below 2 points or for a constant vector; a and b have one shape",  # noqa: E501
        ('if a.size < 2 or np.ptp(a) == 0 or np.ptp(b) == 0:', 'constant: 2 -> 1 #1'):
            "scipy's kendalltau/spearmanr give nan themselves below 2 points or for a constant vector; a and b have one shape",  # noqa: E501
        ('if not 1 <= k <= a.size:', 'swap-name: a -> b'):
            'a and b have one shape (checked by _vectors)',
        ('k = max(2, math.ceil(fraction * a.size))', 'swap-name: a -> b'):
            'a and b have one shape (checked by _vectors)',
        ('idx = _top_indices(b, min(k, a.size))', 'swap-name: a -> b'):
            'a and b have one shape (checked by _vectors)',
        ('if a.size == 0:', 'swap-name: a -> b'):
            'a and b have one shape (checked by _vectors)',
        ('pick = int(_top_indices(a, 1)[0])', 'constant: 1 -> 2'):
            'the first of the top 1 is the first of the top 2, and the only element is also the last',
        ('pick = int(_top_indices(a, 1)[0])', 'constant: 0 -> -1'):
            'the first of the top 1 is the first of the top 2, and the only element is also the last',
        ('exp_m = np.array(rows, dtype=float).reshape(len(kept), width or 0)', 'constant: 0 -> 1'):
            'width is None only with no architecture kept, which measure_gap refuses next (fewer than 3)',
        ('return False', 'return: return False -> return None'):
            'None is as false as False for the only caller (a filter)',
        ('k = top_k if top_k is not None else max(1, math.ceil(top_fraction * len(keys)))', 'constant: 1 -> 0'):
            'the next line clamps k to at least 1',
        ('noise = pairwise_tau(seeds) if len(seeds) >= 2 else float("nan")', 'constant: 2 -> 1'):
            'pairwise_tau of a single seed is nan already',
        ('if len(seeds) >= 2:', 'constant: 2 -> 1'):
            'pairwise_tau of a single seed is nan already',
    },
    'engine/search.py': {
        ('return ev.status is Status.FAILED and bool(ev.error) and any(s in (ev.error or "") for s in self.errors)', 'drop-term: drop bool(ev.error)'):  # noqa: E501
            "bool(ev.error) and (ev.error or '') guard each other; retry.errors refuses an empty pattern",
        ('return ev.status is Status.FAILED and bool(ev.error) and any(s in (ev.error or "") for s in self.errors)', 'drop-term: drop ""'):  # noqa: E501
            "bool(ev.error) and (ev.error or '') guard each other; retry.errors refuses an empty pattern",
        ('if b.wall_seconds is not None and self.wall_seconds >= b.wall_seconds:', 'compare: >= -> >'):
            'float equality of two wall-clock readings does not happen',
        ('told_upto = 0', 'constant: 0 -> -1'):
            'row ids start at 1: id > -1 selects what id > 0 does',
        ('ok = [e for e in self.history if e.ok and e.fidelity == final and not e.cached]', 'drop-term: drop not e.cached'):  # noqa: E501
            'a cached evaluation repeats an uncached one with the same objective: the best is the same',
    },
    'engine/journal.py': {
        ('def _acquire_lock(lock_path: Path, journal_path: Path, attempts: int = 100) -> int:', 'constant: 100 -> 101'):
            'the number of lock attempts: no test can tell 99 from 100 tries without timing',
        ('def _acquire_lock(lock_path: Path, journal_path: Path, attempts: int = 100) -> int:', 'constant: 100 -> 99'):
            'the number of lock attempts: no test can tell 99 from 100 tries without timing',
        ('fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o644)', 'drop-term: drop left of |: os.O_RDWR | os.O_CREAT'):
            'flock works on a read-only descriptor on Linux',
        ('self._lock_fd = -1', 'unary: drop -'):
            'overwritten on the next line; if _acquire_lock raises, no object exists to close',
        ('self._lock_fd = -1', 'constant: 1 -> 2'):
            'overwritten on the next line; if _acquire_lock raises, no object exists to close',
        ('self._lock_fd = -1', 'constant: 1 -> 0'):
            'overwritten on the next line; if _acquire_lock raises, no object exists to close',
        ('db = sqlite3.connect(f"{self.path.resolve().as_uri()}?mode=ro", uri=True, isolation_level=None)', 'constant: True -> False'):  # noqa: E501
            "this Python's sqlite3 opens URI filenames whatever uri= says (SQLITE_USE_URI build)",
        ('tables = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type = \'table\'")}', 'constant: 0 -> -1'):  # noqa: E501
            'a one-column row: [0] and [-1] are the same element',
        ('version = None if row is None else json.loads(row[0])', 'constant: 0 -> -1'):
            'a one-column row: [0] and [-1] are the same element',
        ('problems = [r[0] for r in db.execute("PRAGMA quick_check")]', 'constant: 0 -> -1'):
            'a one-column row: [0] and [-1] are the same element',
        ('if self._lock_fd >= 0:', 'compare: >= -> >'):
            "descriptor 0 is stdin, never the lock's",
        ('if self._lock_fd >= 0:', 'constant: 0 -> 1'):
            "descriptor 0 is stdin, never the lock's",
        ('self._lock_fd = -1', 'constant: 1 -> 2 #1'):
            'any negative value means no lock',
        ('return default if row is None else json.loads(row[0])', 'constant: 0 -> -1'):
            'a one-column row: [0] and [-1] are the same element',
        ('return int(self._db.execute("SELECT COALESCE(MAX(id), 0) FROM evaluations").fetchone()[0])', 'constant: 0 -> -1'):  # noqa: E501
            'a one-column row: [0] and [-1] are the same element',
        ('def evaluations(self, after: int = 0, upto: int | None = None) -> Iterator[tuple[int, Evaluation]]:', 'constant: 0 -> -1'):  # noqa: E501
            'row ids start at 1: id > -1 selects what id > 0 does',
        ('return int(self._db.execute("SELECT COUNT(*) FROM evaluations").fetchone()[0])', 'constant: 0 -> -1'):
            'a one-column row: [0] and [-1] are the same element',
    },
    'oracles/tabular.py': {
        ('@functools.lru_cache(maxsize=8)', 'constant: 8 -> 9'):
            'the size of a parse cache: speed only',
        ('@functools.lru_cache(maxsize=8)', 'constant: 8 -> 7'):
            'the size of a parse cache: speed only',
        ('if len(_PARSED) >= 8:', 'negate: len(_PARSED) >= 8 -> not (...)'):
            'the bound of a parse cache: speed only',
        ('if len(_PARSED) >= 8:', 'compare: >= -> >'):
            'the bound of a parse cache: speed only',
        ('if len(_PARSED) >= 8:', 'compare: >= -> <'):
            'the bound of a parse cache: speed only',
        ('if len(_PARSED) >= 8:', 'constant: 8 -> 9'):
            'the bound of a parse cache: speed only',
        ('if len(_PARSED) >= 8:', 'constant: 8 -> 7'):
            'the bound of a parse cache: speed only',
        ('return False', 'return: return False -> return None'):
            'None is as false as False for the only caller',
    },
    'engine/strategies/_base.py': {
        ('def sample_new(self, fidelity: str = DEFAULT_FIDELITY, tries: int = 100) -> Architecture:', 'constant: 100 -> 101'):  # noqa: E501
            'the number of re-draws before giving up on a new architecture: no test can tell 99 from 100 without a space built for it',  # noqa: E501
        ('def sample_new(self, fidelity: str = DEFAULT_FIDELITY, tries: int = 100) -> Architecture:', 'constant: 100 -> 99'):  # noqa: E501
            'the number of re-draws before giving up on a new architecture: no test can tell 99 from 100 without a space built for it',  # noqa: E501
    },
}

# Third-party modules imported once in the parent, so that each forked child starts in milliseconds.
PRELOAD = ("numpy", "scipy.stats", "torch", "hypothesis", "hypothesis.strategies", "omegaconf", "hydra", "hydra.utils",
           "sklearn", "deap", "gymnasium", "pytest")

# Pairs of names a slip of the pen confuses (a local is swapped only when its partner is bound in the same function).
PAIRS = {"a": "b", "b": "a", "x": "y", "y": "x", "u": "v", "v": "u", "lo": "hi", "hi": "lo"}
BUILTIN_PAIRS = {"min": "max", "max": "min", "any": "all", "all": "any"}

CMP_SWAPS: dict[type, tuple[type, ...]] = {
    ast.Lt: (ast.LtE, ast.Gt),
    ast.LtE: (ast.Lt, ast.Gt),
    ast.Gt: (ast.GtE, ast.Lt),
    ast.GtE: (ast.Gt, ast.Lt),
    ast.Eq: (ast.NotEq,),
    ast.NotEq: (ast.Eq,),
    ast.In: (ast.NotIn,),
    ast.NotIn: (ast.In,),
    ast.Is: (ast.IsNot,),
    ast.IsNot: (ast.Is,),
}
BIN_SWAPS: dict[type, tuple[type, ...]] = {
    ast.Add: (ast.Sub,),
    ast.Sub: (ast.Add,),
    ast.Mult: (ast.Div,),
    ast.Div: (ast.Mult,),
    ast.FloorDiv: (ast.Div,),
    ast.BitOr: (ast.BitAnd,),
    ast.BitAnd: (ast.BitOr,),
}
OP_TEXT = {
    ast.Lt: "<", ast.LtE: "<=", ast.Gt: ">", ast.GtE: ">=", ast.Eq: "==", ast.NotEq: "!=", ast.In: "in",
    ast.NotIn: "not in", ast.Is: "is", ast.IsNot: "is not", ast.Add: "+", ast.Sub: "-", ast.Mult: "*",
    ast.Div: "/", ast.FloorDiv: "//", ast.BitOr: "|", ast.BitAnd: "&", ast.And: "and", ast.Or: "or",
}


@dataclass
class Mutant:
    """One change to one module: bytes ``start:end`` of its source become ``replacement``."""

    module: str
    line: int
    op: str
    detail: str
    start: int
    end: int
    replacement: str
    line_text: str
    occurrence: int = 0
    status: str = ""  # killed | survived | timeout | equivalent
    seconds: float = 0.0

    @property
    def key(self) -> tuple[str, str]:
        detail = f"{self.op}: {self.detail}" + (f" #{self.occurrence}" if self.occurrence else "")
        return (self.line_text, detail)

    def describe(self) -> str:
        return f"{self.module}:{self.line} [{self.op}] {self.detail}    | {self.line_text}"


# -- mutant generation -----------------------------------------------------------------------------------------


class _Generator:
    def __init__(self, module: str, source: str) -> None:
        self.module = module
        self.source = source
        self.raw = source.encode()
        self.line_starts = [0]
        for line in self.raw.splitlines(keepends=True):
            self.line_starts.append(self.line_starts[-1] + len(line))
        self.lines = source.splitlines()
        self.mutants: list[Mutant] = []

    # positions are (line, UTF-8 byte column), as the AST gives them
    def _span(self, node: ast.AST) -> tuple[int, int]:
        start = self.line_starts[node.lineno - 1] + node.col_offset  # type: ignore[attr-defined]
        end = self.line_starts[node.end_lineno - 1] + node.end_col_offset  # type: ignore[attr-defined]
        return start, end

    def _text(self, node: ast.AST) -> str:
        s, e = self._span(node)
        return self.raw[s:e].decode()

    def add(self, node: ast.AST, op: str, detail: str, replacement: str, *, bare: bool = False) -> None:
        """Replace ``node``'s source by ``replacement`` (parenthesized unless ``bare``), keeping the line count."""
        s, e = self._span(node)
        lost = self.raw[s:e].count(b"\n") - replacement.count("\n")
        if not bare:
            replacement = f"({replacement}{chr(10) * max(0, lost)})"
        elif lost > 0:
            replacement += "\n" * lost if isinstance(node, ast.stmt) else ""
        self.mutants.append(
            Mutant(self.module, node.lineno, op, detail, s, e, replacement,  # type: ignore[attr-defined]
                   self.lines[node.lineno - 1].strip())  # type: ignore[attr-defined]
        )

    # -- walking ------------------------------------------------------------------
    def run(self) -> list[Mutant]:
        tree = ast.parse(self.source)
        self._body(tree.body, scope=set())
        seen: Counter[tuple[str, str]] = Counter()
        for m in self.mutants:
            key = m.key
            m.occurrence = seen[key]
            seen[key] += 1
        return self.mutants

    def _body(self, stmts: list[ast.stmt], scope: set[str]) -> None:
        for i, st in enumerate(stmts):
            if i == 0 and isinstance(st, ast.Expr) and isinstance(st.value, ast.Constant):
                continue  # docstring
            self._stmt(st, scope)

    def _stmt(self, st: ast.stmt, scope: set[str]) -> None:
        if isinstance(st, (ast.Import, ast.ImportFrom, ast.Raise, ast.Pass, ast.Global, ast.Nonlocal)):
            return
        if isinstance(st, ast.Assign) and any(isinstance(t, ast.Name) and t.id == "__all__" for t in st.targets):
            return
        if isinstance(st, ast.Expr) and _is_log_call(st.value):
            return
        if isinstance(st, (ast.FunctionDef, ast.AsyncFunctionDef)):
            for d in st.decorator_list:
                self._expr(d, scope)
            for d in [*st.args.defaults, *[d for d in st.args.kw_defaults if d is not None]]:
                self._expr(d, scope)
            self._body(st.body, scope | _bound_names(st))  # a closure sees its enclosing function's names
            return
        if isinstance(st, ast.ClassDef):
            for d in [*st.decorator_list, *st.bases]:
                self._expr(d, scope)
            self._body(st.body, set())
            return
        if isinstance(st, ast.AnnAssign):
            if st.value is not None:
                self._expr(st.value, scope)
            return
        if isinstance(st, ast.Return):
            if st.value is not None and not (isinstance(st.value, ast.Constant) and st.value.value is None):
                self.add(st.value, "return", f"return {_short(self._text(st.value))} -> return None", "None")
                self._expr(st.value, scope)
            return
        if isinstance(st, ast.AugAssign):
            for new in BIN_SWAPS.get(type(st.op), ()):
                if isinstance(st.op, (ast.BitOr, ast.BitAnd)):
                    continue
                mutated = copy.deepcopy(st)
                mutated.op = new()
                detail = f"{OP_TEXT[type(st.op)]}= -> {OP_TEXT[new]}="
                self.add(st, "augassign", detail, ast.unparse(mutated), bare=True)
            self._expr(st.value, scope)
            return
        if isinstance(st, (ast.If, ast.While)):
            self._negate(st.test)
            self._expr(st.test, scope)
            self._body(st.body, scope)
            self._body(st.orelse, scope)
            return
        if isinstance(st, ast.Assert):
            self._expr(st.test, scope)
            return
        for name, value in ast.iter_fields(st):
            if name in ("targets", "target"):  # what is assigned to is not mutated, what is assigned is
                continue
            self._field(value, scope)

    def _generic(self, node: ast.AST, scope: set[str]) -> None:
        if isinstance(node, ast.ExceptHandler):
            self._field(node.body, scope)
            return
        for _, value in ast.iter_fields(node):
            self._field(value, scope)

    def _field(self, value: object, scope: set[str]) -> None:
        if isinstance(value, list):
            for v in value:
                self._field(v, scope)
        elif isinstance(value, ast.stmt):
            self._stmt(value, scope)
        elif isinstance(value, ast.expr):
            self._expr(value, scope)
        elif isinstance(value, ast.AST):
            self._generic(value, scope)

    def _negate(self, test: ast.expr) -> None:
        self.add(test, "negate", f"{_short(self._text(test))} -> not (...)", f"not ({self._text(test)})")

    def _expr(self, node: ast.expr, scope: set[str]) -> None:
        if isinstance(node, (ast.JoinedStr, ast.Lambda)) or _is_log_call(node):
            return
        if isinstance(node, ast.Compare):
            for i, op in enumerate(node.ops):
                for new in CMP_SWAPS.get(type(op), ()):
                    mutated = copy.deepcopy(node)
                    mutated.ops[i] = new()
                    self.add(node, "compare", f"{OP_TEXT[type(op)]} -> {OP_TEXT[new]}", ast.unparse(mutated))
        elif isinstance(node, ast.BinOp):
            for new in BIN_SWAPS.get(type(node.op), ()):
                mutated = copy.deepcopy(node)
                mutated.op = new()
                self.add(node, "binop", f"{OP_TEXT[type(node.op)]} -> {OP_TEXT[new]}", ast.unparse(mutated))
            if isinstance(node.op, (ast.BitOr, ast.BitAnd)):  # a set union/intersection losing a term
                for side in ("left", "right"):
                    kept = getattr(node, "right" if side == "left" else "left")
                    self.add(node, "drop-term", f"drop {side} of {OP_TEXT[type(node.op)]}: {_short(self._text(node))}",
                             self._text(kept))
        elif isinstance(node, ast.BoolOp):
            other = ast.Or if isinstance(node.op, ast.And) else ast.And
            mutated = copy.deepcopy(node)
            mutated.op = other()
            self.add(node, "boolop", f"{OP_TEXT[type(node.op)]} -> {OP_TEXT[other]}", ast.unparse(mutated))
            for i, term in enumerate(node.values):
                rest = [self._text(v) for j, v in enumerate(node.values) if j != i]
                joiner = f" {OP_TEXT[type(node.op)]} "
                self.add(node, "drop-term", f"drop {_short(self._text(term))}", joiner.join(f"({r})" for r in rest))
        elif isinstance(node, ast.UnaryOp):
            if isinstance(node.op, (ast.Not, ast.USub)):
                sign = "not" if isinstance(node.op, ast.Not) else "-"
                self.add(node, "unary", f"drop {sign}", self._text(node.operand))
        elif isinstance(node, ast.IfExp):
            self._negate(node.test)
        elif isinstance(node, ast.Constant):
            v = node.value
            if isinstance(v, bool):
                self.add(node, "constant", f"{v} -> {not v}", str(not v))
            elif isinstance(v, int):
                self.add(node, "constant", f"{v} -> {v + 1}", str(v + 1))
                self.add(node, "constant", f"{v} -> {v - 1}", str(v - 1))
        elif isinstance(node, ast.Slice):
            for bound in ("lower", "upper"):
                b = getattr(node, bound)
                if b is None:
                    continue
                for delta in ("+ 1", "- 1"):
                    self.add(b, "slice", f"{bound} {_short(self._text(b))} {delta}", f"({self._text(b)}) {delta}")
                mutated = copy.deepcopy(node)
                setattr(mutated, bound, None)
                self.add(node, "slice", f"drop {bound} bound {_short(self._text(b))}", ast.unparse(mutated), bare=True)
            self._children(node, scope)
            return
        elif isinstance(node, (ast.ListComp, ast.SetComp, ast.DictComp, ast.GeneratorExp)):
            inner = scope | {n.id for g in node.generators for n in ast.walk(g.target) if isinstance(n, ast.Name)}
            for g in node.generators:  # the first iterable is evaluated outside; close enough for swapping names
                self._expr(g.iter, scope)
                for cond in g.ifs:
                    self._expr(cond, inner)
            for part in ("elt", "key", "value"):
                if hasattr(node, part):
                    self._expr(getattr(node, part), inner)
            return
        elif isinstance(node, ast.Name) and isinstance(node.ctx, ast.Load):
            partner = PAIRS.get(node.id)
            if partner is not None and partner in scope and node.id in scope:
                self.add(node, "swap-name", f"{node.id} -> {partner}", partner)
            elif node.id in BUILTIN_PAIRS and node.id not in scope:
                self.add(node, "swap-name", f"{node.id} -> {BUILTIN_PAIRS[node.id]}", BUILTIN_PAIRS[node.id])
        self._children(node, scope)

    def _children(self, node: ast.AST, scope: set[str]) -> None:
        for _, value in ast.iter_fields(node):
            self._field(value, scope)


_OWN_SCOPE = (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda, ast.ClassDef, ast.ListComp, ast.SetComp,
              ast.DictComp, ast.GeneratorExp)


def _stores(node: ast.AST) -> set[str]:
    """Names assigned in ``node``'s own scope (not in nested functions or comprehensions)."""
    out: set[str] = set()
    todo = list(ast.iter_child_nodes(node))
    while todo:
        n = todo.pop()
        if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Store):
            out.add(n.id)
        if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            out.add(n.name)
        if not isinstance(n, _OWN_SCOPE):
            todo.extend(ast.iter_child_nodes(n))
    return out


def _bound_names(fn: ast.FunctionDef | ast.AsyncFunctionDef) -> set[str]:
    a = fn.args
    names = {x.arg for x in [*a.posonlyargs, *a.args, *a.kwonlyargs]}
    names |= {x.arg for x in (a.vararg, a.kwarg) if x is not None}
    return names | _stores(fn)


def _is_log_call(node: ast.AST) -> bool:
    if not isinstance(node, ast.Call) or not isinstance(node.func, ast.Attribute):
        return False
    owner = node.func.value
    return isinstance(owner, ast.Name) and owner.id in ("_log", "logging", "log", "logger", "warnings")


def _short(text: str, width: int = 48) -> str:
    text = " ".join(text.split())
    return text if len(text) <= width else text[: width - 3] + "..."


def generate(module: str, source: str) -> list[Mutant]:
    """Every mutant of ``source`` (the text of ``module``), each one compiling."""
    out = []
    raw = source.encode()
    for m in _Generator(module, source).run():
        mutated = raw[: m.start] + m.replacement.encode() + raw[m.end:]
        try:
            compile(mutated, module, "exec")
        except SyntaxError:
            continue  # e.g. a negated constant in a position that must stay a literal
        if mutated == raw:
            continue
        out.append(m)
    return out


# -- running ---------------------------------------------------------------------------------------------------


def _make_copy() -> Path:
    """A private copy of the working tree (tracked and untracked files, no caches) with ``../shared`` beside it."""
    base = Path(tempfile.mkdtemp(prefix="nas-mutation-"))
    dest = base / ROOT.name
    ignore = shutil.ignore_patterns(".git", ".venv", "__pycache__", ".hypothesis", ".pytest_cache", ".benchmarks",
                                    "outputs", "multirun", "*.egg-info", ".mypy_cache", ".ruff_cache")
    shutil.copytree(ROOT, dest, ignore=ignore, symlinks=True)
    shared = ROOT.parent / "shared"
    if shared.exists():
        (base / "shared").symlink_to(shared)
    return dest


def _pytest_args(tests: list[str], deselect: list[str]) -> list[str]:
    # unraisableexception's gc.collect() calls cost seconds on a heap holding torch; nothing here needs them
    args = ["-x", "-q", "-p", "no:cacheprovider", "-p", "no:unraisableexception", "--no-header", "-m", "not slow",
            "-o", "addopts=", "-W", "ignore"]
    for d in deselect:
        args += ["--deselect", d]
    return args + tests


def _child(work: Path, args: list[str], report: str | None) -> int:
    os.setpgrp()
    os.chdir(work)
    sys.path.insert(0, str(work))
    fd = os.open(os.devnull, os.O_WRONLY)
    os.dup2(fd, 1)
    os.dup2(fd, 2)
    import pytest

    plugins: list[object] = []
    if report is not None:
        failed: list[str] = []

        class _Collect:
            def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
                if report.failed:
                    failed.append(report.nodeid)

        plugins.append(_Collect())
        rc = pytest.main([a for a in args if a != "-x"], plugins=plugins)
        Path(report).write_text(json.dumps(failed))
        return int(rc)
    import engine

    if not Path(engine.__file__).resolve().is_relative_to(work.resolve()):
        return 97  # the copy's modules must be the ones imported
    return int(pytest.main(args))


def run_tests(work: Path, args: list[str], timeout: float, report: str | None = None) -> tuple[str, float, int]:
    """Run pytest in a forked child in ``work``: ``(outcome, seconds, exit code)``."""
    start = time.monotonic()
    pid = os.fork()
    if pid == 0:
        rc = 98
        try:
            rc = _child(work, args, report)
        finally:
            os._exit(rc)
    deadline = start + timeout
    while True:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            rc = os.waitstatus_to_exitcode(status)
            return ("passed" if rc == 0 else "failed"), time.monotonic() - start, rc
        if time.monotonic() > deadline:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pid, signal.SIGKILL)  # the child's own process group (pytest may start subprocesses)
            os.waitpid(pid, 0)
            return "timeout", time.monotonic() - start, -9
        time.sleep(0.02)


def _preload() -> None:
    """Import the heavy third-party modules and pytest's plugins once, before the first fork."""
    for name in PRELOAD:
        with contextlib.suppress(ImportError):
            __import__(name)
    for ep in importlib.metadata.entry_points(group="pytest11"):
        with contextlib.suppress(Exception):
            importlib.import_module(ep.value.split(":")[0])
    gc.collect()
    gc.freeze()  # the children's collections then skip everything imported here


def _write(target: Path, source: bytes) -> None:
    """Write a module and drop its cached bytecode (a mutant of the same size in the same second would reuse it)."""
    target.write_bytes(source)
    for pyc in (target.parent / "__pycache__").glob(f"{target.stem}.*.pyc"):
        pyc.unlink(missing_ok=True)


def _select(names: list[str]) -> list[str]:
    if not names:
        return list(MODULES)
    chosen = []
    for n in names:
        hits = [m for m in MODULES if n in m]
        if not hits:
            sys.exit(f"no module matches {n!r}; modules: {', '.join(MODULES)}")
        chosen += [m for m in hits if m not in chosen]
    return chosen


def mutate_module(
    module: str, work: Path, *, limit: int | None, verbose: bool, existing_only: bool = False,
    known: dict[tuple[str, str], str] | None = None,
) -> dict[str, object]:
    """Run every mutant of ``module``; ``known`` maps keys to outcomes already established (not rerun)."""
    target = work / module
    original = target.read_bytes()
    mutants = generate(module, original.decode())
    if limit is not None:
        mutants = mutants[:limit]
    tests = [t for t in MODULES[module] if (work / t.split("::")[0]).exists()]
    missing = sorted({t.split("::")[0] for t in MODULES[module]} - {t.split("::")[0] for t in tests})
    if missing:
        print(f"  warning: test files missing, skipped: {missing}", file=sys.stderr)
    if existing_only:
        tests = [t for t in tests if not t.startswith(NEW_TESTS)]
    # Baseline: every selected test on the unmutated copy, without -x, to deselect the ones already failing.
    report = str(work.parent / "baseline.json")
    outcome, base_s, rc = run_tests(work, _pytest_args(tests, []), timeout=600, report=report)
    failing = json.loads(Path(report).read_text()) if Path(report).exists() else []
    if rc not in (0, 1) or (rc == 1 and not failing):
        raise SystemExit(f"{module}: the unmutated tests could not run (pytest exit {rc})")
    if failing:
        print(f"  warning: {len(failing)} test(s) fail on the unmutated copy, deselected: {failing}", file=sys.stderr)
    args = _pytest_args(tests, failing)
    outcome, base_s, rc = run_tests(work, args, timeout=600)
    if outcome != "passed":
        raise SystemExit(f"{module}: the unmutated tests do not pass in the copy ({outcome}, exit {rc})")
    timeout = max(15.0, 3 * base_s + 5)
    print(f"{module}: {len(mutants)} mutants, baseline {base_s:.1f} s, timeout {timeout:.0f} s", file=sys.stderr)
    equivalent = EQUIVALENT.get(module, {})
    try:
        for i, m in enumerate(mutants, 1):
            if m.key in equivalent:
                m.status = "equivalent"
                continue
            if known and known.get(m.key) in ("killed", "timeout"):
                m.status = known[m.key]  # more tests cannot revive a killed mutant
                continue
            _write(target, original[: m.start] + m.replacement.encode() + original[m.end:])
            outcome, m.seconds, rc = run_tests(work, args, timeout)
            m.status = {"passed": "survived", "failed": "killed", "timeout": "timeout"}[outcome]
            if verbose or m.status == "survived":
                print(f"  [{i}/{len(mutants)}] {m.status:8s} {m.describe()}", file=sys.stderr)
    finally:
        _write(target, original)
    counts = Counter(m.status for m in mutants)
    killed = counts["killed"] + counts["timeout"]
    scored = len(mutants) - counts["equivalent"]
    unused = sorted(set(equivalent) - {m.key for m in mutants})
    if unused:
        print(f"  note: {len(unused)} EQUIVALENT entries match no mutant any more: {unused}", file=sys.stderr)
    return {
        "module": module,
        "mutants": len(mutants),
        "killed": counts["killed"],
        "timeout": counts["timeout"],
        "survived": counts["survived"],
        "equivalent": counts["equivalent"],
        "kill_rate": killed / scored if scored else float("nan"),
        "baseline_seconds": round(base_s, 2),
        "deselected": failing,
        "details": [asdict(m) | {"key": list(m.key)} for m in mutants],
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("modules", nargs="*", help=f"modules (or parts of their paths); default all of {list(MODULES)}")
    p.add_argument("--list", action="store_true", help="print the mutants and exit")
    p.add_argument("--limit", type=int, default=None, help="only the first N mutants per module (smoke run)")
    p.add_argument("--survivors", action="store_true", help="also print each survivor's replaced text")
    p.add_argument("--verbose", "-v", action="store_true", help="print every mutant's outcome")
    p.add_argument("--json", type=Path, default=None, help="write the full results here")
    p.add_argument("--keep", action="store_true", help="keep the temporary copy")
    p.add_argument("--existing-only", action="store_true",
                   help=f"leave out the tests written for this harness ({', '.join(NEW_TESTS)}*)")
    p.add_argument("--from", dest="prior", type=Path, default=None,
                   help="results of an earlier --json run: its killed mutants are not run again")
    ns = p.parse_args(argv)
    prior: dict[str, dict[tuple[str, str], str]] = {}
    if ns.prior is not None:
        for r in json.loads(ns.prior.read_text()):
            prior[r["module"]] = {tuple(d["key"]): d["status"] for d in r["details"]}  # type: ignore[misc]
    modules = _select(ns.modules)
    if ns.list:
        for module in modules:
            ms = generate(module, (ROOT / module).read_text())
            eq = EQUIVALENT.get(module, {})
            for m in ms:
                print(("E " if m.key in eq else "  ") + m.describe())
            print(f"{module}: {len(ms)} mutants", file=sys.stderr)
        return 0
    _preload()
    work = _make_copy()
    results = []
    started = time.monotonic()
    try:
        for module in modules:
            res = mutate_module(module, work, limit=ns.limit, verbose=ns.verbose, existing_only=ns.existing_only,
                                known=prior.get(module))
            results.append(res)
            if ns.json is not None:  # after each module, so that a long run interrupted keeps what it has
                ns.json.write_text(json.dumps(results, indent=1))
            if ns.survivors:
                for d in res["details"]:  # type: ignore[union-attr]
                    if d["status"] == "survived":
                        print(f"  survivor {d['module']}:{d['line']} [{d['op']}] {d['detail']} -> {d['replacement']!r}")
    finally:
        if not ns.keep:
            shutil.rmtree(work.parent, ignore_errors=True)
    print("\n| module | mutants | killed | timed out | survived | equivalent | kill rate |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: |")
    for r in results:
        print(f"| `{r['module']}` | {r['mutants']} | {r['killed']} | {r['timeout']} | {r['survived']} |"
              f" {r['equivalent']} | {100 * r['kill_rate']:.1f} % |")
    print(f"\n{time.monotonic() - started:.0f} s in all")
    return 0


if __name__ == "__main__":
    sys.exit(main())
