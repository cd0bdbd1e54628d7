"""The server's worker threads: results and errors come back to the awaiting request, the pool stays bounded, and
a request that stops waiting leaves the pool working."""

from __future__ import annotations

import asyncio
import threading
import time

import pytest

from concurrency import Overlap
from mltrail.server import workers


def test_results_and_errors_reach_the_caller() -> None:
    async def main() -> tuple[int, str]:
        caller = threading.get_ident()
        value = await workers.run(lambda a, b: a + b, 2, 3)
        ran_in = await workers.run(threading.get_ident)
        assert ran_in != caller
        with pytest.raises(ValueError, match="bad input"):
            await workers.run(int, "bad input")
        return value, await workers.run(str.upper, "ok")

    assert asyncio.run(main()) == (5, "OK")


def test_a_burst_of_jobs_runs_on_up_to_the_pool_size_at_once() -> None:
    overlap = Overlap()

    def job() -> None:
        with overlap:
            time.sleep(0.01)

    async def main() -> None:
        await workers.run(job)  # leaves an idle thread: a burst must not count on it for every job
        await asyncio.gather(*(workers.run(job) for _ in range(3 * workers.THREADS)))

    asyncio.run(main())
    assert workers.THREADS // 2 < overlap.most <= workers.THREADS


def test_a_request_that_stops_waiting_does_not_break_the_pool() -> None:
    release = threading.Event()
    loop_errors: list[dict] = []

    async def main() -> str:
        asyncio.get_running_loop().set_exception_handler(lambda loop, context: loop_errors.append(context))
        waiting = asyncio.ensure_future(workers.run(release.wait))
        await asyncio.sleep(0.01)
        waiting.cancel()
        with pytest.raises(asyncio.CancelledError):
            await waiting
        release.set()  # the job ends after its caller is gone; its result is dropped
        result = await workers.run(lambda: "still working")
        await asyncio.sleep(0.01)
        return result

    assert asyncio.run(main()) == "still working"
    assert loop_errors == []
