"""Resource limits: how many periods a problem may have and whether it fits in memory.

Two checks, both made before anything large is allocated:

* :func:`check_periods`: a number of periods is a positive integer no larger than
  :data:`MAX_PERIODS` and, for a system with a fixed horizon, no larger than that horizon
  (nothing is clamped).
* :func:`check_memory`: the memory a problem will need, estimated from its number of
  variables and constraint-matrix nonzeros (:func:`tso_size`, :func:`dso_size`), is compared
  with the memory available now (:func:`available_memory`); a problem that will not fit is
  refused with :class:`ResourceError` instead of exhausting the machine.

Calibration (``benchmarks/bench_memory.py``: each case in a fresh process, the peak resident
memory of build + solve + result extraction above the resident memory after loading; Linux,
2 cores, highspy 1.16, clarabel 0.11, numpy 2.4, scipy 1.17). Entries are the estimated
variables plus nonzeros (the estimates run 1.3 to 1.9 times the built models' entries)::

    problem                                solver   periods  entries  peak MB  bytes/entry
    TSO matpower:case118                   clarabel      24    40 k      15.3       381
    TSO matpower:case118                   clarabel    2400   4.0 M    1068         267
    TSO matpower:case2869pegase            highs          1    38 k      19.8       528
    TSO matpower:case2869pegase            highs         24   902 k      56.7        63
    TSO matpower:case2869pegase            highs        240   9.0 M     473          52
    TSO pglib case118, periods split       highs       2400   4.0 M     265          66
    TSO pglib case118, one LP              highs       2400   4.0 M    1325         331
    TSO pglib case2869_pegase, one LP      highs         24   902 k     287         318
    DSO default:case69@4#1 (SOC)           clarabel      24    69 k      28.1       407
    DSO matpower:case33bw (SOC)            clarabel    2400   2.8 M    1076         388
    common default (6 feeders)             clarabel      24   325 k     105         323
    common, case118 + 100 x case33bw       clarabel      24   4.1 M    1350         326

Small problems carry a fixed 15-20 MB (solver set-up), irrelevant to whether a large one
fits. :data:`BYTES_PER_ENTRY` holds one figure per problem kind, the largest measured at
scale plus 15-25 %, so that the check refuses a little early rather than late: ``lp``
400 (an LP whose periods are independent is solved period by period at about 60 bytes per
entry, but ramps, storage or energy budgets make it one LP: 318-331), ``qp`` 330 (the TSO
market in Clarabel: 267) and ``socp`` 480 (feeder OPFs: 388-417; the joint problem:
326). A second run of the benchmark agreed within 3 % at scale.
"""

from __future__ import annotations

import numbers
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from tsodso.errors import TsodsoError

if TYPE_CHECKING:
    from tsodso.model.system import System

#: Largest number of periods of any problem: a leap year of quarter hours (366 x 96), which
#: is SimBench's year of profiles; an hourly horizon can span four years (8784 h per leap
#: year). Longer studies split the horizon into several runs.
MAX_PERIODS = 366 * 96

#: Bytes per estimated variable or nonzero (build, solve and result tables) by problem kind:
#: ``lp`` (HiGHS), ``qp`` (Clarabel on the TSO market) and ``socp`` (Clarabel on feeder OPFs
#: and the joint problem). See the module docstring for the measurements.
BYTES_PER_ENTRY: dict[str, int] = {"lp": 400, "qp": 330, "socp": 480}


class ResourceError(TsodsoError):
    """A problem too large to solve here (more periods than allowed, not enough memory)."""


@dataclass(frozen=True)
class ProblemSize:
    """Estimated size of an optimisation problem.

    Attributes
    ----------
    n_vars : int
        Variables (columns).
    n_nonzeros : int
        Nonzeros of the constraint and cone matrices.
    """

    n_vars: int
    n_nonzeros: int

    def __add__(self, other: ProblemSize) -> ProblemSize:
        return ProblemSize(self.n_vars + other.n_vars, self.n_nonzeros + other.n_nonzeros)

    def times(self, periods: int) -> ProblemSize:
        """This size (of one period) repeated over ``periods`` periods."""
        return ProblemSize(self.n_vars * periods, self.n_nonzeros * periods)


# ------------------------------------------------------------------------ periods
def check_periods(periods: object, horizon: int | None = None, source: str = "the system",
                  name: str = "periods") -> int | None:
    """Validate a number of periods and return the number to use.

    Parameters
    ----------
    periods : int or None
        Requested periods; ``None`` means "the whole horizon".
    horizon : int, optional
        Periods the data has (a scenario's fixed horizon); ``None`` when unknown.
    source : str
        What has the horizon, for the message (e.g. ``"scenario 'default'"``).
    name : str
        The option's name, for the message (e.g. ``"TsoOptions.periods"``, ``"--periods"``).

    Returns
    -------
    int or None
        ``periods`` as an int, or ``horizon`` when ``periods`` is None.

    Raises
    ------
    ResourceError
        ``periods`` is not a positive integer, exceeds :data:`MAX_PERIODS`, or exceeds
        ``horizon`` (the message names both numbers).
    """
    if periods is None:
        return horizon
    if isinstance(periods, bool) or not isinstance(periods, numbers.Integral):
        raise ResourceError(f"{name} must be a positive integer, got {periods!r}")
    periods = int(periods)
    if periods < 1:
        raise ResourceError(f"{name} must be a positive integer, got {periods}")
    if periods > MAX_PERIODS:
        raise ResourceError(f"{name} {periods} exceeds the limit of {MAX_PERIODS} (a leap "
                            "year of quarter hours); split the horizon into several runs")
    if horizon is not None and periods > horizon:
        raise ResourceError(f"{name} {periods} exceeds the {horizon} period(s) of {source}")
    return periods


# ------------------------------------------------------------------------- memory
def _meminfo_available(path: Path = Path("/proc/meminfo")) -> int | None:
    try:
        for line in path.read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        return None
    return None


#: cgroup files (v2, then v1) with this container's memory limit and usage, bytes.
CGROUP_FILES = ((Path("/sys/fs/cgroup/memory.max"), Path("/sys/fs/cgroup/memory.current")),
                (Path("/sys/fs/cgroup/memory/memory.limit_in_bytes"),
                 Path("/sys/fs/cgroup/memory/memory.usage_in_bytes")))


def _cgroup_available(files: tuple[tuple[Path, Path], ...] = CGROUP_FILES) -> int | None:
    """Limit minus usage of the container's memory cgroup (None: no limit or no cgroup)."""
    for limit_file, usage_file in files:
        try:
            limit = limit_file.read_text().strip()
            usage = int(usage_file.read_text().strip())
        except (OSError, ValueError):
            continue
        if limit == "max" or not limit.isdigit() or int(limit) >= 2**60:  # unlimited
            return None
        return max(int(limit) - usage, 0)
    return None


def _system_available() -> int | None:
    try:
        import psutil
    except ImportError:
        psutil = None
    if psutil is not None:
        return int(psutil.virtual_memory().available)
    found = _meminfo_available()
    if found is not None:
        return found
    try:
        return int(os.sysconf("SC_AVPHYS_PAGES")) * int(os.sysconf("SC_PAGE_SIZE"))
    except (ValueError, OSError, AttributeError):
        return None


def available_memory() -> int | None:
    """Memory available to a new allocation, bytes (None if it cannot be found).

    The machine's: ``psutil.virtual_memory().available`` when psutil is installed, else
    ``MemAvailable`` of ``/proc/meminfo``, else free pages x page size from ``os.sysconf``;
    within a container whose memory cgroup has a limit, no more than that limit minus its
    usage (the machine's figure does not see the limit).
    """
    found = [v for v in (_system_available(), _cgroup_available()) if v is not None]
    return min(found) if found else None


def estimate_bytes(n_vars: int, n_nonzeros: int, kind: str = "lp") -> int:
    """Estimated peak memory of a problem of ``kind`` (``lp``, ``qp``, ``socp``), bytes."""
    if kind not in BYTES_PER_ENTRY:
        raise TsodsoError(f"problem kind must be one of {', '.join(BYTES_PER_ENTRY)}, got "
                          f"{kind!r}")
    return int((n_vars + n_nonzeros) * BYTES_PER_ENTRY[kind])


def _gb(n_bytes: float) -> str:
    return f"{n_bytes / 1e9:.3g} GB"


def check_memory(what: str, n_vars: int, n_nonzeros: int, kind: str = "lp",
                 hint: str = "clear fewer periods or split the horizon with --periods") -> int:
    """Refuse a problem whose estimated memory exceeds the memory available now.

    Parameters
    ----------
    what : str
        The problem, for the message (e.g. ``"the TSO market of 'case118' over 24
        periods"``).
    n_vars, n_nonzeros : int
        Its variables and constraint-matrix nonzeros (all periods).
    kind : {"lp", "qp", "socp"}
        HiGHS LP, Clarabel QP or Clarabel SOCP (see :data:`BYTES_PER_ENTRY`).
    hint : str
        What the user can do instead, appended to the message.

    Returns
    -------
    int
        The estimate, bytes.

    Raises
    ------
    ResourceError
        When the estimate exceeds :func:`available_memory`.
    """
    need = estimate_bytes(n_vars, n_nonzeros, kind)
    have = available_memory()
    if have is not None and need > have:
        raise ResourceError(f"{what} needs about {_gb(need)}, {_gb(have)} available; {hint}")
    return need


def check_problem(what: str, size: ProblemSize, kind: str = "lp",
                  hint: str = "clear fewer periods or split the horizon with --periods") -> int:
    """:func:`check_memory` for a :class:`ProblemSize`."""
    return check_memory(what, size.n_vars, size.n_nonzeros, kind, hint)


# -------------------------------------------------------------------------- sizes
def tso_size(system: System, periods: int, reserve_products: int = 0,
             interface_feeders: int = 0) -> ProblemSize:
    """Upper estimate of the TSO market's size (:class:`~tsodso.tso.market.TsoMarket`).

    Per period: generators, bus angles, shedding and spill at every bus, three variables per
    DER (offers, storage, EVs), interface flows and piecewise-cost epigraphs; the balance
    rows, the branch limits (two nonzeros per branch each side), ramps, storage and EV
    balances, and the reserve products' variables and rows.
    """
    g = system.grid
    n, b, gens, ders = len(g.buses), len(g.branches), len(g.generators), len(system.ders)
    pwl = len(g.gen_cost_points)
    f, r = interface_feeders, reserve_products
    n_vars = gens + 3 * n + 3 * ders + f + pwl + r * (gens + ders + n)
    nnz = 3 * gens + 7 * ders + 3 * n + f + 4 * b + 2 * pwl + r * (3 * gens + 3 * ders + n)
    return ProblemSize(n_vars, nnz).times(periods)


def dso_size(buses: int, ders: int, periods: int) -> ProblemSize:
    """Upper estimate of one feeder's OPF size (:class:`~tsodso.dso.opf.DsoOpf`).

    Per period and bus: flows P, Q, squared current and voltage, shedding; balances,
    voltage drops, the relaxation cones (or LinDistFlow's octagons); four variables and
    eight nonzeros per DER.
    """
    return ProblemSize(5 * buses + 4 * ders, 30 * buses + 8 * ders).times(periods)


def feeders_size(system: System, periods: int) -> ProblemSize:
    """:func:`dso_size` summed over all feeders of ``system`` (the DSO side of ``common``)."""
    return dso_size(len(system.feeder_buses), len(system.ders), periods)


__all__ = ["BYTES_PER_ENTRY", "MAX_PERIODS", "ProblemSize",
           "ResourceError", "available_memory", "check_memory", "check_periods",
           "check_problem", "dso_size", "estimate_bytes", "feeders_size",
           "tso_size"]

