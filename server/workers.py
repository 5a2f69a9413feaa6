"""A pool of worker processes, one per core, each running one job at a time.

Each worker is a spawned process with a duplex pipe. A job's messages (progress, logs, the
result) come back over the pipe; a cancel goes the other way and is read between chunks.
"""

import asyncio
import contextlib
import logging
import multiprocessing as mp
import os
import threading
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from multiprocessing.connection import Connection
from typing import Any

from server import worker_main
from server.messages import ENDS, Cancel, FromWorker, Job, Ready, Stop, ToWorker

log = logging.getLogger("barstream.workers")


class WorkerLost(Exception):
    """The worker process died while running a job."""


class Worker:
    """One worker process and the parent's end of its pipe."""

    def __init__(self, ctx: Any) -> None:
        self.conn, child = ctx.Pipe(duplex=True)
        self.process = ctx.Process(target=worker_main.main, args=(child,), daemon=True)
        self.process.start()
        child.close()
        self.send_lock = threading.Lock()

    def send(self, msg: ToWorker) -> None:
        with self.send_lock:
            self.conn.send(msg)

    def stop(self, busy: bool = False) -> None:
        """Stop the process: politely when idle, at once when it is mid-job."""
        if busy:
            self.process.terminate()
        else:
            with contextlib.suppress(OSError, BrokenPipeError):
                self.send(Stop())
        self.process.join(timeout=5)
        if self.process.is_alive():
            self.process.kill()
            self.process.join(timeout=5)
        self.conn.close()


def _recv(conn: Connection) -> FromWorker:
    try:
        return conn.recv()
    except (EOFError, OSError) as exc:
        raise WorkerLost(str(exc)) from exc


class WorkerPool:
    """Hands jobs to idle workers and streams their messages back to the event loop."""

    def __init__(self, size: int) -> None:
        self.size = max(1, size)
        self._ctx = mp.get_context("spawn")
        self._idle: asyncio.Queue[Worker] = asyncio.Queue()
        self._all: list[Worker] = []
        self._threads = ThreadPoolExecutor(2 * self.size + 2, thread_name_prefix="worker-pipe")
        self._closing = False
        self._busy: set[Worker] = set()
        self._replacing: set[asyncio.Task[None]] = set()

    async def start(self) -> None:
        """Start every worker and wait until each has compiled its kernels."""
        await asyncio.gather(*(self._spawn() for _ in range(self.size)))

    async def _spawn(self) -> None:
        loop = asyncio.get_running_loop()
        worker = await loop.run_in_executor(self._threads, Worker, self._ctx)
        try:
            msg = await loop.run_in_executor(self._threads, _recv, worker.conn)
        except BaseException:
            await loop.run_in_executor(self._threads, worker.stop, True)
            raise
        if not isinstance(msg, Ready):
            raise RuntimeError(f"worker did not start: {msg!r}")
        if self._closing:  # the pool stopped while this one started
            await loop.run_in_executor(self._threads, worker.stop, False)
            return
        self._all.append(worker)
        self._idle.put_nowait(worker)
        # The process sentinel becomes readable when the process ends: an idle worker that dies
        # is noticed at once and replaced (a busy one is noticed by its job's pipe).
        loop.add_reader(worker.process.sentinel, self._ended, worker)
        log.info("worker %s ready", worker.process.pid)

    def _ended(self, worker: Worker) -> None:
        """A worker process ended: if it was idle, take it out of the queue and replace it."""
        loop = asyncio.get_running_loop()
        loop.remove_reader(worker.process.sentinel)
        for w in self._drain_idle():
            if w is not worker:
                self._idle.put_nowait(w)
        if self._closing or worker not in self._all or worker in self._busy:
            return  # stopping, already replaced, or busy: its job's pipe reports it
        log.warning(
            "idle worker %s died (exit code %s)", worker.process.pid, worker.process.exitcode
        )
        task = loop.create_task(self._replace(worker))
        self._replacing.add(task)
        task.add_done_callback(self._replacing.discard)

    def _drain_idle(self) -> list[Worker]:
        out = []
        while not self._idle.empty():
            out.append(self._idle.get_nowait())
        return out

    def idle(self) -> int:
        """Return how many workers are free."""
        return self._idle.qsize()

    def alive(self) -> bool:
        """Return whether the pool is whole: every one of its workers running (False while a
        dead one is being replaced)."""
        live = [w for w in self._all if w.process.is_alive()]
        return len(live) == self.size

    async def run(
        self, job: dict[str, Any], cancel: asyncio.Event, grace: float = 10.0
    ) -> AsyncIterator[FromWorker]:
        """Run `job` on an idle worker, yielding its messages until a terminal one.

        Once `cancel` is set the worker is asked to stop; if it has not ended the job `grace`
        seconds later it is terminated (the iterator then raises WorkerLost). A worker whose job
        did not end with a terminal message, for whatever reason, is replaced, never reused.
        """
        loop = asyncio.get_running_loop()
        worker = await self._idle.get()
        while not worker.process.is_alive():  # died between its sentinel and now: never use it
            await self._replace(worker)
            worker = await self._idle.get()
        self._busy.add(worker)
        ended = False
        watcher = asyncio.create_task(self._cancel_then_kill(worker, cancel, grace))
        try:
            worker.send(Job(job))
            while not ended:
                msg = await loop.run_in_executor(self._threads, _recv, worker.conn)
                ended = isinstance(msg, ENDS)
                yield msg
        finally:
            watcher.cancel()
            self._busy.discard(worker)
            if ended and worker.process.is_alive():
                self._idle.put_nowait(worker)
            else:
                await self._replace(worker)

    async def _cancel_then_kill(self, worker: Worker, cancel: asyncio.Event, grace: float) -> None:
        await cancel.wait()
        with contextlib.suppress(OSError, BrokenPipeError):
            worker.send(Cancel())
        await asyncio.sleep(grace)
        log.warning(
            "worker %s ignored a cancel for %.0f s; terminating it", worker.process.pid, grace
        )
        worker.process.terminate()

    async def _replace(self, worker: Worker) -> None:
        if worker not in self._all:
            return  # already being replaced
        log.warning("replacing worker %s", worker.process.pid)
        self._all.remove(worker)
        with contextlib.suppress(Exception):
            asyncio.get_running_loop().remove_reader(worker.process.sentinel)
        # Terminating also unblocks a thread still waiting in recv() on this worker's pipe.
        await asyncio.get_running_loop().run_in_executor(self._threads, worker.stop, True)
        if not self._closing:
            await self._spawn()

    async def close(self) -> None:
        """Stop every worker (and any replacement being started: none outlives the pool)."""
        self._closing = True
        loop = asyncio.get_running_loop()
        for task in list(self._replacing):
            task.cancel()
        await asyncio.gather(*self._replacing, return_exceptions=True)
        for w in self._all:
            with contextlib.suppress(Exception):
                loop.remove_reader(w.process.sentinel)
        idle = set()
        while not self._idle.empty():
            idle.add(id(self._idle.get_nowait()))
        await asyncio.gather(
            *(loop.run_in_executor(self._threads, w.stop, id(w) not in idle) for w in self._all)
        )
        self._all.clear()
        self._threads.shutdown(wait=False, cancel_futures=True)


def default_size() -> int:
    """One worker per core."""
    return os.cpu_count() or 1
