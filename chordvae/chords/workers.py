"""Worker processes that outlive a dying worker: the task that killed one is named, nothing else lost.

Each worker runs one task at a time, so when a worker dies (a segfault in a parser, the
out-of-memory killer) the task it was running is known: that task alone is reported as
:class:`WorkerDied`, a fresh worker takes its place, and every other result, finished or
still to come, is kept. Closing the iterator (e.g. ``--strict`` at the first bad file)
kills the workers at once instead of waiting for their tasks. A worker's address space can be
limited, so that a task that would exhaust the machine's memory fails in its worker alone.
"""
from __future__ import annotations

import multiprocessing
import resource
import signal
from dataclasses import dataclass
from multiprocessing.connection import Connection, wait
from multiprocessing.context import BaseContext
from typing import Any, Callable, Iterator, Sequence


@dataclass(frozen=True)
class WorkerDied:
    """The worker running a task ended without an answer; ``exitcode`` as multiprocessing
    reports it (negative: killed by that signal)."""

    exitcode: int | None

    def __str__(self) -> str:
        if self.exitcode is not None and self.exitcode < 0:
            try:
                how = f"killed by {signal.Signals(-self.exitcode).name}"
            except ValueError:
                how = f"killed by signal {-self.exitcode}"
        else:
            how = f"exit code {self.exitcode}"
        return f"worker process died ({how}; out of memory or crashed) while reading it"


class _Worker:
    """One process and its pipe; ``task`` is the index it is running, or None."""

    def __init__(self, context: BaseContext, function: Callable[..., Any], address_space: int | None) -> None:
        self.conn, child = context.Pipe()
        self.process = context.Process(target=_serve, args=(child, function, address_space), daemon=True)
        self.process.start()
        child.close()
        self.task: int | None = None

    def give(self, task: int, args: tuple) -> None:
        self.task = task
        try:
            self.conn.send((task, args))
        except OSError:   # already dead: its sentinel says so
            pass

    def answer(self) -> tuple[int, Any] | None:
        """The worker's ``(task, result)`` if it sent one, else None (it died first)."""
        try:
            if self.conn.poll():
                return self.conn.recv()
        except (EOFError, OSError):
            pass
        return None

    def stop(self, grace: float = 0.0) -> None:
        """End the process (after ``grace`` seconds to exit by itself) and close the pipe."""
        self.process.join(grace)
        if self.process.is_alive():
            self.process.kill()
            self.process.join()
        self.conn.close()


def _serve(conn: Connection, function: Callable[..., Any], address_space: int | None) -> None:
    """A worker's loop: ``(task, args)`` in, ``(task, function(*args))`` out, until the pipe closes.
    Ctrl-C is left to the parent, which stops the workers. ``address_space``: the process's limit
    in bytes (beyond it allocations fail: MemoryError in Python)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    if address_space is not None:
        _, hard = resource.getrlimit(resource.RLIMIT_AS)
        resource.setrlimit(resource.RLIMIT_AS, (address_space if hard == resource.RLIM_INFINITY
                                                else min(address_space, hard), hard))
    while True:
        try:
            task, args = conn.recv()
        except EOFError:
            return
        conn.send((task, function(*args)))


def run_tasks(function: Callable[..., Any], tasks: Sequence[tuple], jobs: int,
              context: BaseContext | None = None, address_space: int | None = None) -> Iterator[tuple[int, Any]]:
    """Yield ``(index, function(*tasks[index]))`` as tasks finish, from ``jobs`` worker processes,
    each limited to ``address_space`` bytes (None: no limit).

    ``function`` must be importable by the workers (a module-level function); tasks start in
    order. A task whose worker dies yields ``(index, WorkerDied(exitcode))``.
    """
    context = context or multiprocessing.get_context()
    pending = list(range(len(tasks)))[::-1]   # popped from the end
    workers: list[_Worker] = []
    try:
        while True:
            while pending and len(workers) < jobs:
                workers.append(_Worker(context, function, address_space))
            for worker in workers:
                if worker.task is None and pending:
                    index = pending.pop()
                    worker.give(index, tasks[index])
            busy = [w for w in workers if w.task is not None]
            if not busy:
                return
            ready = set(wait([w.conn for w in busy] + [w.process.sentinel for w in busy]))
            for worker in busy:
                if worker.conn not in ready and worker.process.sentinel not in ready:
                    continue
                task, answer = worker.task, worker.answer()
                worker.task = None
                if answer is None or worker.process.sentinel in ready:   # dead: replace it
                    workers.remove(worker)
                    worker.stop(grace=1.0)
                yield answer if answer is not None else (task, WorkerDied(worker.process.exitcode))
    finally:
        for worker in workers:
            worker.stop()
