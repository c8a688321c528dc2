"""Which start of each camera this is, for its track id range: a small actor beside the driver that counts
the starts of every camera's worker (0 for the first, k after k restarts). It runs on the driver's node with
no CPU reserved; it lives as long as the driver (a lost driver node ends the run anyway)."""

from __future__ import annotations


class TrackIdRanges:
    """`start(camera) -> k`: the camera's k-th start (0 first)."""

    def __init__(self) -> None:
        self.starts: dict[str, int] = {}

    def start(self, camera: str) -> int:
        k = self.starts.get(camera, -1) + 1
        self.starts[camera] = k
        return k


def start_ranges():
    """(the actor, its name), pinned to this (the driver's) node when Ray can say which node that is.
    Workers find it by name (an actor handle among a restartable actor's arguments would pin them)."""
    import uuid

    import ray  # deferred: Ray is an optional extra
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    name = f"transpose-live-track-ids-{uuid.uuid4().hex[:8]}"
    options: dict = {"num_cpus": 0, "max_restarts": 0, "name": name}
    try:
        options["scheduling_strategy"] = NodeAffinitySchedulingStrategy(ray.get_runtime_context().get_node_id(),
                                                                        soft=True)
    except Exception:          # Ray Client: the driver is not a node of the cluster
        pass
    return ray.remote(TrackIdRanges).options(**options).remote(), name


__all__ = ["TrackIdRanges", "start_ranges"]
