"""The service's request and response bodies (pydantic models; the OpenAPI schema at
``/docs`` is generated from them). Units: MW, $/MWh, $; times ISO 8601 with a time zone.

Request bodies refuse fields they do not know (``extra="forbid"``): a misspelled or
wrong-unit field (``quantity_kw``) is a 422 naming it, not a silently ignored value.
"""

from __future__ import annotations

import math
from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

__all__ = ["ActivationIn", "AckIn", "ApiKeyIn", "EmergencyAnswerIn", "EmergencyIn",
           "OfferIn", "OrganisationIn", "SessionIn", "StepIn", "UserIn"]

_ID = r"^[A-Za-z0-9_.:@#\-]{1,100}$"


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid")


class StepIn(_In):
    """One price-quantity step."""

    quantity_mw: float = Field(ge=0, description="MW offered in the step (>= 0)")
    price_per_mwh: float = Field(description="$/MWh asked for the step")

    @field_validator("quantity_mw", "price_per_mwh")
    @classmethod
    def _finite(cls, value: float) -> float:
        if not math.isfinite(value):
            raise ValueError("must be a finite number")
        return value


class OfferIn(_In):
    """An offer (see :mod:`tsodso.platform.offers`); the owner is the caller."""

    offer_id: str = Field(pattern=_ID, description="your id for the offer, unique among "
                          "your offers in the session")
    der_id: str = Field(min_length=1, max_length=100, description="the DER offered")
    direction: Literal["up", "down"] = Field("up", description="up: sell energy")
    steps: list[StepIn] = Field(min_length=1, max_length=10)
    max_mw: list[float] | None = Field(None, description="MW at most per period (one "
                                       "value per period), or null")
    feeder_id: str | None = Field(None, description="the DER's feeder (checked)")
    bus_id: int | None = Field(None, description="the DER's bus (checked)")


class OfferRevisionIn(_In):
    """A revision: new steps and caps (the DER and direction stay)."""

    steps: list[StepIn] = Field(min_length=1, max_length=10)
    max_mw: list[float] | None = None


class SessionIn(_In):
    """A market session to open."""

    name: str = Field(min_length=1, max_length=200)
    scenario: str = Field("default", min_length=1, max_length=500,
                          description="a built-in scenario (tsodso scenarios) or a file")
    scheme: str = Field("common", description="a coordination scheme (tsodso schemes)")
    gate_open: datetime
    gate_close: datetime

    @field_validator("gate_open", "gate_close")
    @classmethod
    def _aware(cls, value: datetime) -> datetime:
        if value.tzinfo is None:
            raise ValueError("give a time zone (e.g. 2026-12-01T10:00:00Z)")
        return value


class OrganisationIn(_In):
    """A party to register."""

    name: str = Field(pattern=_ID)
    role: Literal["tso", "dso", "aggregator", "market_operator", "auditor"]
    party: str = Field("", max_length=120, description="its party in the scenario's "
                       "messages, e.g. aggregator:agg_1, dso:bus9, tso")
    area: list[str] = Field(default_factory=list, description="a DSO's feeders")


class UserIn(_In):
    """A user of an organisation."""

    username: str = Field(pattern=_ID)
    password: str = Field(min_length=8, max_length=200)


class ApiKeyIn(_In):
    """An API key for an organisation's machine client."""

    name: str = Field("", max_length=100)
    scopes: list[str] | None = Field(None, description="default: every scope of the role")


class ActivationIn(_In):
    """Call an awarded DER for more output in one period."""

    der_id: str = Field(min_length=1, max_length=100)
    period: int = Field(ge=0)
    mw: float = Field(gt=0, description="MW more than its award (> 0)")


class AckIn(_In):
    """An aggregator's answer to an activation."""

    accepted: bool
    reason: str = Field("", max_length=500)


class EmergencyIn(_In):
    """The TSO asks a DSO for less import on a feeder."""

    feeder_id: str = Field(min_length=1, max_length=100)
    periods: list[int] = Field(min_length=1)
    reduction_mw: float = Field(gt=0, description="MW less import (> 0)")


class EmergencyAnswerIn(_In):
    """The DSO's answer."""

    accepted: bool
    deliverable_mw: float = Field(ge=0)
    reason: str = Field("", max_length=500)
