"""The pose graph cut in two for OpenVINO's "mixed" precision: the CNN stem (+ the 1x1 reduce) at f32, the
attention encoder and the heatmap head at bf16.

Why the cut sits there (the shipped model, coco_mini's 86 persons, keypoints against the fp32 model): bf16
over the whole model moves 28-39 % of the keypoints by more than 0.5 px, and nearly all of that comes from
the stem (torch autocast on the stem alone: 28 %; on everything after it: 0.8 %, torch fp16 over the whole
model: 0.7 %). The encoder and head are where bf16 pays (about 60 % of the fp32 time), so the stem keeps
f32 and the rest runs on the CPU's bf16 units. OpenVINO has one precision per compiled model (per-node
rt_info hints were tried and are ignored by its CPU plugin), hence two models cut out of the one ONNX export.
Measured on the sample's four walkers (max heatmap change against fp32; torch fp16: 0.0027): encoder + head
at bf16 0.0064 at 1.58x fp32's speed (batch 4), the encoder alone 0.0040 at 1.41x, the head alone 0.0036
at 1.09x. The first is what ships; its keypoints stay within 0.5 px there.
"""

from __future__ import annotations

import numpy as np

from ..errors import TransposeLiveError

# node names of the export: export._Graph holds the TransPose as `.model`, whose 1x1 conv is `.reduce`
CUT_PREFIX = "/model/reduce"


def _cut_output(model):
    """The one tensor leaving the reduce conv for the rest of the graph."""
    found = []
    for op in model.get_ordered_ops():
        if not op.get_friendly_name().startswith(CUT_PREFIX):
            continue
        for out in op.outputs():
            if any(not t.get_node().get_friendly_name().startswith(CUT_PREFIX) for t in out.get_target_inputs()):
                found.append(out)
    if len(found) != 1:
        raise TransposeLiveError(f"cannot cut the pose graph after its reduce layer ({len(found)} candidate tensors)")
    return found[0]


def split_graph(core, path):
    """(stem model: input -> features, rest model: features -> the graph's outputs), both ov.Model, read from
    the ONNX file at `path` (read twice: cutting rewires the graph it works on)."""
    import openvino as ov

    full = core.read_model(str(path))
    stem = ov.Model([_cut_output(full)], [full.get_parameters()[0]], "transpose_stem")
    other = core.read_model(str(path))
    cut = _cut_output(other)
    features = ov.opset13.parameter(cut.get_partial_shape(), cut.get_element_type(), name="features")
    for target in list(cut.get_target_inputs()):
        target.replace_source_output(features.output(0))
    rest = ov.Model(other.get_results(), [features], "transpose_rest")
    if len(rest.get_parameters()) != 1:
        raise TransposeLiveError("the pose graph's rest still reads the input after the cut")
    return stem, rest


class TwoStageRequest:
    """Two infer requests run one after the other; `run(x)` -> the rest's outputs (copies), like one request."""

    def __init__(self, stem_request, rest_request):
        self.stem, self.rest = stem_request, rest_request

    def run(self, data: np.ndarray) -> list[np.ndarray]:
        self.stem.infer({0: data})
        self.rest.infer({0: self.stem.get_output_tensor(0).data})
        # copies: the request's output buffers are reused by its next call
        return [np.array(self.rest.get_output_tensor(i).data) for i in range(len(self.rest.model_outputs))]


__all__ = ["split_graph", "TwoStageRequest", "CUT_PREFIX"]
