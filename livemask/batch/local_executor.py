"""``--engine local``: worker processes (spawn context) that each build the models once.

Every worker has its own one-slot task queue, so the driver always knows which file a worker holds. The
driver polls the workers' liveness: a worker that dies (killed, out of memory, a crash in native code)
is replaced by a fresh process and its file is tried once more, then reported failed
(:data:`~livemask.batch.executors.MAX_ATTEMPTS`). Workers ignore SIGINT (Ctrl-C in a terminal reaches the
whole process group; the driver decides), and leave on their own, abandoning the file they hold, when
the driver process is gone.
"""

from __future__ import annotations

import gc
import logging
import multiprocessing as mp
import os
import queue
import signal
import time
from collections import deque
from collections.abc import Callable
from pathlib import Path

from livemask.batch.executors import MAX_ATTEMPTS, Control, Executor, crashed
from livemask.batch.inputs import BatchInput
from livemask.batch.worker import FileOptions, FileResult

log = logging.getLogger(__name__)


def _worker_main(wid: int, factory: Callable, threads: int, out_dir: str, options: FileOptions, tasks, results,
                 abandon, parent_pid: int) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    from livemask.batch.worker import limit_threads, process_input, worker_id

    limit_threads(threads)
    try:
        started = time.monotonic()
        models = factory()
        models.load_s = round(time.monotonic() - started, 3)
    except BaseException as err:  # cannot work at all: tell the driver, which stops the batch
        results.put(("fatal", wid, f"{type(err).__name__}: {err}"))
        return
    results.put(("ready", wid, (worker_id(), models.load_s)))

    def orphaned() -> bool:
        return os.getppid() != parent_pid

    def should_stop() -> bool:
        return abandon.is_set() or orphaned()

    done = 0
    while not orphaned():
        try:
            task = tasks.get(timeout=0.5)
        except queue.Empty:
            continue
        if task is None:
            break
        item, attempts = task
        done += 1
        results.put(("done", wid, process_input(item, out_dir, models, options, should_stop, done, attempts)))


class LocalExecutor(Executor):
    name = "local"

    def __init__(self, factory: Callable, out_dir: Path, options: FileOptions, workers: int = 1, threads: int = 1,
                 poll_s: float = 0.2):
        self.factory = factory
        self.out_dir = Path(out_dir)
        self.options = options
        self.workers = max(int(workers), 1)
        self.threads = threads
        self.poll_s = poll_s
        self.ctx = mp.get_context("spawn")
        self.load_times: list[float] = []  # model load time of every worker started

    def _start(self, wid: int):
        tasks = self.ctx.Queue(maxsize=1)
        proc = self.ctx.Process(target=_worker_main, name=f"livemask-batch-{wid}", daemon=True, args=(
            wid, self.factory, self.threads, str(self.out_dir), self.options, tasks, self._results, self._abandon,
            os.getpid()))
        proc.start()
        return proc, tasks

    def run(self, items: list[BatchInput], on_result: Callable[[FileResult], None], control: Control) -> None:
        from livemask.core.errors import LivemaskError

        self._results = self.ctx.Queue()
        self._abandon = self.ctx.Event()
        pending = deque((item, 1) for item in items)
        workers: dict[int, tuple] = {}  # wid -> (process, task queue)
        running: dict[int, tuple[BatchInput, int]] = {}
        names: dict[int, str] = {}
        next_wid = 0
        for _ in range(min(self.workers, len(items))):
            workers[next_wid] = self._start(next_wid)
            next_wid += 1
        try:
            while True:
                if control.abandon.is_set():
                    self._abandon.set()
                if control.stop.is_set():
                    pending.clear()
                for wid, (proc, tasks) in workers.items():
                    if pending and wid not in running and proc.is_alive():
                        running[wid] = pending.popleft()
                        tasks.put(running[wid])
                if not running and not pending:
                    return
                self._drain(running, names, on_result, block=True)
                for wid in [w for w, (proc, _) in workers.items() if not proc.is_alive()]:
                    self._drain(running, names, on_result, block=False)  # a result sent just before dying
                    proc, _ = workers.pop(wid)
                    task = running.pop(wid, None)
                    if task is not None:
                        item, attempts = task
                        why = f"worker process died (exit code {proc.exitcode})"
                        log.warning("%s: %s", item.path, why)
                        if attempts < MAX_ATTEMPTS and not control.stop.is_set():
                            pending.appendleft((item, attempts + 1))
                        else:
                            on_result(crashed(item, attempts, why, names.get(wid)))
                    if pending:
                        workers[next_wid] = self._start(next_wid)
                        next_wid += 1
                if self._fatal:
                    raise LivemaskError(f"a batch worker could not start: {self._fatal}")
        finally:
            self._shutdown(workers)
            # release the queues' and event's semaphores now: the CLI leaves with os._exit, which skips the
            # finalizers that would unregister them (else the resource tracker warns about leaked semaphores)
            self._results.close()
            self._results.join_thread()
            workers.clear()
            self._results = self._abandon = None
            gc.collect()

    _fatal: str | None = None

    def _drain(self, running: dict, names: dict, on_result, block: bool) -> None:
        timeout = self.poll_s if block else 0.05
        while True:
            try:
                kind, wid, payload = self._results.get(timeout=timeout)
            except queue.Empty:
                return
            timeout = 0.0 if block else 0.05
            if kind == "ready":
                names[wid] = payload[0]
                self.load_times.append(payload[1])
            elif kind == "fatal":
                self._fatal = payload
            elif kind == "done":
                running.pop(wid, None)
                on_result(payload)

    def _shutdown(self, workers: dict) -> None:
        for _, tasks in workers.values():
            try:
                tasks.put_nowait(None)
            except (queue.Full, ValueError, OSError):
                pass
        deadline = time.monotonic() + 10.0
        for proc, tasks in workers.values():
            proc.join(timeout=max(deadline - time.monotonic(), 0.1))
            if proc.is_alive():
                proc.kill()
                proc.join(timeout=5)
            tasks.close()
            tasks.join_thread()
