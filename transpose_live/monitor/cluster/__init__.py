"""`monitor --cluster`: the cameras of `transpose-live monitor` spread over a Ray cluster, one pose model for all.

    address.py   --cluster local | auto | ray://HOST:PORT and --replicas, checked (no Ray imported)
    connect.py   joining or starting Ray; a local Ray kept on 127.0.0.1
    crops.py     a frame's person crops as the model service takes them (CropBatch)
    services.py  the Ray Serve deployments: PoseModel (crops of all cameras batched) and PersonDetector
    gather.py    CropGatherer: the replica's batching (calls that come during a forward pass share the next)
    remote.py    RemoteEstimator / RemoteDetector: what a camera's pipeline calls, retried over replica loss
    relay.py     inside a camera worker: its outbox to the driver, track ids shifted into the run's range
    worker.py    CameraWorker: one camera's capture, following, tracking, events, recording (a Ray actor)
    startup.py   a worker's start-up: the timeline of its steps, its import thread's lower priority
    ids.py       TrackIdRanges: which start of a camera this is (a small actor on the head node)
    driver.py    ClusterMonitor: starts it all, gathers events, summaries and status; Monitor's face
    measure.py   in-process against cluster on the same cameras; recovery times and a restart's phases

Ray is imported inside functions only (`pip install 'transpose-live[cluster]'`), so that nothing else pays
for it. May use: monitor, live and everything below it."""
