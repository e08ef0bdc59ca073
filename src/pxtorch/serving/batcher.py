"""Dynamic batching: images of concurrent requests share one pipeline call.

A worker thread (PaddleX's serving has one, running one request at a time) takes the oldest waiting
job, then keeps collecting jobs with the same parameters for up to ``window_s`` or until
``max_batch_size`` images are gathered, runs them as one ``run(images, params)`` call and hands each
job its slice of the results. With ``workers > 1`` several such threads share the queue (PyTorch and
onnxruntime release the GIL, so on a multi-core CPU one batch's pre/post-processing overlaps another's
model calls). Jobs with other
parameters wait for the next round, in arrival order. If a batch fails, its jobs are re-run one by one
so that one bad request cannot fail the others.
"""

from __future__ import annotations

import collections
import logging
import threading
import time
from collections.abc import Callable, Hashable
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any

import numpy as np

__all__ = ["BatcherStats", "DynamicBatcher", "QueueFullError"]

logger = logging.getLogger(__name__)

RunFn = Callable[[list[np.ndarray], dict[str, Any]], list[Any]]


class QueueFullError(RuntimeError):
    """Too many requests are waiting for the model."""


@dataclass
class _Job:
    images: list[np.ndarray]
    params: dict[str, Any]
    key: Hashable
    future: Future = field(default_factory=Future)


@dataclass
class BatcherStats:
    """Counters since start: requests, images and model calls (``images / batches`` = mean batch size)."""

    requests: int = 0
    images: int = 0
    batches: int = 0
    max_batch: int = 0
    failed_batches: int = 0
    busy_s: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        mean = self.images / self.batches if self.batches else 0.0
        return {**vars(self), "mean_batch_images": round(mean, 3)}


def _freeze(value: Any) -> Hashable:
    if isinstance(value, dict):
        return tuple(sorted((k, _freeze(v)) for k, v in value.items()))
    if isinstance(value, (list, tuple)):
        return tuple(_freeze(v) for v in value)
    return value


class DynamicBatcher:
    """Runs ``run(images, params) -> results`` (one result per image) on a worker thread, batching jobs.

    Args:
        run: the pipeline call, e.g. ``lambda imgs, p: list(pipe.predict(imgs, batch_size=len(imgs), **p))``.
        max_batch_size: images per call (a job larger than this runs alone, whole).
        window_s: how long to wait for more jobs after the first one of a batch.
        max_queue: waiting jobs allowed before :meth:`submit` raises :class:`QueueFullError`.
        workers: threads calling ``run`` (``run`` must then be thread-safe).
    """

    def __init__(
        self, run: RunFn, max_batch_size: int = 8, window_s: float = 0.01, max_queue: int = 256, workers: int = 1
    ) -> None:
        self._run = run
        self.max_batch_size = max_batch_size
        self.window_s = window_s
        self.max_queue = max_queue
        self.stats = BatcherStats()
        self._pending: collections.deque[_Job] = collections.deque()
        self._cond = threading.Condition()
        self._stopped = False
        self._threads = [
            threading.Thread(target=self._loop, name=f"pxtorch-batcher-{i}", daemon=True) for i in range(workers)
        ]
        for thread in self._threads:
            thread.start()

    def submit(self, images: list[np.ndarray], params: dict[str, Any]) -> Future:
        """Queue one request's images; the future gets ``run``'s results for them, in order."""
        job = _Job(list(images), dict(params), _freeze(params))
        with self._cond:
            if self._stopped:
                raise RuntimeError("the batcher is stopped")
            if len(self._pending) >= self.max_queue:
                raise QueueFullError(f"{len(self._pending)} requests are waiting; try again later")
            self._pending.append(job)
            self.stats.requests += 1
            self._cond.notify()
        return job.future

    def close(self, timeout: float | None = 10.0) -> None:
        """Stop the worker after the running batch; waiting jobs are cancelled."""
        with self._cond:
            self._stopped = True
            for job in self._pending:
                job.future.cancel()
            self._pending.clear()
            self._cond.notify_all()
        for thread in self._threads:
            thread.join(timeout)

    @property
    def queued(self) -> int:
        """Jobs waiting for the model."""
        with self._cond:
            return len(self._pending)

    # -- worker ---------------------------------------------------------------------------------
    def _take_batch(self) -> list[_Job]:
        with self._cond:
            while not self._pending and not self._stopped:
                self._cond.wait()
            if self._stopped:
                return []
            first = self._pending.popleft()
            batch, count = [first], len(first.images)
            deadline = time.monotonic() + self.window_s
            while count < self.max_batch_size:
                pick = next(
                    (j for j in self._pending if j.key == first.key and count + len(j.images) <= self.max_batch_size),
                    None,
                )
                if pick is not None:
                    self._pending.remove(pick)
                    batch.append(pick)
                    count += len(pick.images)
                    continue
                left = deadline - time.monotonic()
                if left <= 0 or self._stopped:
                    break
                self._cond.wait(left)
        # requests that timed out while waiting were cancelled by their handler: skip their work
        return [j for j in batch if j.future.set_running_or_notify_cancel()]

    def _loop(self) -> None:
        while True:
            batch = self._take_batch()
            if not batch:
                if self._stopped:
                    return
                continue
            self._execute(batch)

    def _execute(self, batch: list[_Job]) -> None:
        images = [img for job in batch for img in job.images]
        start = time.perf_counter()
        try:
            results = self._run(images, batch[0].params)
            if len(results) != len(images):
                raise RuntimeError(f"pipeline returned {len(results)} results for {len(images)} images")
        except Exception as exc:
            with self._cond:
                self.stats.failed_batches += 1
            if len(batch) == 1:
                batch[0].future.set_exception(exc)
            else:
                logger.warning("batch of %d requests failed (%s); running them one by one", len(batch), exc)
                for job in batch:
                    self._run_alone(job)
            return
        finally:
            self._account(len(images), time.perf_counter() - start)
        offset = 0
        for job in batch:
            n = len(job.images)
            job.future.set_result(results[offset : offset + n])
            offset += n

    def _run_alone(self, job: _Job) -> None:
        try:
            job.future.set_result(self._run(job.images, job.params))
        except Exception as exc:
            job.future.set_exception(exc)

    def _account(self, n_images: int, seconds: float) -> None:
        with self._cond:
            s = self.stats
            s.batches += 1
            s.images += n_images
            s.max_batch = max(s.max_batch, n_images)
            s.busy_s += seconds
