"""``--engine ray``: one Ray actor per worker holds the models; each file is a task on an idle actor.

``--address`` joins a running cluster (``ray start --head`` on one machine, ``ray start --address=...`` on
the others); without it ``ray.init(num_cpus=N)`` starts a private local one. Files are read by path inside
the actors, with OpenCV, so on a cluster every input and ``--out`` must be on storage that every node mounts
at the same path (or inputs must be URLs). An actor that dies (its process killed, its node lost) fails its
task with ``RayActorError``: the actor is replaced and the file tried once more, then reported failed.
Before anything else, :func:`check_address` opens a TCP connection to ``--address`` with a bounded
timeout: an unreachable cluster is one line and exit 2 instead of Ray's endless retries.
"""

from __future__ import annotations

import logging
import socket
import time
from collections import deque
from collections.abc import Callable
from pathlib import Path

from livemask.batch.executors import MAX_ATTEMPTS, Control, Executor, crashed
from livemask.batch.inputs import BatchInput
from livemask.batch.worker import FileOptions, FileResult
from livemask.core.errors import ConfigError, LivemaskError, exception_line

log = logging.getLogger(__name__)

INSTALL_HINT = "--engine ray needs Ray, which is not installed: pip install 'livemask[ray]'"


CONNECT_TIMEOUT_S = 10.0
DEFAULT_PORTS = {"ray": 10001, "": 6379}  # Ray client (ray://) and the cluster's GCS


def address_host_port(address: str) -> tuple[str, int] | None:
    """``[ray://]host[:port]`` -> (host, port); None for ``auto`` / ``local`` (no connection to check)."""
    text = address.strip()
    if text.lower() in ("auto", "local"):
        return None
    scheme, sep, rest = text.partition("://")
    if not sep:
        scheme, rest = "", text
    if scheme not in DEFAULT_PORTS:
        raise ConfigError(f"--address {address}: expected host:port or ray://host:port")
    rest = rest.split("/", 1)[0]
    if rest.startswith("["):
        host, _, tail = rest[1:].partition("]")
        port_text = tail[1:] if tail.startswith(":") else ""
    else:
        host, _, port_text = rest.rpartition(":") if ":" in rest else (rest, "", "")
    if not host or (port_text and not port_text.isdigit()) or (port_text and not 0 < int(port_text) < 65536):
        raise ConfigError(f"--address {address}: expected host:port or ray://host:port")
    return host, int(port_text) if port_text else DEFAULT_PORTS[scheme]


def check_address(address: str, timeout_s: float = CONNECT_TIMEOUT_S) -> None:
    """A TCP connection to the cluster's address within ``timeout_s``, or one ConfigError line (exit 2)."""
    target = address_host_port(address)
    if target is None:
        return
    host, port = target
    try:
        with socket.create_connection((host, port), timeout=timeout_s):
            pass
    except TimeoutError:
        raise ConfigError(f"--address {address}: no answer from {host}:{port} within {timeout_s:g} s "
                          "(is the Ray cluster running and reachable?)") from None
    except OSError as err:
        raise ConfigError(f"--address {address}: cannot connect to {host}:{port} ({err.strerror or err}; "
                          "is the Ray cluster running and reachable?)") from None


def import_ray():
    try:
        import ray
    except ImportError:
        raise LivemaskError(INSTALL_HINT) from None
    return ray


class BatchActor:
    """Builds the models once in its own process, then processes one file per call."""

    def __init__(self, factory: Callable, threads: int, out_dir: str, options: FileOptions):
        from livemask.batch.worker import limit_threads, worker_id

        limit_threads(threads)
        started = time.monotonic()
        self.models = factory()
        self.models.load_s = round(time.monotonic() - started, 3)
        self.out_dir, self.options = out_dir, options
        self.done = 0
        self.id = worker_id()

    def info(self) -> tuple[str, float]:
        return self.id, self.models.load_s

    def process(self, item: BatchInput, attempts: int) -> FileResult:
        from livemask.batch.worker import process_input

        self.done += 1
        return process_input(item, self.out_dir, self.models, self.options, worker_file=self.done, attempts=attempts)


class RayExecutor(Executor):
    name = "ray"

    def __init__(self, factory: Callable, out_dir: Path, options: FileOptions, workers: int = 1, threads: int = 1,
                 address: str | None = None, poll_s: float = 0.2):
        self.ray = import_ray()
        self.factory = factory
        self.out_dir = Path(out_dir).resolve()
        self.options = options
        self.workers = max(int(workers), 1)
        self.threads = threads
        self.address = address
        self.poll_s = poll_s
        self.load_times: list[float] = []

    def _init(self) -> None:
        ray = self.ray
        self._owned = False
        if ray.is_initialized():
            return
        kwargs = dict(include_dashboard=False, log_to_driver=False, configure_logging=False)
        try:
            if self.address:
                ray.init(address=self.address, **kwargs)
            else:
                ray.init(num_cpus=self.workers, **kwargs)
            self._owned = True
        except Exception as err:  # a wrong address, a cluster that refuses us
            raise LivemaskError(f"cannot start or join Ray ({self.address or 'local'}): {err}") from None

    def run(self, items: list[BatchInput], on_result: Callable[[FileResult], None], control: Control) -> None:
        ray = self.ray
        from ray.exceptions import GetTimeoutError, RayActorError, RayTaskError

        self._init()
        remote = ray.remote(num_cpus=1, max_restarts=0, max_task_retries=0)(BatchActor)
        pending = deque((item, 1) for item in items)
        idle: deque = deque()
        inflight: dict = {}  # object ref -> (actor, item, attempts)
        started: list = []

        def new_actor():
            actor = remote.remote(self.factory, self.threads, str(self.out_dir), self.options)
            started.append(actor)
            idle.append(actor)

        for _ in range(min(self.workers, len(items))):
            new_actor()
        try:
            while True:
                if control.stop.is_set():
                    pending.clear()
                if control.abandon.is_set():
                    for actor, item, attempts in inflight.values():
                        ray.kill(actor, no_restart=True)
                        on_result(FileResult(item.path, item.name, "skipped", error="abandoned", attempts=attempts))
                    inflight.clear()
                while pending and idle:
                    actor = idle.popleft()
                    item, attempts = pending.popleft()
                    inflight[actor.process.remote(item, attempts)] = (actor, item, attempts)
                if not inflight:
                    return
                ready, _ = ray.wait(list(inflight), num_returns=1, timeout=self.poll_s)
                for ref in ready:
                    actor, item, attempts = inflight.pop(ref)
                    try:
                        result = ray.get(ref, timeout=60)
                    except RayActorError as err:
                        if "creation task" in str(err):  # the constructor (model loading) failed
                            raise LivemaskError("a batch worker could not start: "
                                                f"{exception_line(err, last=True, with_type=False)}") from None
                        why = f"Ray actor died ({type(err).__name__})"
                        log.warning("%s: %s", item.path, why)
                        ray.kill(actor, no_restart=True)
                        if attempts < MAX_ATTEMPTS and not control.stop.is_set():
                            pending.appendleft((item, attempts + 1))
                        else:
                            on_result(crashed(item, attempts, why, None))
                        if pending:
                            new_actor()
                        continue
                    except (RayTaskError, GetTimeoutError) as err:  # process_input itself never raises
                        on_result(FileResult(item.path, item.name, "failed", attempts=attempts,
                                             error=exception_line(err, last=True)))
                        idle.append(actor)
                        continue
                    if result.worker_file == 1:
                        self.load_times.append(result.model_load_s or 0.0)
                    on_result(result)
                    idle.append(actor)
        finally:
            for actor in started:
                try:
                    ray.kill(actor, no_restart=True)
                except Exception:
                    pass
            if self._owned:  # a local cluster we started: stop it (the CLI leaves with os._exit, no atexit)
                ray.shutdown()
