"""solve_feeders and the executors' partitions: Dask workers give the in-process results."""

from __future__ import annotations

import time

import numpy as np
import pandas as pd
import pytest

from tsodso.dso import Boundary, DsoOptions, solve_feeders
from tsodso.parallel import InProcessExecutor, make_executor

OPTIONS = DsoOptions(ac_check=False)


@pytest.fixture(scope="module")
def dask2():
    pytest.importorskip("distributed")
    executor = make_executor(workers=2)
    yield executor
    executor.close()


def _boundaries(system):
    base = np.linspace(20.0, 60.0, system.n_periods)
    return {f: Boundary(price=base + j) for j, f in enumerate(system.feeder_ids)}


def _released(executor, keys, wait_s=5.0):
    """True once no worker holds any of ``keys`` (release is asynchronous)."""
    deadline = time.monotonic() + wait_s
    while time.monotonic() < deadline:
        held = executor.client.run(lambda dask_worker: list(dask_worker.data))
        if not keys & {k for ks in held.values() for k in ks}:
            return True
        time.sleep(0.1)
    return False


def test_in_process_partition_is_the_data_itself(default_system):
    ex = InProcessExecutor()
    ids = default_system.feeder_ids
    with ex.partition(default_system, ids, lambda *_: pytest.fail("split called")) as part:
        assert [c.data for c in part.chunks] == [default_system]
        got = ex.map_chunks(part, lambda s, keys, xs, k: [(f, x * k) for f, x in
                                                          zip(keys, xs, strict=True)],
                            list(range(len(ids))), shared=(10,))
    assert got == [(f, 10 * j) for j, f in enumerate(ids)]


def test_dask_partition_sends_each_worker_its_feeders_once_and_keeps_them(default_system,
                                                                          dask2):
    def _where(system, feeder_ids):
        """Chunk task: (worker address, feeders the chunk's system holds) for each key.
        Nested, so Dask pickles it by value: workers cannot import the tests package."""
        from distributed import get_worker

        return [(get_worker().address, tuple(system.feeder_ids))] * len(feeder_ids)

    ids = default_system.feeder_ids
    with dask2.partition(default_system, ids,
                         lambda s, keys: s.subset_feeders(keys, grid=False)) as part:
        first = dask2.map_chunks(part, _where)
        again = dask2.map_chunks(part, _where)
        keys = {c.data.key for c in part.chunks}
    assert _released(dask2, keys)
    assert len(ids) > 2
    assert first == again  # same worker for each feeder on every call
    assert len({w for w, _ in first}) == 2
    for f, (_, held) in zip(ids, first, strict=True):
        assert f in held and len(held) < len(ids)  # a worker gets only its own feeders


def test_solve_feeders_on_two_dask_workers_equals_in_process(default_system, dask2):
    bounds = _boundaries(default_system)
    local = solve_feeders(default_system, None, bounds, OPTIONS)
    remote = solve_feeders(default_system, None, bounds, OPTIONS, executor=dask2)
    assert list(remote) == list(local) == default_system.feeder_ids
    for f, a in local.items():
        b = remote[f]
        assert a.objective == pytest.approx(b.objective, rel=1e-9), f
        for name in ("dlmp_p", "dlmp_q", "voltage_pu", "der_p_mw", "flow_p_mw"):
            pd.testing.assert_frame_equal(getattr(a, name), getattr(b, name), obj=name)
        pd.testing.assert_series_equal(a.interface_p_mw, b.interface_p_mw)


def test_solve_feeders_of_a_few_feeders(default_system, dask2):
    one = default_system.feeder_ids[-1:]
    res = solve_feeders(default_system, one, _boundaries(default_system), OPTIONS,
                        executor=dask2)
    assert list(res) == one
