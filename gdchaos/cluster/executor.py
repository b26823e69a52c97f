"""Units computed by Dask workers, handed back to the one writer as they finish (:class:`DaskExecutor`)."""
from __future__ import annotations

import queue
import uuid
from collections.abc import Callable, Iterator

from distributed import Client, KilledWorker, wait

from gdchaos.cluster.worker import unit_task
from gdchaos.config import SweepConfig
from gdchaos.engine.compute import UnitResult
from gdchaos.engine.sweep import UnitProgress
from gdchaos.engine.units import Unit
from gdchaos.errors import GdchaosError

POLL_SECONDS = 1.0  # how often progress events of units in flight are passed on


class DaskExecutor:
    """Submit every pending unit to a Dask cluster; yield their progress and results in any order.

    Only the config (JSON), the unit and the file's dataset fingerprint travel to a worker; results
    are fetched (and released on the worker) as soon as each unit finishes. A worker lost mid-unit
    makes Dask run the unit again elsewhere. Closing the executor (or leaving its ``with`` block,
    also by Ctrl-C) cancels what is still running and closes the cluster it started.
    """

    def __init__(self, client: Client, *, close: Callable[[], None] | None = None,
                 function: Callable = unit_task) -> None:
        self.client = client
        self._close = close
        self.function = function

    def results(self, config: SweepConfig, units: list[Unit], fingerprint: str
                ) -> Iterator[tuple[Unit, UnitProgress | UnitResult]]:
        """Progress of units in flight (every few seconds) and each unit's result as it finishes."""
        client, run = self.client, uuid.uuid4().hex[:8]
        topic = f"gdchaos-progress-{run}"
        events: queue.SimpleQueue = queue.SimpleQueue()
        client.subscribe_topic(topic, lambda event: events.put(event[1]))
        config_json = config.to_json()
        futures = {client.submit(self.function, config_json, unit, fingerprint, topic, pure=False,
                                 key=f"gdchaos-unit-{unit.index}-{run}"): unit for unit in units}
        by_index = {unit.index: unit for unit in units}
        remaining = set(futures)
        failures: list[str] = []
        try:
            while remaining:
                try:
                    finished = wait(list(remaining), timeout=POLL_SECONDS, return_when="FIRST_COMPLETED").done
                except TimeoutError:
                    finished = set()
                remaining -= finished
                in_flight = {futures[future].index for future in remaining}
                while not events.empty():
                    event = events.get()
                    if event["unit"] in in_flight:  # late events of finished units are dropped
                        yield by_index[event["unit"]], UnitProgress(event["phase"], event["epoch"], {},
                                                                    event["active"])
                for future in finished:
                    unit = futures[future]
                    error = future.exception() if future.status == "error" else None
                    if error is None:
                        result = future.result()
                        future.release()
                        yield unit, result
                    elif isinstance(error, GdchaosError):
                        failures.append(f"unit {unit.index}: {error}")
                    elif isinstance(error, KilledWorker):
                        failures.append(f"unit {unit.index}: the workers computing it died too often "
                                        "(out of memory? see the worker logs)")
                    else:
                        raise error
        finally:
            client.cancel([future for future in futures if future in remaining])
            client.unsubscribe_topic(topic)
        if failures:
            more = f" (and {len(failures) - 1} more)" if len(failures) > 1 else ""
            raise GdchaosError(f"{failures[0]}{more}; the finished units are stored: rerun to retry the rest")

    def close(self) -> None:
        """Close the client and the cluster this executor started."""
        self.client.close()
        if self._close:
            self._close()

    def __enter__(self) -> "DaskExecutor":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
