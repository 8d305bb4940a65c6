"""Exceptions raised by tsodso.

Every error a user can cause names the component, the field and the id involved, so that a
bad input file can be fixed without reading tsodso's source.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass


class TsodsoError(Exception):
    """Base class of every error tsodso raises on purpose (bad input, unknown case, ...)."""


@dataclass(frozen=True)
class Issue:
    """One problem found while validating input data.

    Attributes
    ----------
    component : str
        Table or object the problem is in, e.g. ``"branches"`` or ``"feeder_lines"``.
    field : str
        Column or attribute, e.g. ``"x_pu"``; ``""`` when the problem is the whole row.
    id : str
        Id of the offending element (row id, feeder id, profile name); ``""`` if none.
    message : str
        What is wrong, in plain words.
    """

    component: str
    field: str
    id: str
    message: str

    def __str__(self) -> str:
        where = self.component
        if self.field:
            where += f".{self.field}"
        if self.id:
            where += f"[{self.id}]"
        return f"{where}: {self.message}"

    def to_dict(self) -> dict[str, str]:
        return asdict(self)


class ValidationError(TsodsoError):
    """Input data that tsodso refuses; carries the structured list of :class:`Issue`."""

    def __init__(self, issues: list[Issue]):
        self.issues = list(issues)
        head = str(self.issues[0]) if self.issues else "invalid data"
        more = f" (and {len(self.issues) - 1} more problems)" if len(self.issues) > 1 else ""
        super().__init__(head + more)


class CaseNotFoundError(TsodsoError):
    """A case, scenario or feeder specification that does not name anything known."""


class ParseError(TsodsoError):
    """A data file that cannot be read (syntax, unsupported statement, missing section)."""


class SolveError(TsodsoError):
    """A model that the solver did not solve; ``status`` is the normalised solve status
    (``infeasible``, ``numerical``, ...), so callers need not parse the message."""

    def __init__(self, message: str, status: str):
        super().__init__(message)
        self.status = status


class UnknownFeederError(CaseNotFoundError, KeyError):
    """A feeder id the system does not have (also a ``KeyError``, as a lookup miss)."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""


def first_line(err: BaseException) -> str:
    """An exception's message on one line (at most 200 characters), or its type's name."""
    text = " ".join(str(err).split())
    return text[:200] or type(err).__name__
