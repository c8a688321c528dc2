"""CropGatherer: the pose replica's batching, in place of `@serve.batch`.

Why not `@serve.batch`: in Ray 2.60 its loop cuts a batch (the first call plus `batch_wait_timeout_s`) and
only then waits for its turn (`max_concurrent_batches`). While one forward pass runs, that loop keeps cutting
batches of whatever came in the last 5 ms, so 8 cameras with one call each in flight got 1.1 crops per
forward pass while 6.8 calls were waiting in the replica when each pass began (docs/scaling.md).

Here, as in the in-process SharedEstimator, the next batch is cut only when the forward pass before it has
returned: everything that arrived meanwhile goes into it (up to `max_crops` crops, oldest first), and a batch
whose oldest call is new waits up to `wait_s` after it for more. One forward pass at a time per replica.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from typing import Callable, Generic, Sized, TypeVar

T = TypeVar("T", bound=Sized)     # a call's item: its len() is its crops
R = TypeVar("R")


class CropGatherer(Generic[T, R]):
    """`await submit(item)` -> the forward's answer for that item; `forward(items) -> answers` runs in a
    thread, one call at a time, with the items gathered while the previous one ran."""

    def __init__(self, forward: Callable[[list[T]], list[R]], max_crops: int, wait_s: float):
        self.forward = forward
        self.max_crops = int(max_crops)
        self.wait_s = float(wait_s)
        self._pending: deque[tuple[T, float, asyncio.Future]] = deque()
        self._arrived: asyncio.Event | None = None
        self._task: asyncio.Task | None = None

    async def submit(self, item: T) -> R:
        if len(item) > self.max_crops:
            raise ValueError(f"{len(item)} crops in one call; at most {self.max_crops}")
        loop = asyncio.get_running_loop()
        if self._arrived is None:                 # made on the loop that serves the calls
            self._arrived = asyncio.Event()
        if self._task is None or self._task.done():
            self._task = loop.create_task(self._run())
        future: asyncio.Future = loop.create_future()
        self._pending.append((item, time.monotonic(), future))
        self._arrived.set()
        return await future

    async def _run(self) -> None:
        assert self._arrived is not None
        while True:
            while not self._pending:
                self._arrived.clear()
                await self._arrived.wait()
            await self._fill()
            batch = self._take()
            if not batch:
                continue
            items = [item for item, _ in batch]
            try:
                answers = await asyncio.to_thread(self.forward, items)
                if len(answers) != len(items):
                    raise RuntimeError(f"the forward pass answered {len(answers)} of {len(items)} calls")
            except Exception as exc:              # every caller of this batch gets the error
                for _, future in batch:
                    if not future.done():
                        future.set_exception(exc)
                continue
            for (_, future), answer in zip(batch, answers):
                if not future.done():             # (a caller that gave up meanwhile)
                    future.set_result(answer)

    async def _fill(self) -> None:
        """Wait until `wait_s` after the oldest call or until `max_crops` are waiting, whichever is first."""
        assert self._arrived is not None
        while sum(len(item) for item, _, _ in self._pending) < self.max_crops:
            left = self._pending[0][1] + self.wait_s - time.monotonic()
            if left <= 0:
                return
            self._arrived.clear()
            try:
                await asyncio.wait_for(self._arrived.wait(), left)
            except asyncio.TimeoutError:
                return

    def _take(self) -> list[tuple[T, asyncio.Future]]:
        """The oldest waiting calls up to `max_crops` crops (calls whose caller gave up are dropped)."""
        batch: list[tuple[T, asyncio.Future]] = []
        crops = 0
        while self._pending:
            item, _, future = self._pending[0]
            if future.done():
                self._pending.popleft()
                continue
            if batch and crops + len(item) > self.max_crops:
                break
            self._pending.popleft()
            batch.append((item, future))
            crops += len(item)
        return batch

    @property
    def waiting(self) -> int:
        """Calls waiting for a forward pass now."""
        return len(self._pending)


__all__ = ["CropGatherer"]
