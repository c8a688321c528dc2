"""Recording in segments moved to `transpose_live.media.sinks.segments` (an output like the others); this name
stays for code written against it."""

from transpose_live.media.sinks.segments import SegmentedVideoWriter, cleanup_partial, safe_camera_name

__all__ = ["SegmentedVideoWriter", "cleanup_partial", "safe_camera_name"]
