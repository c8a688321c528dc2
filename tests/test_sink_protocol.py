"""The output contract: every output subclasses the Sink protocols, one dispatcher routes frames and events, one
open_outputs opens a run's outputs all or nothing, and the pipeline meets sources and sinks only through their
declared protocols (a stream's own events, its reconnect count, whether anyone wants the rendered frame)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from transpose_live.errors import TransposeLiveError
from transpose_live.live.pipeline import Pipeline
from transpose_live.live.spec import RunSpec
from transpose_live.media.sinks import (
    Abortable,
    CocoResultsWriter,
    EventSink,
    FirstFrameVideoWriter,
    JsonlWriter,
    OutputDispatcher,
    SegmentedVideoWriter,
    Sink,
    VideoWriter,
    open_outputs,
)
from transpose_live.monitor.homeassistant import HomeAssistantCamera
from transpose_live.monitor.mqtt import MqttPublisher
from transpose_live.types import FrameResult

from helpers import CountingDetector, FakeEstimator, ListSource


class Recorder:
    """A caller's own output: the protocol's methods, no base class."""

    def __init__(self, name: str, log: list, needs_image: bool = False, events: bool = True):
        self.name, self.log, self.needs_image = name, log, needs_image
        if events:
            self.write_event = lambda record: log.append((name, "event", record["event"]))

    def write_frame(self, image, result):
        self.log.append((self.name, "frame", result.index, None if image is None else image.shape))

    def close(self):
        self.log.append((self.name, "close"))


class Droppable(Recorder):
    def abort(self):
        self.log.append((self.name, "abort"))


def result(i: int) -> FrameResult:
    return FrameResult(index=i, timestamp=i / 10, poses=[], size=(64, 48))


# ------------------------------------------------------------------------------------------- the protocols


@pytest.mark.parametrize("output, takes_events", [
    (VideoWriter, False), (FirstFrameVideoWriter, False), (CocoResultsWriter, False), (SegmentedVideoWriter, False),
    (JsonlWriter, True), (MqttPublisher, True), (HomeAssistantCamera, True)])
def test_every_output_subclasses_the_contract_explicitly(output, takes_events):
    mro = output.__mro__
    assert Sink in mro and Abortable in mro
    assert (EventSink in mro) == takes_events
    assert isinstance(output.needs_image, bool)


# ------------------------------------------------------------------------------------------- the dispatcher


def test_the_dispatcher_sends_frames_to_every_sink_and_events_to_those_that_take_them_then_the_listeners():
    log: list = []
    frames_only = Recorder("video", log, needs_image=True, events=False)
    both = Recorder("jsonl", log)
    outputs = OutputDispatcher([frames_only, both], listeners=[lambda r: log.append(("listener", r["event"]))])
    assert outputs.sinks == [frames_only, both] and outputs.event_sinks == [both] and outputs.needs_image
    outputs.write_frame(np.zeros((48, 64, 3), np.uint8), result(0))
    outputs.publish({"event": "person_appeared"})
    assert log == [("video", "frame", 0, (48, 64, 3)), ("jsonl", "frame", 0, (48, 64, 3)),
                   ("jsonl", "event", "person_appeared"), ("listener", "person_appeared")]
    assert not OutputDispatcher([both]).needs_image


def test_the_dispatcher_refuses_what_is_not_a_sink():
    class NoImageFlag:
        def write_frame(self, image, result): ...

        def close(self): ...

    for thing in (object(), NoImageFlag()):
        with pytest.raises(TransposeLiveError, match=r"not a sink: \w+ \(needs write_frame, close and needs_image"):
            OutputDispatcher([thing])


def test_finishing_closes_or_drops_every_sink_even_when_one_fails():
    log: list = []

    class Failing(Recorder):
        def close(self):
            raise OSError("disk full")

    sinks = [Droppable("a", log), Failing("b", log), Recorder("c", log)]
    with pytest.raises(TransposeLiveError, match="closing the outputs failed: disk full"):
        OutputDispatcher(sinks).finish(keep=True)
    assert log == [("a", "close"), ("c", "close")]                    # c closed although b failed
    log.clear()
    OutputDispatcher(sinks).finish(keep=False)
    assert log == [("a", "abort"), ("c", "close")]                    # no abort(): closed; b's error not raised


# ------------------------------------------------------------------------------------------- one builder


def test_open_outputs_opens_the_openers_after_the_files_and_drops_everything_when_one_fails(tmp_path):
    source = ListSource(1)
    seen, log = [], []

    def opener(src):
        seen.append(src)
        return Droppable("mqtt", log)

    sinks = open_outputs(source, json_out=tmp_path / "a.jsonl", coco_json=tmp_path / "a.json", more=[opener])
    assert [type(s).__name__ for s in sinks] == ["JsonlWriter", "CocoResultsWriter", "Droppable"]
    assert seen == [source]
    for sink in sinks:
        sink.close()
    assert (tmp_path / "a.jsonl").exists() and json.loads((tmp_path / "a.json").read_text()) == []

    def broken(src):
        raise TransposeLiveError("invalid MQTT broker")

    with pytest.raises(TransposeLiveError, match="invalid MQTT broker"):
        open_outputs(source, json_out=tmp_path / "b.jsonl", more=[opener, broken])
    assert log[-1] == ("mqtt", "abort")                                 # the opener's output was dropped
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.json", "a.jsonl"]   # no b.jsonl, no temporary file


# ------------------------------------------------------------------------------------------- the pipeline


class ReconnectingSource(ListSource):
    """A stream with a connection of its own: it reports its outage through `on_event`, as RtspSource does."""

    def __init__(self, n: int):
        super().__init__(n)
        self.on_event = None
        self.reconnects = 0

    def __next__(self):
        frame = super().__next__()
        if frame.index == 5:
            self.on_event({"event": "stream_lost", "reason": "test"})
            self.reconnects += 1
            self.on_event({"event": "stream_back", "reconnects": self.reconnects})
        return frame

    def close(self):
        pass


def test_a_streams_own_events_reach_the_event_sinks_and_its_reconnects_the_stats():
    log: list = []
    heard: list = []
    source = ReconnectingSource(30)
    pipeline = Pipeline(source, RunSpec(), [Recorder("jsonl", log)], estimator=FakeEstimator(),
                        detector=CountingDetector(), on_event=heard.append, stats_every=1e-6)
    assert source.on_event == pipeline.emit                             # handed once, at construction
    pipeline.run()
    events = [entry[2] for entry in log if entry[1] == "event"]
    assert events.index("stream_lost") < events.index("stream_back")
    assert [r["event"] for r in heard] == events                        # the listener hears what the sinks got
    stats = [r for r in heard if r["event"] == "stats"]
    assert stats and stats[-1]["reconnects"] == 1


def test_the_rendered_frame_is_made_only_when_a_sink_wants_it():
    log: list = []
    Pipeline(ListSource(3), RunSpec(), [Recorder("jsonl", log)], estimator=FakeEstimator(),
             detector=CountingDetector()).run()
    assert [entry[3] for entry in log if entry[1] == "frame"] == [None, None, None]
    log.clear()
    Pipeline(ListSource(3), RunSpec(), [Recorder("jsonl", log), Recorder("video", log, needs_image=True)],
             estimator=FakeEstimator(), detector=CountingDetector()).run()
    shapes = {entry[3] for entry in log if entry[1] == "frame"}
    assert len(shapes) == 1 and None not in shapes
