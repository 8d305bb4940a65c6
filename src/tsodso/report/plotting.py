"""Charts from Python: ``outcome.plot`` and ``run.plot``.

``outcome.plot.dlmp("case33bw@9")`` returns the same Plotly figure as the report's DLMP
heatmap; ``run.plot.comparison()`` the report's comparison of schemes. Each method is a thin
binding of :mod:`tsodso.report.charts` to the results it is called on; a figure shows with
``fig.show()`` or saves with ``fig.write_html(...)`` (and ``fig.write_image(...)`` where
Kaleido is installed).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from tsodso.report import charts

if TYPE_CHECKING:
    from tsodso.coordination.outcome import Outcome
    from tsodso.coordination.run_folder import Run
    from tsodso.model.system import System


class OutcomePlots:
    """Charts of one scheme's :class:`~tsodso.coordination.Outcome` (see
    :mod:`tsodso.report.charts` for what each shows)."""

    def __init__(self, outcome: Outcome) -> None:
        self._outcome = outcome

    def dlmp(self, feeder_id: str, which: str = "p") -> Any:
        """Bus x period heatmap of a feeder's DLMPs, components on hover."""
        return charts.dlmp_heatmap(self._outcome, feeder_id, which)

    def grid(self, system: System) -> Any:
        """The grid and feeders coloured by LMP / DLMP, with a period slider."""
        return charts.grid_prices(self._outcome, system)

    def der_dispatch(self, system: System) -> Any:
        """DER output by kind per period, stacked."""
        return charts.der_dispatch(self._outcome, system)

    def residuals(self) -> Any:
        """Convergence of an iterative scheme (ADMM, hierarchical)."""
        return charts.residuals(self._outcome)

    def voltage_profile(self, system: System, feeder_id: str) -> Any:
        """Voltage along a feeder against its limits, with a period slider."""
        return charts.voltage_profiles({self._outcome.scheme: self._outcome}, system,
                                       feeder_id)

    def interface_schedule(self, feeder_id: str) -> Any:
        """A feeder's import per period."""
        return charts.interface_schedules({self._outcome.scheme: self._outcome}, feeder_id)


class RunPlots:
    """Charts of a run folder's schemes together (:class:`~tsodso.coordination.run_folder.
    Run`)."""

    def __init__(self, run: Run) -> None:
        self._run = run

    def comparison(self) -> Any:
        """Cost, violations, curtailment and messages per scheme."""
        return charts.comparison(self._run.outcomes)

    def money_flows(self) -> Any:
        """Who pays and who is paid, per scheme."""
        return charts.money_flows(self._run.outcomes)

    def voltage_profiles(self, feeder_id: str) -> Any:
        """Voltage along a feeder per scheme, with a period slider."""
        return charts.voltage_profiles(self._run.outcomes, self._run.system, feeder_id)

    def interface_schedules(self, feeder_id: str) -> Any:
        """A feeder's import per scheme."""
        return charts.interface_schedules(self._run.outcomes, feeder_id)

    def interface_prices(self, feeder_id: str) -> Any:
        """A feeder's interface LMP per scheme."""
        return charts.interface_prices(self._run.outcomes, feeder_id)


__all__ = ["OutcomePlots", "RunPlots"]
