"""The threads that run the synchronous part of a request (parsing, store calls, encoding) off the event loop.

A small pool of our own instead of ``starlette.concurrency.run_in_threadpool``: anyio's version enters a cancel
scope, takes a capacity-limiter token and yields to the loop twice per call, which cost more CPU than loading a
run. Here a call is one put on a C queue and one ``call_soon_threadsafe`` back. The pool is bounded: requests beyond
:data:`THREADS` wait in the queue rather than adding threads that would only contend for the GIL.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import queue
import threading
from collections.abc import Callable
from typing import Any, TypeVar

T = TypeVar("T")

#: Worker threads per process. The work holds the GIL except while the database runs a statement or waits for
#: a lock, so a few threads per core keep the database busy; more only take turns at the GIL.
THREADS = 16

_Job = tuple[asyncio.AbstractEventLoop, "asyncio.Future[Any]", Callable[..., Any], tuple[Any, ...]]
_jobs: queue.SimpleQueue[_Job] = queue.SimpleQueue()
_threads: list[threading.Thread] = []
#: Threads that finished a job and have not been counted on for a new one (as concurrent.futures counts them).
_idle = 0
_lock = threading.Lock()


async def run(func: Callable[..., T], *args: Any) -> T:
    """``func(*args)`` in a worker thread; its exception, if any, is raised here."""
    loop = asyncio.get_running_loop()
    future: asyncio.Future[T] = loop.create_future()
    _jobs.put((loop, future, func, args))
    _count_on_a_thread()
    return await future


def _count_on_a_thread() -> None:
    """Count on an idle thread for the job just queued, or start one while there are fewer than THREADS."""
    global _idle
    with _lock:
        if _idle:
            _idle -= 1
        elif len(_threads) < THREADS:
            thread = threading.Thread(target=_work, name=f"mltrail-worker-{len(_threads)}", daemon=True)
            _threads.append(thread)
            thread.start()


def _work() -> None:
    global _idle
    while True:
        _do(*_jobs.get())  # in a function of its own: nothing of the job outlives it (a result can be large)
        with _lock:
            _idle += 1


def _do(
    loop: asyncio.AbstractEventLoop, future: asyncio.Future[Any], func: Callable[..., Any], args: tuple[Any, ...]
) -> None:
    try:
        result = func(*args)
    except BaseException as exc:  # handed to the awaiting request, like any other outcome
        _call_back(loop, _set_exception, future, exc)
    else:
        _call_back(loop, _set_result, future, result)


def _call_back(loop: asyncio.AbstractEventLoop, setter: Callable[..., None], *args: Any) -> None:
    with contextlib.suppress(RuntimeError):  # the loop was closed meanwhile (shutdown): nobody waits any more
        loop.call_soon_threadsafe(setter, *args)


def _set_result(future: asyncio.Future[Any], result: Any) -> None:
    if not future.done():  # a cancelled request (client gone, server stopping) no longer wants it
        future.set_result(result)


def _set_exception(future: asyncio.Future[Any], exc: BaseException) -> None:
    if not future.done():
        future.set_exception(exc)


def _reset_after_fork() -> None:
    """A forked child has none of the parent's threads, and must not wait for them."""
    global _jobs, _idle, _lock
    _jobs = queue.SimpleQueue()
    _threads.clear()
    _idle = 0
    _lock = threading.Lock()


os.register_at_fork(after_in_child=_reset_after_fork)
