"""What a result cost besides production, and whether it is the answer it claims to be.

Every market clearing, feeder OPF and coordination outcome carries a :class:`Shortfalls`:
the priced slack its optimum used (load shed, spill of must-run output, unmet EV energy,
reserve shortfall, each in MWh and in $ at the rules' value of lost load or reserve
penalty) and the quality of its physics (largest SOC relaxation gap, AC power-flow check
error, power flows that did not converge). A status is ``optimal`` only when none of these
is present; otherwise it is ``inexact`` (the physics is not exact: the numbers are not what
they claim), ``feasible`` (exact physics, but the cost is only known to lie within a gap of
the optimum) or ``shed`` (the optimum is exact but relies on priced slack), and every
figure is reported in tables, ``--json`` and as warning sentences for the terminal.

Units: energies in MWh over the horizon, costs in $, the SOC gap in MW^2
(``l v - P^2 - Q^2``), fictitious losses in MW, AC errors in pu (voltage) and % of rating (flow).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any

from tsodso.opt.status import SolveStatus

#: Slack below this many MWh (1 kWh over the horizon) is solver tolerance, not an answer:
#: interior-point solutions carry slack of order 1e-5 MWh that no optimum uses.
ENERGY_TOL_MWH = 1e-3
#: Largest AC-check voltage difference (pu) and flow difference (% of rating) between an OPF
#: and the AC power flow of its dispatch that still counts as exact physics.
AC_VOLTAGE_TOL_PU = 1e-3
AC_FLOW_TOL_PCT = 1.0


@dataclass
class Shortfalls:
    """Slack and physics quality of one result (see the module docstring for units).

    Attributes
    ----------
    shed_mwh, spill_mwh, unmet_ev_mwh, reserve_shortfall_mwh : float
        Priced slack the optimum used over the horizon, MWh.
    unmet_storage_mwh : float
        Storage energy short of its end-of-horizon target, MWh (priced at the value of lost
        load; only where a DSO's curtailment leaves a unit unable to reach it).
    slack_cost : float
        What that slack cost in the objective, $ (value of lost load, reserve penalty).
    soc_gap_max : float
        Largest SOC relaxation gap ``l v - P^2 - Q^2`` after any tightening, MW^2 (0 for
        linear models); for information: the verdict uses ``fictitious_loss_mw``.
    fictitious_loss_mw : float
        Largest per-period losses the relaxation adds beyond the physics (``r gap / v``
        summed over lines), MW, counted where above solver accuracy (0.1 % of the
        period's losses plus 1e-5 MW): above 0, the relaxation is not exact.
    ac_voltage_error_pu, ac_flow_error_pct : float or None
        Largest difference between the OPF and an AC power flow of its dispatch (``None``
        when no AC check ran).
    pf_not_converged : int
        Periods (feeder x period in an outcome) whose AC power flow did not converge.
    optimality_gap : float
        Upper bound on how far the reported cost may be above the true optimum, $ (the
        distance to the relaxation's bound when the relaxation had to be tightened).
    notes : list of str
        Extra sentences (e.g. how a relaxation was tightened).
    """

    shed_mwh: float = 0.0
    spill_mwh: float = 0.0
    unmet_ev_mwh: float = 0.0
    unmet_storage_mwh: float = 0.0
    reserve_shortfall_mwh: float = 0.0
    slack_cost: float = 0.0
    soc_gap_max: float = 0.0
    fictitious_loss_mw: float = 0.0
    ac_voltage_error_pu: float | None = None
    ac_flow_error_pct: float | None = None
    pf_not_converged: int = 0
    optimality_gap: float = 0.0
    optimality_gap_tol: float = 0.0
    notes: list[str] = field(default_factory=list)

    # ---------------------------------------------------------------- verdicts
    @property
    def uses_slack(self) -> bool:
        """The optimum sheds load, spills, leaves EV energy unmet or lacks reserves."""
        return max(self.shed_mwh, self.spill_mwh, self.unmet_ev_mwh, self.unmet_storage_mwh,
                   self.reserve_shortfall_mwh) > ENERGY_TOL_MWH

    @property
    def inexact(self) -> bool:
        """The physics of the answer is not what it claims (relaxation gap, AC mismatch,
        non-converged power flow)."""
        ac_bad = ((self.ac_voltage_error_pu or 0.0) > AC_VOLTAGE_TOL_PU
                  or (self.ac_flow_error_pct or 0.0) > AC_FLOW_TOL_PCT)
        return self.fictitious_loss_mw > 0 or ac_bad or self.pf_not_converged > 0

    @property
    def unproven(self) -> bool:
        """The cost may be further from the optimum than tolerance allows."""
        return self.optimality_gap > self.optimality_gap_tol

    def status(self, solved: SolveStatus = SolveStatus.OPTIMAL) -> SolveStatus:
        """The result's status: the solver's when it did not solve, else ``inexact``,
        ``feasible`` (optimality not proven), ``shed`` or ``optimal``, in that order."""
        if solved is not SolveStatus.OPTIMAL:
            return solved
        if self.inexact:
            return SolveStatus.INEXACT
        if self.unproven:
            return SolveStatus.FEASIBLE
        return SolveStatus.SHED if self.uses_slack else SolveStatus.OPTIMAL

    # ---------------------------------------------------------------- combining
    def __add__(self, other: Shortfalls) -> Shortfalls:
        def worst(a: float | None, b: float | None) -> float | None:
            return None if a is None and b is None else max(a or 0.0, b or 0.0)

        return Shortfalls(
            shed_mwh=self.shed_mwh + other.shed_mwh,
            spill_mwh=self.spill_mwh + other.spill_mwh,
            unmet_ev_mwh=self.unmet_ev_mwh + other.unmet_ev_mwh,
            unmet_storage_mwh=self.unmet_storage_mwh + other.unmet_storage_mwh,
            reserve_shortfall_mwh=self.reserve_shortfall_mwh + other.reserve_shortfall_mwh,
            slack_cost=self.slack_cost + other.slack_cost,
            soc_gap_max=max(self.soc_gap_max, other.soc_gap_max),
            fictitious_loss_mw=max(self.fictitious_loss_mw, other.fictitious_loss_mw),
            ac_voltage_error_pu=worst(self.ac_voltage_error_pu, other.ac_voltage_error_pu),
            ac_flow_error_pct=worst(self.ac_flow_error_pct, other.ac_flow_error_pct),
            pf_not_converged=self.pf_not_converged + other.pf_not_converged,
            optimality_gap=self.optimality_gap + other.optimality_gap,
            optimality_gap_tol=self.optimality_gap_tol + other.optimality_gap_tol,
            notes=self.notes + other.notes,
        )

    # ---------------------------------------------------------------- reporting
    def warnings(self) -> list[str]:
        """Plain sentences for the terminal, one per thing the result cost or lacks."""
        out = []
        if self.shed_mwh > ENERGY_TOL_MWH:
            out.append(f"{self.shed_mwh:.3f} MWh of load shed at the value of lost load")
        if self.spill_mwh > ENERGY_TOL_MWH:
            out.append(f"{self.spill_mwh:.3f} MWh of must-run output spilled at the value "
                       "of lost load")
        if self.unmet_ev_mwh > ENERGY_TOL_MWH:
            out.append(f"{self.unmet_ev_mwh:.3f} MWh of EV charging energy unmet")
        if self.unmet_storage_mwh > ENERGY_TOL_MWH:
            out.append(f"storage ends {self.unmet_storage_mwh:.3f} MWh short of its "
                       "end-of-horizon target")
        if self.reserve_shortfall_mwh > ENERGY_TOL_MWH:
            out.append(f"reserves short by {self.reserve_shortfall_mwh:.3f} MWh")
        if self.uses_slack:
            out.append(f"slack cost {self.slack_cost:,.2f} $ of the total")
        if self.fictitious_loss_mw > 0:
            out.append(f"SOC relaxation not exact: up to {self.fictitious_loss_mw:.3g} MW of "
                       "fictitious losses in a period; flows, losses and prices are not "
                       "physical")
        if (self.ac_voltage_error_pu or 0.0) > AC_VOLTAGE_TOL_PU or (
                self.ac_flow_error_pct or 0.0) > AC_FLOW_TOL_PCT:
            out.append(f"AC power flow of the dispatch differs from the OPF by "
                       f"{self.ac_voltage_error_pu or 0.0:.3g} pu in voltage and "
                       f"{self.ac_flow_error_pct or 0.0:.3g} % in flow")
        if self.pf_not_converged:
            out.append(f"AC power flow did not converge in {self.pf_not_converged} "
                       "period(s): their violations are unknown")
        if self.unproven:
            out.append(f"optimality not proven: the cost may be up to "
                       f"{self.optimality_gap:,.2f} $ above the optimum (distance to the "
                       "relaxation's bound); prices withheld")
        return list(dict.fromkeys(out + list(self.notes)))

    def to_json(self) -> dict[str, Any]:
        """Plain dict for ``--json`` and run folders (with the verdicts)."""
        plain = {k: None if isinstance(v, float) and not math.isfinite(v) else v
                 for k, v in asdict(self).items()}  # JSON has no NaN: unknown is null
        return {**plain, "uses_slack": self.uses_slack, "inexact": self.inexact,
                "unproven": self.unproven, "warnings": self.warnings()}


__all__ = ["AC_FLOW_TOL_PCT", "AC_VOLTAGE_TOL_PU", "ENERGY_TOL_MWH", "Shortfalls"]
