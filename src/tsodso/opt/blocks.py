"""Handles to named, contiguous blocks of variables, linear rows and cones."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

__all__ = ["ConBlock", "ConeBlock", "VarBlock"]


@dataclass(frozen=True, eq=False)
class _Block:
    name: str
    start: int
    size: int
    _owner: object = field(repr=False, compare=False)

    @property
    def stop(self) -> int:
        """One past the last global index of the block."""
        return self.start + self.size

    @property
    def slice(self) -> slice:
        """``slice(start, stop)`` into the global vector."""
        return slice(self.start, self.start + self.size)

    @property
    def index(self) -> np.ndarray:
        """Global indices of the block, ``arange(start, stop)`` (int64)."""
        return np.arange(self.start, self.start + self.size, dtype=np.int64)

    def __len__(self) -> int:
        return self.size


@dataclass(frozen=True, eq=False)
class VarBlock(_Block):
    """A named block of ``size`` variables occupying columns ``[start, stop)``."""


@dataclass(frozen=True, eq=False)
class ConBlock(_Block):
    """A named block of ``size`` linear rows ``lb <= A x <= ub`` (rows ``[start, stop)``)."""


@dataclass(frozen=True, eq=False)
class ConeBlock(_Block):
    """A named block of ``k`` second-order cones of equal dimension ``dim``.

    ``start``/``size`` index the model's stacked standard-form cone rows (``size == k * dim``);
    row ``start + i * dim + j`` is component ``j`` of cone ``i`` (component 0 is the
    right-hand side ``t``). ``rotated`` marks cones created by ``add_rotated_soc``.
    """

    k: int = 0
    dim: int = 0
    rotated: bool = False
