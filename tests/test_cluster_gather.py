"""CropGatherer, the pose replica's batching (no Ray needed): the calls that arrive while a forward pass runs
go into the next one together, up to max_crops crops; an error reaches every caller of its batch; a caller
that gave up is left out. Forward passes are held on events, so nothing here depends on timing."""

from __future__ import annotations

import asyncio
import threading

import pytest

from transpose_live.monitor.cluster.gather import CropGatherer


class HeldForward:
    """A forward pass that records its batches and holds the first one until released."""

    def __init__(self, fail_on: str | None = None):
        self.batches: list[list[str]] = []
        self.started = threading.Event()
        self.release = threading.Event()
        self.fail_on = fail_on

    def __call__(self, items: list[list[str]]) -> list[str]:
        self.batches.append([x for item in items for x in item])
        self.started.set()
        self.release.wait(30)
        if self.fail_on is not None and any(self.fail_on in item for item in items):
            raise RuntimeError("model broke")
        return ["+".join(item) for item in items]


async def until(predicate, steps: int = 2000) -> None:
    for _ in range(steps):
        if predicate():
            return
        await asyncio.sleep(0.005)
    raise AssertionError("never happened")


def test_calls_arriving_during_a_forward_pass_share_the_next_one():
    forward = HeldForward()

    async def main():
        gather = CropGatherer(forward, max_crops=32, wait_s=0.0)
        first = asyncio.create_task(gather.submit(["a"]))
        await asyncio.to_thread(forward.started.wait, 30)
        later = [asyncio.create_task(gather.submit([f"c{i}"])) for i in range(7)]
        await until(lambda: gather.waiting == 7)
        forward.release.set()
        return await first, await asyncio.gather(*later)

    first, later = asyncio.run(main())
    assert forward.batches == [["a"], [f"c{i}" for i in range(7)]]     # 1 crop, then all 7 in one pass
    assert first == "a" and later == [f"c{i}" for i in range(7)]        # each caller gets its own answer


def test_a_batch_holds_at_most_max_crops_oldest_first():
    forward = HeldForward()

    async def main():
        gather = CropGatherer(forward, max_crops=5, wait_s=0.0)
        first = asyncio.create_task(gather.submit(["a"]))
        await asyncio.to_thread(forward.started.wait, 30)
        later = [asyncio.create_task(gather.submit([f"p{i}", f"q{i}"])) for i in range(3)]
        await until(lambda: gather.waiting == 3)
        forward.release.set()
        await asyncio.gather(first, *later)
        with pytest.raises(ValueError, match="6 crops"):
            await gather.submit(list("abcdef"))

    asyncio.run(main())
    assert forward.batches == [["a"], ["p0", "q0", "p1", "q1"], ["p2", "q2"]]


def test_a_batch_waits_for_more_calls_until_max_crops():
    forward = HeldForward()
    forward.release.set()

    async def main():
        gather = CropGatherer(forward, max_crops=3, wait_s=60.0)     # only a full batch ends the wait early
        calls = [asyncio.create_task(gather.submit([x])) for x in "xyz"]
        return await asyncio.wait_for(asyncio.gather(*calls), 30)

    assert asyncio.run(main()) == ["x", "y", "z"]
    assert forward.batches == [["x", "y", "z"]]


def test_an_error_reaches_every_caller_of_its_batch_and_the_next_batch_runs():
    forward = HeldForward(fail_on="bad")

    async def main():
        gather = CropGatherer(forward, max_crops=32, wait_s=0.0)
        first = asyncio.create_task(gather.submit(["a"]))
        await asyncio.to_thread(forward.started.wait, 30)
        failing = [asyncio.create_task(gather.submit([x])) for x in ("bad", "b")]
        await until(lambda: gather.waiting == 2)
        forward.release.set()
        results = await asyncio.gather(first, *failing, return_exceptions=True)
        return results, await gather.submit(["after"])

    (first, bad, b), after = asyncio.run(main())
    assert first == "a" and after == "after"
    assert isinstance(bad, RuntimeError) and isinstance(b, RuntimeError)


def test_a_caller_that_gave_up_is_left_out():
    forward = HeldForward()

    async def main():
        gather = CropGatherer(forward, max_crops=32, wait_s=0.0)
        first = asyncio.create_task(gather.submit(["a"]))
        await asyncio.to_thread(forward.started.wait, 30)
        gone = asyncio.create_task(gather.submit(["gone"]))
        kept = asyncio.create_task(gather.submit(["kept"]))
        await until(lambda: gather.waiting == 2)
        gone.cancel()
        forward.release.set()
        return await first, await kept

    assert asyncio.run(main()) == ("a", "kept")
    assert forward.batches == [["a"], ["kept"]]
