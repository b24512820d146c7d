"""Where a sweep's points run: an embedded Dask cluster of processes, or an existing one.

The default is a ``distributed.LocalCluster`` of ``workers`` processes with one thread each
(a point is CPU-bound Python; processes sidestep the GIL). ``scheduler`` connects to a
running cluster instead (``dask scheduler`` and ``dask worker ADDRESS`` on any machines that
share the codesign cache directory, ``$CODESIGN_CACHE``, if they should share builds).
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Iterator

from codesign.errors import OptionError, SchedulerError

CONNECT_TIMEOUT = 10.0
"""Seconds to wait for a scheduler given by address."""


@contextlib.contextmanager
def dask_client(scheduler: str | None = None, workers: int = 2, *,
                connect_timeout: float = CONNECT_TIMEOUT,
                say: Callable[[str], None] = lambda message: None) -> Iterator[object]:
    """A ``distributed.Client`` on ``scheduler`` or on a new local cluster of ``workers``
    processes; closed (and the local cluster shut down) on exit."""
    from distributed import Client, LocalCluster

    if scheduler is not None:
        try:
            client = Client(scheduler, timeout=connect_timeout)
        except (OSError, TimeoutError, ValueError) as exc:
            reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            raise SchedulerError(f"scheduler {scheduler!r} cannot be reached ({reason}); give "
                                 "the address of a running Dask scheduler (e.g. "
                                 "tcp://host:8786) or leave --scheduler unset for a local "
                                 "cluster") from None
        say(f"scheduler {scheduler}: {len(client.scheduler_info()['workers'])} workers; "
            f"dashboard {client.dashboard_link}")
        try:
            yield client
        finally:
            client.close()
        return
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
        raise OptionError(f"workers={workers!r}: a local cluster needs at least 1 worker")
    cluster = LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                           dashboard_address=":0", silence_logs=logging.ERROR)
    client = Client(cluster)
    say(f"local Dask cluster: {workers} worker process(es); dashboard {client.dashboard_link}")
    try:
        yield client
    finally:
        client.close()
        cluster.close()
