"""Build several sub-models into one :class:`Model` under name prefixes.

The joint (``common``) market assembles the TSO's and every DSO's model in one problem; each
builder writes through a :class:`Namespace` so that its block names stay unique
(``tso/balance``, ``F1/balance_p``, ...).
"""

from __future__ import annotations

from typing import Any

from tsodso.opt.model import Model


class Namespace:
    """A view of ``model`` that prefixes every block name it creates with ``prefix``."""

    def __init__(self, model: Model, prefix: str = ""):
        self.model = model
        self.prefix = prefix

    def _name(self, name: str) -> str:
        return f"{self.prefix}{name}"

    def add_variables(self, name: str, *args: Any, **kwargs: Any) -> Any:
        return self.model.add_variables(self._name(name), *args, **kwargs)

    def add_constraints(self, name: str, *args: Any, **kwargs: Any) -> Any:
        return self.model.add_constraints(self._name(name), *args, **kwargs)

    def add_soc(self, name: str, *args: Any, **kwargs: Any) -> Any:
        return self.model.add_soc(self._name(name), *args, **kwargs)

    def add_rotated_soc(self, name: str, *args: Any, **kwargs: Any) -> Any:
        return self.model.add_rotated_soc(self._name(name), *args, **kwargs)

    def __getattr__(self, attr: str) -> Any:  # set_cost, set_bounds, add_quadratic_cost, ...
        return getattr(self.model, attr)
