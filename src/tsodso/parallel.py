"""One executor interface for parallel work (many DSOs, scenario sweeps).

In-process by default; :class:`DaskExecutor` scales out to a Dask ``LocalCluster`` with
``workers`` processes or to an existing scheduler, without changing the calling code.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any, Protocol

from tsodso.errors import TsodsoError


class Executor(Protocol):
    """Maps a function over items and returns the results in order."""

    def map(self, func: Callable[..., Any], *iterables: Iterable[Any]) -> list[Any]: ...

    def close(self) -> None: ...


class InProcessExecutor:
    """Runs everything in the calling process, in order (the default)."""

    workers = 1

    def map(self, func: Callable[..., Any], *iterables: Iterable[Any]) -> list[Any]:
        return [func(*args) for args in zip(*iterables, strict=True)]

    def close(self) -> None:
        pass


class DaskExecutor:
    """Runs tasks on a Dask cluster: a new ``LocalCluster(n_workers=workers)`` or the
    scheduler at ``address``. Needs the ``distributed`` package."""

    def __init__(self, workers: int | None = None, address: str | None = None):
        try:
            from distributed import Client, LocalCluster
        except ImportError as err:  # pragma: no cover - depends on the environment
            raise TsodsoError("Dask is not installed: pip install distributed") from err
        self._cluster = None
        if address:
            self.client = Client(address)
        else:
            self._cluster = LocalCluster(n_workers=workers or 2, threads_per_worker=1,
                                         processes=True, dashboard_address=None)
            self.client = Client(self._cluster)
        self.workers = len(self.client.scheduler_info().get("workers", {})) or (workers or 1)

    def map(self, func: Callable[..., Any], *iterables: Iterable[Any]) -> list[Any]:
        futures = self.client.map(func, *iterables, pure=False)
        return self.client.gather(futures)

    def close(self) -> None:
        self.client.close()
        if self._cluster is not None:
            self._cluster.close()


def make_executor(workers: int | None = None, scheduler: str | None = None) -> Executor:
    """In-process unless ``workers`` > 1 or a ``scheduler`` address is given."""
    if scheduler:
        return DaskExecutor(address=scheduler)
    if workers and workers > 1:
        return DaskExecutor(workers=workers)
    return InProcessExecutor()
