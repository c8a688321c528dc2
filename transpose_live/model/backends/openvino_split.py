"""The pose graph cut in three for OpenVINO's "mixed" precision: the CNN stem (+ the 1x1 reduce) at f32, the
attention encoder at bf16, the heatmap head at f32.

Why the cut sits there (the shipped model, coco_mini's 86 persons, keypoints against the fp32 model): bf16
over the whole model moves 28-39 % of the keypoints by more than 0.5 px, and nearly all of that comes from
the stem (torch autocast on the stem alone: 28 %; on everything after it: 0.8 %, torch fp16 over the whole
model: 0.7 %). The encoder and head are where bf16 pays (about 60 % of the fp32 time), so the stem keeps
f32 and the rest runs on the CPU's bf16 units. OpenVINO has one precision per compiled model (per-node
rt_info hints were tried and are ignored by its CPU plugin), hence models cut out of the one ONNX export.
Measured on the sample's four walkers (max heatmap change against fp32; torch fp16: 0.0027): encoder + head
at bf16 0.0064 at 1.58x fp32's speed (batch 4), the encoder alone 0.0040 at 1.41x, the head alone 0.0036
at 1.09x. The encoder alone ships (keypoints moved > 0.5 px on coco_mini: 0.68 %, as torch fp16's).
"""

from __future__ import annotations

import numpy as np

from transpose_live.errors import TransposeLiveError

# node names of the export: export._Graph holds the TransPose as `.model`, whose 1x1 conv is `.reduce`; the
# head is `.deconv_layers` + `.final_layer` (or `.final_layer` alone after a bilinear upsampling)
STEM_END = "/model/reduce"
HEAD_STARTS = ("/model/deconv_layers", "/model/final_layer")
PRECISIONS = ("f32", "bf16", "f32")     # stem | encoder | head


def _leaving(model, prefix: str):
    """The one tensor leaving the ops named `prefix...` for the rest of the graph."""
    found = []
    for op in model.get_ordered_ops():
        if not op.get_friendly_name().startswith(prefix):
            continue
        for out in op.outputs():
            if any(not t.get_node().get_friendly_name().startswith(prefix) for t in out.get_target_inputs()):
                found.append(out)
    return _one(found, f"after {prefix}")


def _entering(model, prefix: str):
    """The one computed (not constant) tensor that the ops named `prefix...` read from outside them."""
    found = {}
    for op in model.get_ordered_ops():
        if not op.get_friendly_name().startswith(prefix):
            continue
        for inp in op.inputs():
            src = inp.get_source_output()
            node = src.get_node()
            if not node.get_friendly_name().startswith(prefix) and node.get_type_name() != "Constant":
                found[(node.get_friendly_name(), src.get_index())] = src
    return _one(list(found.values()), f"before {prefix}")


def _one(found: list, where: str):
    if len(found) != 1:
        raise TransposeLiveError(f"cannot cut the pose graph {where} ({len(found)} candidate tensors)")
    return found[0]


def _from(model, tensor, name: str):
    """The part of `model` downstream of `tensor`, which becomes its input (rewires `model`)."""
    import openvino as ov  # deferred, here and in split_graph: the optional package loads only when used

    param = ov.opset13.parameter(tensor.get_partial_shape(), tensor.get_element_type(), name=name)
    for target in list(tensor.get_target_inputs()):
        target.replace_source_output(param.output(0))
    return param


def split_graph(core, path) -> list:
    """[stem: input -> features, middle: features -> head input, head: -> the graph's outputs], ov.Models read
    from the ONNX file at `path` (read once per part: cutting rewires the graph it works on). The head stays
    f32: at bf16 it rounds the heatmaps themselves (steps of ~0.004 near a peak), which DARK's sub-pixel
    refinement reads."""
    import openvino as ov  # deferred: OpenVINO

    whole = core.read_model(str(path))
    names = {op.get_friendly_name() for op in whole.get_ops()}
    head_start = next((p for p in HEAD_STARTS if any(n.startswith(p) for n in names)), HEAD_STARTS[-1])
    stem = ov.Model([_leaving(whole, STEM_END)], [whole.get_parameters()[0]], "transpose_stem")
    second = core.read_model(str(path))
    features = _from(second, _leaving(second, STEM_END), "features")
    middle = ov.Model([_entering(second, head_start)], [features], "transpose_middle")
    third = core.read_model(str(path))
    head_in = _from(third, _entering(third, head_start), "head_input")
    head = ov.Model(third.get_results(), [head_in], "transpose_head")
    for part in (middle, head):
        if len(part.get_parameters()) != 1:
            raise TransposeLiveError("a part of the cut pose graph still reads the input")
    return [stem, middle, head]


class ChainedRequest:
    """Infer requests run one after the other, each fed the previous one's first output; `run(x)` -> the
    last one's outputs (copies). One request is the plain case."""

    def __init__(self, requests: list):
        self.requests = requests

    def run(self, data: np.ndarray) -> list[np.ndarray]:
        for request in self.requests:
            request.infer({0: data})
            data = request.get_output_tensor(0).data
        last = self.requests[-1]
        # copies: the request's output buffers are reused by its next call
        return [np.array(last.get_output_tensor(i).data) for i in range(len(last.model_outputs))]


__all__ = ["split_graph", "ChainedRequest", "PRECISIONS"]
