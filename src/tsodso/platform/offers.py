"""Aggregators' offers for a market session, and how they enter the market's data.

This module has no web dependency: the service (:mod:`tsodso.platform.app`) and
``tsodso run --offers FILE.json`` apply offers with the same function,
:func:`apply_offers`, so a session submitted through the API and the same offers run from
the command line clear on identical data.

An offer is one aggregator's price-quantity curve for one of its DERs over the session's
horizon (the day-ahead energy product):

``offer_id``
    The aggregator's own id for the offer (unique among its offers in a session).
``der_id``
    The DER offered; its location (``feeder_id``, ``bus_id``) is the DER's. A location given
    with the offer must be the DER's (a check against stale data).
``direction``
    ``"up"``: the DER sells energy (injection, or for demand response a reduction of its
    site's consumption). Downward (buy-back) offers belong to a balancing product; this
    product refuses them with that reason.
``steps``
    One to :data:`MAX_STEPS` steps ``{"quantity_mw": MW >= 0, "price_per_mwh": $/MWh}``;
    the quantities sum to more than 0 and to no more than the DER's rating (MW, not kW).
``max_mw``
    Optional: per period (one value per period of the session, MW >= 0) the most the DER
    offers. The offered MW in a period is ``min(availability, sum of steps, max_mw)``
    (availability: rating times the DER's profile; demand response also no more than its
    site's load); each step is that MW's share ``quantity / sum of steps``, as the market
    clears any DER's bid steps (``der_bids``).

A DER with no offer in the session clears on the scenario's standing offer (its
``der_bids`` or ``cost_per_mwh``), as default offers do in markets that keep them.

Units: MW, $/MWh. Every refusal names the offer, the field and the DER.
"""

from __future__ import annotations

import copy
import json
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from tsodso.errors import Issue, TsodsoError, ValidationError
from tsodso.model.profiles import Profiles
from tsodso.model.system import System
from tsodso.tso.offers import der_availability

__all__ = ["MAX_STEPS", "OFFERABLE_KINDS", "PRICE_LIMIT", "Offer", "OfferStep",
           "apply_offers", "offer_issues", "read_offers", "write_offers"]

#: DER kinds whose output the energy product takes offers for (bid steps)
OFFERABLE_KINDS = ("pv", "wind", "dg", "demand_response")
#: most steps in one offer
MAX_STEPS = 10
#: offer prices are refused beyond +- this, $/MWh (the value of lost load caps any price)
PRICE_LIMIT = 10_000.0
#: quantities may exceed the DER's rating by this relative margin plus 1 W (a rating typed
#: with fewer digits); the offered MW is capped at the DER's availability anyway
_RATING_MARGIN = 1e-6
_RATING_SLACK_MW = 1e-6
DIRECTIONS = ("up", "down")


@dataclass(frozen=True)
class OfferStep:
    """One step of an offer: ``quantity_mw`` (MW, >= 0) at ``price_per_mwh`` ($/MWh)."""

    quantity_mw: float
    price_per_mwh: float


@dataclass(frozen=True)
class Offer:
    """One aggregator's offer for one DER (see the module docstring for the fields)."""

    offer_id: str
    aggregator_id: str
    der_id: str
    steps: tuple[OfferStep, ...]
    direction: str = "up"
    max_mw: tuple[float, ...] | None = None
    feeder_id: str | None = None
    bus_id: int | None = None
    extra: dict[str, Any] = field(default_factory=dict, compare=False)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], aggregator_id: str | None = None) -> Offer:
        """An offer from plain JSON data; ``aggregator_id`` (the caller's, in the service)
        overrides the data's. Structural problems raise :class:`ValidationError`."""
        oid = str(data.get("offer_id", ""))
        issues: list[Issue] = []
        agg = aggregator_id if aggregator_id is not None else data.get("aggregator_id")
        if not oid:
            issues.append(Issue("offer", "offer_id", "", "required (text)"))
        if not agg:
            issues.append(Issue("offer", "aggregator_id", oid, "required (text)"))
        if not isinstance(data.get("der_id"), str) or not data.get("der_id"):
            issues.append(Issue("offer", "der_id", oid, "required (text)"))
        raw_steps = data.get("steps")
        steps: list[OfferStep] = []
        if not isinstance(raw_steps, list) or not raw_steps:
            issues.append(Issue("offer", "steps", oid, "required: a list of "
                                "{quantity_mw, price_per_mwh}"))
        else:
            for k, s in enumerate(raw_steps):
                if not isinstance(s, Mapping):
                    issues.append(Issue("offer", f"steps[{k}]", oid, "must be an object "
                                        "{quantity_mw, price_per_mwh}"))
                    continue
                q, p = _number(s.get("quantity_mw")), _number(s.get("price_per_mwh"))
                if q is None or p is None:
                    issues.append(Issue("offer", f"steps[{k}]", oid, "quantity_mw and "
                                        "price_per_mwh must be numbers"))
                    continue
                steps.append(OfferStep(q, p))
        max_mw = data.get("max_mw")
        caps: tuple[float, ...] | None = None
        if max_mw is not None:
            values = [_number(v) for v in max_mw] if isinstance(max_mw, list) else None
            if values is None or any(v is None for v in values):
                issues.append(Issue("offer", "max_mw", oid, "must be a list of numbers (MW "
                                    "per period) or null"))
            else:
                caps = tuple(float(v) for v in values if v is not None)
        bus = data.get("bus_id")
        if bus is not None and (isinstance(bus, bool) or not isinstance(bus, int)):
            issues.append(Issue("offer", "bus_id", oid, "must be an integer"))
            bus = None
        feeder = data.get("feeder_id")
        if feeder is not None and not isinstance(feeder, str):
            issues.append(Issue("offer", "feeder_id", oid, "must be text"))
            feeder = None
        direction = data.get("direction", "up")
        if direction not in DIRECTIONS:
            issues.append(Issue("offer", "direction", oid, f"'{direction}': use up or down"))
        if issues:
            raise ValidationError(issues)
        return cls(offer_id=oid, aggregator_id=str(agg), der_id=str(data["der_id"]),
                   steps=tuple(steps), direction=str(direction), max_mw=caps,
                   feeder_id=feeder, bus_id=bus)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON data (the format :meth:`from_dict` and :func:`read_offers` read)."""
        data = asdict(self)
        data.pop("extra")
        data["steps"] = [asdict(s) for s in self.steps]
        data["max_mw"] = None if self.max_mw is None else list(self.max_mw)
        return data

    @property
    def offered_mw(self) -> float:
        """The sum of the steps' quantities, MW."""
        return float(sum(s.quantity_mw for s in self.steps))


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


def offer_issues(system: System, offer: Offer) -> list[Issue]:
    """Everything wrong with ``offer`` against ``system`` (its DER, kind, rating, horizon).

    A DER that does not exist and a DER of another aggregator get the same answer (not in
    the aggregator's portfolio), so an offer cannot be used to learn another portfolio."""
    oid = offer.offer_id
    issues: list[Issue] = []
    d = system.ders
    row = d[(d.der_id == offer.der_id)
            & (d.aggregator_id.fillna("").astype(str) == offer.aggregator_id)]
    if not len(row):
        return [Issue("offer", "der_id", oid, f"DER '{offer.der_id}' is not in aggregator "
                      f"'{offer.aggregator_id}''s portfolio")]
    der = row.iloc[0]
    if offer.direction != "up":
        issues.append(Issue("offer", "direction", oid, "the day-ahead energy session takes "
                            "upward (selling) offers; downward (buy-back) offers belong to a "
                            "balancing product"))
    if der.kind not in OFFERABLE_KINDS:
        issues.append(Issue("offer", "der_id", oid, f"DER '{offer.der_id}' is {der.kind}: "
                            f"the energy product takes offers for {', '.join(OFFERABLE_KINDS)} "
                            "(storage and EVs are scheduled by their state of charge)"))
    if "telemetry" in d.columns and not bool(der.telemetry):
        issues.append(Issue("offer", "der_id", oid, f"DER '{offer.der_id}' has no telemetry: "
                            "no market can dispatch it"))
    if offer.feeder_id is not None and offer.feeder_id != der.feeder_id:
        issues.append(Issue("offer", "feeder_id", oid, f"'{offer.feeder_id}': DER "
                            f"'{offer.der_id}' is on feeder '{der.feeder_id}'"))
    if offer.bus_id is not None and offer.bus_id != int(der.bus_id):
        issues.append(Issue("offer", "bus_id", oid, f"{offer.bus_id}: DER '{offer.der_id}' "
                            f"is at bus {int(der.bus_id)}"))
    if not 1 <= len(offer.steps) <= MAX_STEPS:
        issues.append(Issue("offer", "steps", oid, f"{len(offer.steps)} steps: give 1 to "
                            f"{MAX_STEPS}"))
    rating = float(der.p_max_mw)
    for k, s in enumerate(offer.steps):
        if not math.isfinite(s.quantity_mw) or s.quantity_mw < 0:
            issues.append(Issue("offer", f"steps[{k}].quantity_mw", oid,
                                f"{s.quantity_mw}: must be a finite MW >= 0"))
        if not math.isfinite(s.price_per_mwh) or abs(s.price_per_mwh) > PRICE_LIMIT:
            issues.append(Issue("offer", f"steps[{k}].price_per_mwh", oid,
                                f"{s.price_per_mwh}: must be a finite $/MWh within "
                                f"+-{PRICE_LIMIT:,.0f}"))
    total = offer.offered_mw
    if math.isfinite(total) and all(s.quantity_mw >= 0 for s in offer.steps):
        if total <= 0:
            issues.append(Issue("offer", "steps", oid, "the steps sum to 0 MW: give at least "
                                "one step a size"))
        elif total > rating * (1 + _RATING_MARGIN) + _RATING_SLACK_MW:
            issues.append(Issue("offer", "steps", oid, f"the steps sum to {total:g} MW, above "
                                f"DER '{offer.der_id}''s rating {rating:g} MW (quantities are "
                                "MW, not kW)"))
    if offer.max_mw is not None:
        caps = np.asarray(offer.max_mw, dtype=float)
        if caps.size != system.n_periods:
            issues.append(Issue("offer", "max_mw", oid, f"{caps.size} values: give one per "
                                f"period ({system.n_periods})"))
        elif not np.all(np.isfinite(caps)) or (caps < 0).any():
            issues.append(Issue("offer", "max_mw", oid, "every value must be a finite MW >= 0"))
        elif (caps > rating * (1 + _RATING_MARGIN) + _RATING_SLACK_MW).any():
            issues.append(Issue("offer", "max_mw", oid, f"above DER '{offer.der_id}''s rating "
                                f"{rating:g} MW (values are MW, not kW)"))
    return issues


def apply_offers(system: System, offers: Sequence[Offer]) -> System:
    """A copy of ``system`` in which each offer replaces its DER's standing offer.

    The DER's bid steps (``der_bids``) become the offer's steps and its availability is
    capped per period at the offered MW (a profile ``offer:<der_id>`` = offered MW over the
    rating). Raises :class:`ValidationError` listing every problem of every offer (and a
    DER offered twice) before anything is changed."""
    issues: list[Issue] = []
    seen: dict[tuple[str, str], str] = {}
    for offer in offers:
        issues += offer_issues(system, offer)
        key = (offer.aggregator_id, offer.offer_id)
        if key in seen:
            issues.append(Issue("offer", "offer_id", offer.offer_id, "given twice by "
                                f"aggregator '{offer.aggregator_id}'"))
        seen[key] = offer.der_id
    ders_offered = pd.Series([o.der_id for o in offers], dtype=object)
    for der in ders_offered[ders_offered.duplicated()].unique():
        ids = [o.offer_id for o in offers if o.der_id == der]
        issues.append(Issue("offer", "der_id", ids[-1], f"DER '{der}' has several offers "
                            f"({', '.join(ids)}): one offer per DER; revise it instead"))
    if issues:
        raise ValidationError(issues)
    if not offers:
        return system
    out = copy.copy(system)
    ders = system.ders.copy()
    avail = der_availability(system)
    series = system.profiles.series.copy()
    position = {der: i for i, der in enumerate(ders.der_id)}
    new_bids = []
    for offer in offers:
        i = position[offer.der_id]
        rating = float(ders.at[i, "p_max_mw"])
        cap = np.minimum(avail[:, i], offer.offered_mw)
        if offer.max_mw is not None:
            cap = np.minimum(cap, np.asarray(offer.max_mw, dtype=float))
        name = f"offer:{offer.der_id}"
        series[name] = cap / rating if rating > 0 else np.zeros(system.n_periods)
        ders.at[i, "profile"] = name
        new_bids.append(pd.DataFrame({
            "der_id": offer.der_id, "step": np.arange(len(offer.steps), dtype=np.int64),
            "quantity_mw": [s.quantity_mw for s in offer.steps],
            "price_per_mwh": [s.price_per_mwh for s in offer.steps]}))
    keep = system.der_bids[~system.der_bids.der_id.isin(ders_offered)]
    out.der_bids = pd.concat([keep, *new_bids], ignore_index=True).astype(
        system.der_bids.dtypes.to_dict())
    out.ders = ders
    out.profiles = Profiles(period_hours=system.profiles.period_hours,
                            n_periods=system.profiles.n_periods, series=series)
    return out


def read_offers(path: str | Path) -> list[Offer]:
    """Offers from a JSON file: ``{"offers": [offer, ...]}`` or a list of offers, each
    with its ``aggregator_id`` (the format :func:`write_offers` and the service's export
    write). Refuses an unreadable file or a malformed offer, naming it."""
    p = Path(path)
    try:
        data = json.loads(p.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise TsodsoError(f"offers file {p} does not exist") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise TsodsoError(f"offers file {p}: not readable JSON ({err})") from None
    items = data.get("offers") if isinstance(data, dict) else data
    if not isinstance(items, list):
        raise TsodsoError(f"offers file {p}: expected {{\"offers\": [...]}} or a list of "
                          "offers")
    out: list[Offer] = []
    issues: list[Issue] = []
    for k, item in enumerate(items):
        if not isinstance(item, Mapping):
            issues.append(Issue("offer", "", f"#{k}", "must be an object"))
            continue
        try:
            out.append(Offer.from_dict(item))
        except ValidationError as err:
            issues += err.issues
    if issues:
        raise ValidationError(issues)
    return out


def write_offers(offers: Iterable[Offer], path: str | Path) -> Path:
    """Write offers as ``{"offers": [...]}`` JSON (read back by :func:`read_offers`)."""
    p = Path(path)
    p.write_text(json.dumps({"offers": [o.to_dict() for o in offers]}, indent=1),
                 encoding="utf-8")
    return p
