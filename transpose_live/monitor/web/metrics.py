"""/metrics in Prometheus' text format (prometheus_client): per camera fps, persons, latency, frames, drops,
reconnects and events by type; the shared model's batches. Read from the live state at each scrape (a
collector of our own on a registry of our own: two views in one process never mix their numbers)."""

from __future__ import annotations

from typing import Iterator

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

from transpose_live.monitor.web.state import WebState

PREFIX = "transpose_live"


class ViewCollector:
    def __init__(self, state: WebState):
        self.state = state

    def collect(self) -> Iterator[Metric]:
        cameras = self.state.cameras()
        rows = [feed.row() for feed in cameras]
        gauges = {
            "fps": ("Frames processed per second (last 2 s)", "fps"),
            "persons": ("Persons in the newest frame", "persons"),
        }
        for name, (doc, key) in gauges.items():
            family = GaugeMetricFamily(f"{PREFIX}_camera_{name}", doc, labels=["camera"])
            for row in rows:
                family.add_metric([row["name"]], float(row[key]))
            yield family
        up = GaugeMetricFamily(f"{PREFIX}_camera_up", "1 while the camera's frames flow (state live)",
                               labels=["camera"])
        latency = GaugeMetricFamily(f"{PREFIX}_camera_latency_seconds", "Capture-to-output latency over the "
                                    "last frames (from the pipeline's stats)", labels=["camera", "quantile"])
        for row in rows:
            up.add_metric([row["name"]], 1.0 if row["state"] == "live" else 0.0)
            for quantile, key in (("0.5", "latency_p50_ms"), ("0.95", "latency_p95_ms")):
                if row[key] is not None:
                    latency.add_metric([row["name"], quantile], row[key] / 1000.0)
        yield up
        yield latency
        counters = {"frames": ("Frames processed", "frames"), "dropped_frames": ("Frames dropped (a live source "
                    "keeps the newest)", "dropped"), "reconnects": ("Times the stream came back", "reconnects")}
        for name, (doc, key) in counters.items():
            counter = CounterMetricFamily(f"{PREFIX}_camera_{name}", doc, labels=["camera"])
            for row in rows:
                counter.add_metric([row["name"]], float(row[key]))
            yield counter
        events = CounterMetricFamily(f"{PREFIX}_events", "Events since the view started", labels=["camera", "type"])
        for row in rows:
            for kind, n in sorted(row["events"].items()):
                events.add_metric([row["name"], kind], float(n))
        yield events
        yield from self._model()

    def _model(self) -> Iterator[Metric]:
        if self.state.model_stats is None:
            return
        stats = self.state.model_stats()
        forwards = getattr(stats, "forwards", None)
        if forwards is None:
            return
        yield CounterMetricFamily(f"{PREFIX}_model_forwards", "Forward passes of the shared model", value=forwards)
        yield CounterMetricFamily(f"{PREFIX}_model_crops", "Person crops through the shared model",
                                  value=getattr(stats, "crops", 0))
        yield GaugeMetricFamily(f"{PREFIX}_model_batch_size", "Mean person crops per forward pass",
                                value=float(getattr(stats, "mean_batch", 0.0)))
        busy = getattr(stats, "busy_s", None)
        if busy is not None:
            yield CounterMetricFamily(f"{PREFIX}_model_forward_seconds", "Time spent in forward passes",
                                      value=float(busy))


def metrics_text(registry: CollectorRegistry) -> bytes:
    return generate_latest(registry)


def make_registry(state: WebState) -> CollectorRegistry:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(ViewCollector(state))
    return registry


__all__ = ["make_registry", "metrics_text", "ViewCollector"]
