"""One executor interface for parallel work (many DSOs, scenario sweeps).

In-process by default; :class:`DaskExecutor` scales out to a Dask ``LocalCluster`` with
``workers`` processes or to an existing scheduler, without changing the calling code.

Two ways to run work:

* :meth:`Executor.map` maps a function over items; every task carries its own arguments.
  :meth:`Executor.as_completed` does the same and yields each result as its task finishes.
* :meth:`Executor.partition` splits keyed data (for example a :class:`~tsodso.model.system.
  System` by feeder) into one chunk per worker and sends each chunk once; then
  :meth:`Executor.map_chunks` runs one small task per chunk on the worker that holds it,
  as often as needed. A key always lands on the same worker, so per-process caches (the
  ADMM feeder models) stay valid between calls. Release a partition with
  :meth:`Partition.release` or a ``with`` block. In process nothing is split or copied.

Limits, checked before anything starts (:func:`check_executor_options`): ``workers`` is
an integer from 1 to the number of CPUs this process may use (1 means in process); a
scheduler address is ``[PROTOCOL://]HOST:PORT`` with protocol ``tcp`` (the default),
``tls``, ``ucx``, ``ws`` or ``wss``; ``workers`` and a scheduler exclude each other (an
existing cluster has its own workers). Connecting to a scheduler gives up after
:data:`CONNECT_TIMEOUT_S` seconds with a :class:`~tsodso.errors.TsodsoError`.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from tsodso.errors import TsodsoError

#: Seconds to wait for a Dask scheduler before giving up (Dask's own default is 30 s).
CONNECT_TIMEOUT_S = 5.0

#: Protocols a scheduler address may name.
SCHEDULER_PROTOCOLS = ("tcp", "tls", "ucx", "ws", "wss")

_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
_ADDRESS = re.compile(rf"(?:(?P<protocol>[a-z]+)://)?(?P<host>{_LABEL}(?:\.{_LABEL})*"
                      r"|\[[0-9A-Fa-f:.]+\]):(?P<port>\d{1,5})")


def available_cpus() -> int:
    """CPUs this process may run on (its affinity where the OS tells, else all)."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def check_workers(workers: object) -> int | None:
    """``workers`` if None or an integer from 1 to :func:`available_cpus`; else an error."""
    if workers is None:
        return None
    if isinstance(workers, bool) or not isinstance(workers, int | np.integer):
        raise TsodsoError(f"workers must be a positive integer, got {workers!r}")
    cpus = available_cpus()
    if not 1 <= workers <= cpus:
        raise TsodsoError(f"workers must be 1 .. {cpus} (the CPUs available here), got "
                          f"{workers}")
    return int(workers)


def check_scheduler_address(address: object) -> str:
    """``address`` if it looks like ``[PROTOCOL://]HOST:PORT``; else a one-line error."""
    text = address if isinstance(address, str) else ""
    match = _ADDRESS.fullmatch(text.strip())
    if match is None:
        raise TsodsoError(f"scheduler address {address!r} is not [PROTOCOL://]HOST:PORT "
                          "(e.g. tcp://10.0.0.5:8786)")
    protocol = match["protocol"]
    if protocol is not None and protocol not in SCHEDULER_PROTOCOLS:
        raise TsodsoError(f"scheduler address {address!r}: protocol '{protocol}' is not one "
                          f"of {', '.join(SCHEDULER_PROTOCOLS)}")
    if not 1 <= int(match["port"]) <= 65535:
        raise TsodsoError(f"scheduler address {address!r}: port must be 1 .. 65535")
    return text.strip()


def check_executor_options(workers: object = None, scheduler: object = None) -> None:
    """Validate :func:`make_executor`'s arguments without starting anything."""
    if workers is not None and scheduler is not None:
        raise TsodsoError("give workers (a new local cluster) or a scheduler address (an "
                          "existing cluster, which has its own workers), not both")
    check_workers(workers)
    if scheduler is not None:
        check_scheduler_address(scheduler)


@dataclass
class Chunk:
    """One chunk of a :class:`Partition`.

    Attributes
    ----------
    positions : list of int
        Positions of the chunk's keys in :attr:`Partition.keys`.
    data : Any
        The chunk's data: the caller's object (in process) or a Dask future on ``worker``.
    worker : str, optional
        Address of the Dask worker holding ``data`` (None in process).
    """

    positions: list[int]
    data: Any
    worker: str | None = None


class Partition:
    """Keyed data split into chunks placed once (see :meth:`Executor.partition`).

    Usable as a context manager; leaving the block calls :meth:`release`.
    """

    def __init__(self, keys: Sequence[str], chunks: list[Chunk],
                 on_release: Callable[[list[Chunk]], None] | None = None):
        self.keys = list(keys)
        self.chunks = chunks
        self._on_release = on_release

    def chunk_keys(self, chunk: Chunk) -> list[str]:
        """The keys of one chunk, in partition order."""
        return [self.keys[i] for i in chunk.positions]

    def chunk_args(self, chunk: Chunk, per_key: Sequence[Sequence[Any]]) -> list[list[Any]]:
        """Each per-key argument sequence cut down to one chunk's keys."""
        return [[seq[i] for i in chunk.positions] for seq in per_key]

    def assemble(self, chunk_results: Sequence[Sequence[Any]]) -> list[Any]:
        """Per-chunk result lists back in key order (one result per key)."""
        out: list[Any] = [None] * len(self.keys)
        for chunk, results in zip(self.chunks, chunk_results, strict=True):
            if len(results) != len(chunk.positions):
                raise TsodsoError(f"a chunk task returned {len(results)} results for "
                                  f"{len(chunk.positions)} keys")
            for i, r in zip(chunk.positions, results, strict=True):
                out[i] = r
        return out

    def release(self) -> None:
        """Free the chunks' data on the workers (idempotent)."""
        if self._on_release is not None:
            self._on_release(self.chunks)
            self._on_release = None

    def __enter__(self) -> Partition:
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


class Executor(Protocol):
    """Runs tasks in order-preserving batches.

    ``workers`` is the number of worker processes (1 in process).

    ``map(func, *iterables)`` returns ``[func(*args) for args in zip(*iterables)]``.

    ``partition(data, keys, split)`` places ``data`` for the keys ``keys``: one chunk per
    worker with ``split(data, chunk_keys)`` sent to it once (in process: one chunk, ``data``
    itself, no copy).

    ``map_chunks(part, func, *per_key, shared=())`` calls, once per chunk and on the worker
    holding it, ``func(chunk_data, chunk_keys, *chunk_per_key, *shared)``, which must return
    one result per chunk key; ``per_key`` are sequences aligned with ``part.keys``. Returns
    the results in key order.
    """

    workers: int

    def map(self, func: Callable[..., Any], *iterables: Iterable[Any]) -> list[Any]: ...

    def as_completed(self, func: Callable[..., Any], *iterables: Iterable[Any]
                     ) -> Iterator[tuple[int, Any]]: ...

    def partition(self, data: Any, keys: Sequence[str],
                  split: Callable[[Any, list[str]], Any]) -> Partition: ...

    def map_chunks(self, part: Partition, func: Callable[..., Sequence[Any]],
                   *per_key: Sequence[Any], shared: tuple = ()) -> list[Any]: ...

    def close(self) -> None: ...


def _check_lengths(part: Partition, per_key: Sequence[Sequence[Any]]) -> None:
    for seq in per_key:
        if len(seq) != len(part.keys):
            raise TsodsoError(f"map_chunks: a per-key argument has {len(seq)} items for "
                              f"{len(part.keys)} keys")


class InProcessExecutor:
    """Runs everything in the calling process, in order (the default)."""

    workers = 1

    def map(self, func: Callable[..., Any], *iterables: Iterable[Any]) -> list[Any]:
        return [func(*args) for args in zip(*iterables, strict=True)]

    def as_completed(self, func: Callable[..., Any], *iterables: Iterable[Any]
                     ) -> Iterator[tuple[int, Any]]:
        """``(position, result)`` of each task as it finishes (here: in order)."""
        for i, args in enumerate(zip(*iterables, strict=True)):
            yield i, func(*args)

    def partition(self, data: Any, keys: Sequence[str],
                  split: Callable[[Any, list[str]], Any]) -> Partition:
        """One chunk holding ``data`` itself (``split`` is not called)."""
        return Partition(keys, [Chunk(list(range(len(keys))), data)] if len(keys) else [])

    def map_chunks(self, part: Partition, func: Callable[..., Sequence[Any]],
                   *per_key: Sequence[Any], shared: tuple = ()) -> list[Any]:
        _check_lengths(part, per_key)
        return part.assemble([func(c.data, part.chunk_keys(c), *part.chunk_args(c, per_key),
                                   *shared) for c in part.chunks])

    def close(self) -> None:
        pass


class DaskExecutor:
    """Runs tasks on a Dask cluster: a new ``LocalCluster(n_workers=workers)`` (one thread
    per worker process) or the scheduler at ``address``. Needs the ``distributed`` package.

    A partition has one chunk per worker present when it is made, scattered to that
    worker; chunk tasks are pinned to it (``allow_other_workers=False``). A partition does
    not survive the loss of its worker: make a new one.
    """

    def __init__(self, workers: int | None = None, address: str | None = None,
                 timeout_s: float = CONNECT_TIMEOUT_S):
        """``workers`` (default 2) for a new ``LocalCluster``, or the ``address`` of an
        existing scheduler reached within ``timeout_s`` seconds (not both)."""
        check_executor_options(workers, address)
        try:
            from distributed import Client, LocalCluster
        except ImportError as err:  # pragma: no cover - depends on the environment
            raise TsodsoError("Dask is not installed: pip install distributed") from err
        self._cluster = None
        if address is not None:
            self.client = _connect(Client, address, timeout_s)
        else:
            workers = 2 if workers is None else workers
            self._cluster = LocalCluster(n_workers=workers, threads_per_worker=1,
                                         processes=True, dashboard_address=None)
            self.client = Client(self._cluster)
        self.workers = len(self._addresses()) or (workers or 1)

    def _addresses(self) -> list[str]:
        return sorted(self.client.scheduler_info().get("workers", {}))

    def map(self, func: Callable[..., Any], *iterables: Iterable[Any]) -> list[Any]:
        futures = self.client.map(func, *iterables, pure=False)
        return self.client.gather(futures)

    def as_completed(self, func: Callable[..., Any], *iterables: Iterable[Any]
                     ) -> Iterator[tuple[int, Any]]:
        """``(position, result)`` of each task as it finishes on the cluster (the caller
        can store each result at once: a sweep killed half way keeps what finished)."""
        from distributed import as_completed

        futures = self.client.map(func, *iterables, pure=False)
        where = {f.key: i for i, f in enumerate(futures)}
        try:
            for future, result in as_completed(futures, with_results=True):
                yield where[future.key], result
        finally:
            self.client.cancel(futures)

    def partition(self, data: Any, keys: Sequence[str],
                  split: Callable[[Any, list[str]], Any]) -> Partition:
        """Contiguous, near-equal chunks, one per worker; ``split`` runs here, in the
        calling process, and each chunk's data is scattered to its worker."""
        addresses = self._addresses()
        if not addresses:
            raise TsodsoError("the Dask cluster has no workers")
        keys = list(keys)
        if not keys:
            return Partition(keys, [])
        n = min(len(addresses), len(keys))
        chunks = []
        for address, pos in zip(addresses[:n], np.array_split(np.arange(len(keys)), n),
                                strict=True):
            positions = [int(i) for i in pos]
            sub = split(data, [keys[i] for i in positions])
            future = self.client.scatter(sub, workers=[address], hash=False)
            chunks.append(Chunk(positions, future, address))
        return Partition(keys, chunks, self._release)

    def map_chunks(self, part: Partition, func: Callable[..., Sequence[Any]],
                   *per_key: Sequence[Any], shared: tuple = ()) -> list[Any]:
        _check_lengths(part, per_key)
        futures = [self.client.submit(func, c.data, part.chunk_keys(c),
                                      *part.chunk_args(c, per_key), *shared,
                                      workers=[c.worker], allow_other_workers=False,
                                      pure=False)
                   for c in part.chunks]
        return part.assemble(self.client.gather(futures))

    def _release(self, chunks: list[Chunk]) -> None:
        futures = [c.data for c in chunks]
        if futures and self.client.status == "running":
            self.client.cancel(futures)

    def close(self) -> None:
        self.client.close()
        if self._cluster is not None:
            self._cluster.close()


def _connect(client_class: Any, address: str, timeout_s: float) -> Any:
    """A Dask ``Client`` for ``address``, or a one-line error after ``timeout_s`` seconds."""
    try:
        return client_class(address, timeout=timeout_s)
    except (OSError, TimeoutError) as err:
        reason = " ".join(str(err).split()) or type(err).__name__
        raise TsodsoError(f"cannot connect to the Dask scheduler at {address} within "
                          f"{timeout_s:g} s ({reason})") from None


def make_executor(workers: int | None = None, scheduler: str | None = None,
                  timeout_s: float = CONNECT_TIMEOUT_S) -> Executor:
    """In process unless ``workers`` > 1 (a new Dask ``LocalCluster``) or a ``scheduler``
    address is given (reached within ``timeout_s`` seconds); ``workers=1`` is in process.
    Invalid or conflicting arguments raise :class:`~tsodso.errors.TsodsoError` (see
    :func:`check_executor_options`)."""
    check_executor_options(workers, scheduler)
    if scheduler is not None:
        return DaskExecutor(address=scheduler, timeout_s=timeout_s)
    if workers is not None and workers > 1:
        return DaskExecutor(workers=workers)
    return InProcessExecutor()
