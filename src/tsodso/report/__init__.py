"""Reports and charts of runs: :func:`write_report` writes one self-contained HTML file of a
run folder; :mod:`tsodso.report.charts` builds each chart as a Plotly figure. Needs the
``plot`` extra (``pip install "tsodso[plot]"``)."""

from __future__ import annotations

from tsodso.report.html import render_report, write_figures, write_report

__all__ = ["render_report", "write_figures", "write_report"]
