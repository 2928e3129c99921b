"""Parse processes: feed bodies parsed in worker processes forked from a fork server (and,
for the poll's analysis, the new articles' language, countries and minerals found there
too: ``ParsePool.run`` with ``monitor.extract.extract``).

feedparser is pure Python, so threads would not use the other cores; a worker that dies
(a crash in a C extension, the OOM killer) costs one retry of that feed, not the cycle."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import multiprocessing
import os
import sys
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import TYPE_CHECKING

from monitor.exceptions import FeedError
from monitor.parse import ParsedFeed, parse_job, start_worker

if TYPE_CHECKING:
    from monitor.fetch import FetchResult

log = logging.getLogger("monitor.poll")

KEPT_MB = 150       # a kept parse process larger than this after a cycle is ended (a new one
                    # starts with the next cycle): analysing a day's news it holds ~70-100 MB


def parse_processes(configured: int | str) -> int:
    """Parse processes to start: as configured, or for "auto" one per core but one (at most
    4): the service process keeps a core busy analysing and storing, so a parse process
    more than that only competes with it (2 cores, 200 feeds × 30 new items: one parse
    process polls as fast as two and holds 30 MB less; bench/poll.py). None on one core,
    where a process would only add the cost of sending the bodies over."""
    if configured != "auto":
        return int(configured)
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:                       # not on Linux
        cores = os.cpu_count() or 1
    return 0 if cores < 2 else min(cores - 1, 4)


class ParsePool:
    """Worker processes that parse fetched feeds.

    Started on the first body of a cycle. A pool for one cycle (``monitor poll``) stops at
    its end. A kept one (``keep``: ``monitor run``'s) stays for the next cycles with the
    language, country and mineral data it has loaded, so a cycle neither loads them again
    nor adds a whole process to the service's memory; it is still stopped at a cycle's end
    when a worker has grown past ``KEPT_MB`` (or its size cannot be read: off Linux), so a
    long-running service never accumulates what a parser leaves behind. Workers are
    forked from a fork server that has the parser imported (``spawn`` where there is
    none), never from the threaded service process itself. If a worker dies (a crash in a C extension, the
    OOM killer), the pool is replaced and each feed that was in it is parsed once more,
    in a process of its own; a second death is recorded as that feed's error."""

    def __init__(self, processes: int, job=None, keep: bool = False) -> None:
        self.processes = processes
        self.job = job or parse_job      # a module-level function (it is pickled by name)
        self.keep = keep
        self._executor: ProcessPoolExecutor | None = None
        self._queued: asyncio.Semaphore | None = None     # made in the cycle's event loop

    @staticmethod
    def _context():
        if "forkserver" in multiprocessing.get_all_start_methods():
            context = multiprocessing.get_context("forkserver")
            # the main module too: each worker would otherwise import it again on start;
            # feedparser as well (~60 ms a worker, once per cycle otherwise)
            context.set_forkserver_preload(["__main__", "monitor.parse", "feedparser",
                                            "monitor.extract"])
            return context
        return multiprocessing.get_context("spawn")

    @classmethod
    def prepare(cls) -> None:
        """Start the fork server now (it imports the parser once, ~0.2 s), so that the
        first cycle's workers fork from it at once instead of waiting for it."""
        try:
            cls._start_fork_server(cls._context())
        except (OSError, RuntimeError, ValueError):
            pass            # the first cycle says so, and parses in the service process

    @staticmethod
    def _start_fork_server(context) -> None:
        if context.get_start_method() == "forkserver":
            from multiprocessing import forkserver

            with _service_import_path():
                forkserver.ensure_running()

    def _current(self) -> ProcessPoolExecutor:
        if self._executor is None:
            context = self._context()
            self._start_fork_server(context)
            self._executor = ProcessPoolExecutor(self.processes, mp_context=context,
                                                 initializer=start_worker,
                                                 initargs=(os.getpid(),))
        return self._executor

    async def parse(self, result: FetchResult, key_base: str | None = None) -> ParsedFeed | None:
        """The feed's articles and notes; raises FeedError. None when no worker process can be
        started here: the caller parses in its own process (and so does every later feed).
        ``key_base``: the feed's, which its articles' keys are read against
        (``monitor.parse.read_feed``).

        At most ``processes + 1`` parses wait in the workers' queue at a time, so work sent
        with ``run`` (finding the new articles' language, countries and minerals) never
        waits behind every other feed's parse."""
        if result.content is None:                # a 304 has nothing to parse
            return ParsedFeed([])
        if self._queued is None:
            self._queued = asyncio.Semaphore(self.processes + 1)
        async with self._queued:
            return await self._parse(result, result.content, key_base)

    async def _parse(self, result: FetchResult, content: bytes, key_base: str | None
                     ) -> ParsedFeed | None:
        """In the shared pool; when a worker dies, once more in a process of the feed's own
        (``_alone``): every feed that was in the broken pool is retried, and only the one
        that kills its own process too gets the error, never a feed that shared a pool with
        it twice."""
        loop = asyncio.get_running_loop()
        if not self.processes:
            return None
        try:
            executor = self._current()
            future = loop.run_in_executor(executor, self.job, content, result.headers, result.url,
                                          key_base)
        except (OSError, RuntimeError, ValueError) as exc:
            log.warning("cannot start parse processes (%s: %s); parsing in this process "
                        "instead (set poll.parse_processes = 0 to say so)",
                        type(exc).__name__, exc)
            self.processes = 0
            self._executor = None
            return None
        try:
            articles, error = await future
        except BrokenProcessPool:
            if self._executor is executor:
                self._executor = None
                executor.shutdown(wait=False, cancel_futures=True)
            articles, error = await self._alone(result, content, key_base)
        if error is not None:
            message, kind = error
            raise FeedError(message, kind=kind, status=result.status)
        return articles

    async def _alone(self, result: FetchResult, content: bytes, key_base: str | None):
        """The parse job in a worker process of its own (the retry after a worker died)."""
        loop = asyncio.get_running_loop()
        context = self._context()
        try:
            self._start_fork_server(context)
            executor = ProcessPoolExecutor(1, mp_context=context, initializer=start_worker,
                                           initargs=(os.getpid(),))
        except (OSError, RuntimeError, ValueError) as exc:
            raise FeedError(f"the parser process died while reading this feed, and no other "
                            f"could start ({type(exc).__name__}: {exc})", kind="parse",
                            status=result.status) from None
        try:
            return await loop.run_in_executor(executor, self.job, content, result.headers,
                                              result.url, key_base)
        except BrokenProcessPool:
            raise FeedError("the parser process died while reading this feed "
                            "(crash or out of memory)", kind="parse",
                            status=result.status) from None
        finally:
            executor.shutdown(wait=False, cancel_futures=True)

    async def run(self, function, *args):
        """``function(*args)`` in a worker process (a module-level function); None when no
        worker can run it (none configured, none could start, or the pool broke): the
        caller then does the work itself. Nothing is retried: the work is optional here.
        It queues behind at most ``processes + 1`` parses (see ``parse``)."""
        if not self.processes or self._executor is None:
            return None
        executor = self._executor
        try:
            return await asyncio.get_running_loop().run_in_executor(executor, function, *args)
        except BrokenProcessPool:
            if self._executor is executor:
                self._executor = None
                executor.shutdown(wait=False, cancel_futures=True)
            # said for each piece of work lost, whichever caller saw the pool break first (a
            # parse that did clears the pool without a word about this work)
            log.warning("a parse process died while running %s (crash or out of memory); "
                        "that work is done in the service process instead",
                        getattr(function, "__name__", function))
            return None
        except (OSError, RuntimeError, ValueError) as exc:
            log.debug("work in a parse process failed (%s: %s); done here instead",
                      type(exc).__name__, exc)
            return None

    def end_cycle(self) -> None:
        """At a cycle's end: stop the workers, unless the pool is kept and none of them has
        grown past ``KEPT_MB``."""
        self._queued = None                 # made again in the next cycle's event loop
        executor = self._executor
        if executor is None:
            return
        if self.keep:
            # the executor's worker pids (a private attribute; without it: not kept)
            sizes = [_resident_mb(pid) for pid in list(getattr(executor, "_processes", None) or ())]
            if sizes and all(size is not None and size <= KEPT_MB for size in sizes):
                return
            log.debug("parse processes ended after the cycle (%s MB)", sizes)
        self.close()

    def close(self) -> None:
        if self._executor is not None:
            self._executor.shutdown(wait=True, cancel_futures=True)
            self._executor = None


def _resident_mb(pid: int) -> float | None:
    """A process's resident size in MB; None when it cannot be read (gone, or not Linux)."""
    try:
        with open(f"/proc/{pid}/statm", "rb") as handle:
            pages = int(handle.read().split()[1])
    except (OSError, ValueError, IndexError):
        return None
    return pages * os.sysconf("SC_PAGE_SIZE") / 2**20


@contextlib.contextmanager
def _service_import_path():
    """The environment the fork server starts in: the service's own import path, without
    the working directory. The fork server is started with ``python -c``, which puts the
    working directory first on its path, and Python 3.11 hands it the service's
    ``sys.path`` without applying it: a ``monitor/`` folder where the service was started
    (a checkout beside the data, say) would shadow the installed package in every parse
    process."""
    names = ("PYTHONSAFEPATH", "PYTHONPATH")
    saved = {name: os.environ.get(name) for name in names}
    os.environ["PYTHONSAFEPATH"] = "1"
    os.environ["PYTHONPATH"] = os.pathsep.join(p for p in sys.path if p)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
