"""Comparing tensors with the reference: one :class:`Row` per tensor name, worst case over views/frames.

Floats pass when ``|a - b| <= atol + rtol * |b|`` (1e-5 each). Integers, ids and shapes must be
equal. Two documented allowances, both counted in the report: free-running tensors downstream of
the CUT3R encoder may use 1e-4 (its float16 rounding can flip on a 1-ulp difference), and NMS cells
whose pre-NMS score ties a neighbour's within 1e-5 are not compared after NMS.
"""

from __future__ import annotations

import math
import sys
from collections import defaultdict
from dataclasses import dataclass, field

import torch
from torch import Tensor

__all__ = ["ATOL", "RTOL", "TIE_TOL", "WIDE_TOL", "Comparison", "Row"]

ATOL = RTOL = 1e-5
WIDE_TOL = 1e-4
TIE_TOL = 1e-5


@dataclass
class Row:
    """Accumulated comparison of one tensor name."""

    max_abs: float = 0.0
    worst_ratio: float = 0.0
    compared: int = 0
    wide_elements: int = 0
    exempt_cells: int = 0
    failures: list[str] = field(default_factory=list)
    tolerance: str = f"{ATOL:g}"

    @property
    def ok(self) -> bool:
        return not self.failures


class Comparison:
    """All rows of one parity run; :meth:`report` prints them, :attr:`ok` says whether all passed."""

    def __init__(self) -> None:
        self.rows: dict[str, Row] = defaultdict(Row)

    def check(
        self,
        name: str,
        mine: Tensor | None,
        ref: Tensor,
        where: str,
        *,
        wide: bool = False,
        exempt: Tensor | None = None,
    ) -> None:
        row = self.rows[name]
        if mine is None:
            row.failures.append(f"{where}: not produced")
            return
        mine = mine.detach().cpu()
        if tuple(mine.shape) != tuple(ref.shape):
            row.failures.append(f"{where}: shape {tuple(mine.shape)} != {tuple(ref.shape)}")
            return
        row.compared += ref.numel()
        if not ref.is_floating_point():
            if not torch.equal(mine.to(ref.dtype), ref):
                bad = int((mine.to(ref.dtype) != ref).sum())
                row.failures.append(f"{where}: {bad} integer value(s) differ")
                row.max_abs = max(row.max_abs, float((mine.double() - ref.double()).abs().max()))
            row.tolerance = "exact"
            return
        if ref.numel() == 0:
            return
        a, b = mine.double(), ref.double()
        diff = (a - b).abs()
        nonfinite = ~(torch.isfinite(a) & torch.isfinite(b))
        diff = torch.where(nonfinite & (a == b), torch.zeros_like(diff), diff)
        if exempt is not None:
            row.exempt_cells += int(exempt.sum())
            diff = torch.where(exempt.expand_as(diff), torch.zeros_like(diff), diff)
        limit = ATOL + RTOL * b.abs()
        ratio = diff / limit
        ratio = torch.where(torch.isnan(ratio), torch.full_like(ratio, math.inf), ratio)
        row.max_abs = max(row.max_abs, float(diff.nan_to_num(math.inf).max()))
        row.worst_ratio = max(row.worst_ratio, float(ratio.max()))
        over = ratio > 1
        if not over.any():
            return
        if wide:
            row.tolerance = f"{ATOL:g} ({WIDE_TOL:g}*)"
            wide_ratio = diff / (WIDE_TOL + WIDE_TOL * b.abs())
            if not (wide_ratio > 1).any():
                row.wide_elements += int(over.sum())
                return
        row.failures.append(f"{where}: {int(over.sum())} element(s) over tolerance, max |diff| {float(diff.max()):.3g}")

    @property
    def ok(self) -> bool:
        return all(r.ok for r in self.rows.values())

    @property
    def wide_elements(self) -> int:
        return sum(r.wide_elements for r in self.rows.values())

    @property
    def exempt_cells(self) -> int:
        return sum(r.exempt_cells for r in self.rows.values())

    def missing(self, name: str, where: str) -> None:
        self.rows[name].failures.append(f"{where}: expected by the fixture, not produced")

    # ------------------------------------------------------------------ report
    def report(self, out=None, verbose: bool = False) -> bool:
        out = out or sys.stdout
        width = max(len(n) for n in self.rows) if self.rows else 10
        print(f"{'tensor':<{width}}  {'max |diff|':>10}  {'worst/tol':>9}  {'tolerance':<14} {'values':>9}  status", file=out)
        for name in sorted(self.rows, key=_row_order):
            r = self.rows[name]
            status = "ok" if r.ok else "FAIL"
            notes = []
            if r.wide_elements:
                notes.append(f"{r.wide_elements} element(s) needed {WIDE_TOL:g}")
            if r.exempt_cells:
                notes.append(f"{r.exempt_cells} NMS near-tie cell(s) exempt")
            line = f"{name:<{width}}  {r.max_abs:>10.3g}  {r.worst_ratio:>9.3g}  {r.tolerance:<14} {r.compared:>9}  {status}"
            print(line + (f"  ({'; '.join(notes)})" if notes else ""), file=out)
            if not r.ok:
                for failure in r.failures[: (None if verbose else 3)]:
                    print(f"{'':<{width}}    - {failure}", file=out)
        failed = [n for n, r in self.rows.items() if not r.ok]
        print(
            f"\n{len(self.rows)} tensors compared, {len(self.rows) - len(failed)} ok, {len(failed)} failed; "
            f"{self.wide_elements} element(s) needed the float16-encoder tolerance {WIDE_TOL:g}; "
            f"{self.exempt_cells} NMS near-tie cell(s) exempted.",
            file=out,
        )
        print("PARITY OK" if not failed else f"PARITY FAILED: {', '.join(sorted(failed)[:10])}", file=out)
        return not failed


def _row_order(name: str) -> tuple:
    groups = ("in.", "enc.", "mhmr.", "det.", "msk.", "prompt.", "mem.", "dec.", "head.", "out.", "track.", "frame.", "clip.", "tf.", "tracking.")
    group = next((i for i, g in enumerate(groups) if name.startswith(g)), len(groups))
    return (group, name)
