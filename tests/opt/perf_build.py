"""Quick build-time measurement for ``tsodso.opt`` (a script, not a unit test).

Run with ``PYTHONPATH=src python tests/opt/perf_build.py [n_vars]``. Builds a
transport-like LP with ``n`` variables in 4 blocks and ``2 n`` constraint nonzeros and
reports the time spent in the ``add_*`` calls, in the CSC assembly, in handing the model to
HiGHS (``passModel``) and in assembling Clarabel's standard form.
"""

from __future__ import annotations

import sys
import time

import numpy as np
import scipy.sparse as sp

from tsodso.opt import Model
from tsodso.opt._clarabel import ClarabelBackend
from tsodso.opt._highs import HighsBackend


def build(n: int, rng: np.random.Generator) -> tuple[Model, float]:
    t0 = time.perf_counter()
    model = Model("perf")
    nb = 4
    size = n // nb
    blocks = [
        model.add_variables(
            f"x{b}", size, lb=0.0, ub=rng.uniform(1, 10, size), cost=rng.uniform(1, 5, size)
        )
        for b in range(nb)
    ]
    # 100k rows, each with 2 nonzeros (pairs of consecutive variables of two blocks).
    rows = size
    for b in range(nb):
        a = sp.random_array((rows, size), density=1.0 / size, rng=rng, format="csr")
        nxt = blocks[(b + 1) % nb]
        model.add_constraints(
            f"c{b}",
            [(blocks[b], a), (nxt, rng.uniform(0.5, 1.5, size))],
            lb=-np.inf,
            ub=rng.uniform(5, 10, rows),
        )
    return model, time.perf_counter() - t0


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 100_000
    rng = np.random.default_rng(0)
    HighsBackend(build(100, rng)[0])  # warm-up (imports, first HiGHS instance)
    for rep in range(3):
        model, t_add = build(n, rng)
        t0 = time.perf_counter()
        a = model._linear_matrix()
        t_csc = time.perf_counter() - t0
        t0 = time.perf_counter()
        HighsBackend(model)
        t_highs = time.perf_counter() - t0
        t0 = time.perf_counter()
        ClarabelBackend(model)
        t_clar = time.perf_counter() - t0
        print(
            f"[{rep}] vars={model.num_vars} rows={model.num_cons} nnz={a.nnz}: "
            f"add_* {t_add * 1e3:.1f} ms, CSC {t_csc * 1e3:.1f} ms, "
            f"HiGHS passModel {t_highs * 1e3:.1f} ms, Clarabel assembly {t_clar * 1e3:.1f} ms, "
            f"total to HiGHS {(t_add + t_csc + t_highs) * 1e3:.1f} ms"
        )
    t0 = time.perf_counter()
    sol = model.solve("highs")
    print(
        f"HiGHS solve: {sol.status.value}, build_s={sol.build_s:.3f}, "
        f"solve_s={time.perf_counter() - t0:.3f}"
    )


if __name__ == "__main__":
    main()
