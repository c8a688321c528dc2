"""Which start of each camera this is, for its track id range: a small actor on the cluster's head node that
counts the starts of every camera's worker (0 for the first, k after k restarts). It reserves no CPU and
lives on the head (Ray's `node:__internal_head__` resource), whose loss ends the cluster anyway; it ends with
the run."""

from __future__ import annotations

HEAD = "node:__internal_head__"     # a resource only the head node has


class TrackIdRanges:
    """`start(camera) -> k`: the camera's k-th start (0 first)."""

    def __init__(self) -> None:
        self.starts: dict[str, int] = {}

    def start(self, camera: str) -> int:
        k = self.starts.get(camera, -1) + 1
        self.starts[camera] = k
        return k


def start_ranges():
    """(the actor, its name). Workers find it by name (an actor handle among a restartable actor's arguments
    would pin them in the object store)."""
    import uuid

    import ray  # deferred: Ray is an optional extra

    name = f"transpose-live-track-ids-{uuid.uuid4().hex[:8]}"
    actor = ray.remote(TrackIdRanges).options(num_cpus=0, max_restarts=0, name=name, resources={HEAD: 0.001})
    return actor.remote(), name


__all__ = ["TrackIdRanges", "start_ranges"]
