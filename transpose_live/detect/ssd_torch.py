"""The default SSD as a PyTorch module, so the detector can run on the GPU beside the pose model.

The same SSD-MobileNet-v2 (COCO) as the other engines: MobileNetV2 (ReLU6, TensorFlow's SAME padding), its
four extra layers (1x1, depthwise 3x3 stride 2, 1x1), and 3x3 box and class heads on six feature maps
(19x19 ... 1x1 at 300x300; 3 anchors on the first, 6 on the others: 1917). Weights are taken from the
frozen graph through OpenVINO's converter (batch norm already folded into each convolution's bias), so
converting needs the `openvino` package once; the result is cached as a torch file
(`<cache dir>/ssd/`) and that file alone runs the detector (a GPU machine without OpenVINO gets it
carried; `tools/device_check.sh prepare` writes an fp16 copy).

Outputs are the network's: decoded boxes (x1, y1, x2, y2 in 0..1) and sigmoid scores of the 1917 anchors,
as `ssd_openvino.OpenVinoSSD` returns them; `ssd_openvino.person_detections` then keeps what OpenCV's
DetectionOutput keeps.
"""

from __future__ import annotations

import logging
import math
import os
import tempfile
import threading
from collections.abc import Iterable
from pathlib import Path
from typing import cast

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from transpose_live.detect.ssd_openvino import KEPT_CLASSES, graph_hash
from transpose_live.errors import TransposeLiveError
from transpose_live.model.cache import cache_dir

log = logging.getLogger(__name__)

NUM_CLASSES = 91
# MobileNetV2's table (expansion t, channels c, repeats n, stride s) after the first conv and block
BLOCKS = ((6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1), (6, 160, 3, 2), (6, 320, 1, 1))
EXTRA_DEPTHS = (512, 256, 256, 128)
ANCHORS_PER_MAP = (3, 6, 6, 6, 6, 6)
BOX_SCALES = (10.0, 10.0, 5.0, 5.0)       # TensorFlow's Faster R-CNN box coder: ty, tx, th, tw


class SameConv(nn.Conv2d):
    """Conv2d with TensorFlow's SAME padding (stride 2 on an even side pads one pixel at the end only)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        k, s = self.kernel_size[0], self.stride[0]
        if k == 1:
            return super().forward(x)
        pads = []
        for size in (x.shape[-1], x.shape[-2]):
            total = max((math.ceil(size / s) - 1) * s + k - size, 0)
            pads += [total // 2, total - total // 2]
        return super().forward(F.pad(x, pads))


def _conv(cin: int, cout: int, k: int = 1, stride: int = 1, groups: int = 1) -> SameConv:
    return SameConv(cin, cout, k, stride, groups=groups, bias=True)


class Block(nn.Module):
    """Inverted residual: 1x1 expand (ReLU6), depthwise 3x3 (ReLU6), 1x1 project (linear)."""

    def __init__(self, cin: int, cout: int, stride: int, expand: int):
        super().__init__()
        hidden = cin * expand
        self.expand = _conv(cin, hidden) if expand != 1 else None
        self.depthwise = _conv(hidden, hidden, 3, stride, groups=hidden)
        self.project = _conv(hidden, cout)
        self.residual = stride == 1 and cin == cout

    def forward(self, x: torch.Tensor, tap: bool = False):
        h = F.relu6(self.expand(x)) if self.expand is not None else x
        expanded = h
        h = self.project(F.relu6(self.depthwise(h)))
        h = x + h if self.residual else h
        return (h, expanded) if tap else h


class SSDMobileNetV2(nn.Module):
    """The network. torch's stubs iterate and index an nn.ModuleList as Module; the casts below say what each holds
    (blocks: Block; extras: three SameConvs each; box and class heads: SameConv)."""

    anchors: torch.Tensor   # a buffer (register_buffer below)

    def __init__(self):
        super().__init__()
        self.stem = _conv(3, 32, 3, 2)
        blocks = [Block(32, 16, 1, 1)]
        cin = 16
        for t, c, n, s in BLOCKS:
            for i in range(n):
                blocks.append(Block(cin, c, s if i == 0 else 1, t))
                cin = c
        self.blocks = nn.ModuleList(blocks)
        self.last = _conv(320, 1280)
        extras, cin = [], 1280
        for depth in EXTRA_DEPTHS:
            extras.append(nn.ModuleList([_conv(cin, depth // 2), _conv(depth // 2, depth // 2, 3, 2, groups=depth // 2),
                                         _conv(depth // 2, depth)]))
            cin = depth
        self.extras = nn.ModuleList(extras)
        channels = (576, 1280) + EXTRA_DEPTHS
        self.box_heads = nn.ModuleList(_conv(c, a * 4, 3) for c, a in zip(channels, ANCHORS_PER_MAP))
        self.class_heads = nn.ModuleList(_conv(c, a * NUM_CLASSES, 3) for c, a in zip(channels, ANCHORS_PER_MAP))
        self.num_classes = NUM_CLASSES
        self.register_buffer("anchors", torch.zeros(1917, 4))   # ymin, xmin, ymax, xmax in 0..1

    def keep_classes(self, classes) -> "SSDMobileNetV2":
        """Score only these classes, in this order (as ssd_openvino.keep_classes does to the OpenVINO graph):
        row a * 91 + c of a class head is class c of anchor a, and the scores are per-class sigmoids, so the
        kept columns are the same numbers. Call it once, after the weights are loaded."""
        if self.num_classes != NUM_CLASSES:
            raise TransposeLiveError("the SSD's class heads are pruned already")
        columns = torch.as_tensor(classes)
        for head, anchors in zip(cast("Iterable[SameConv]", self.class_heads), ANCHORS_PER_MAP):
            rows = (torch.arange(anchors)[:, None] * NUM_CLASSES + columns[None, :]).reshape(-1)
            assert head.bias is not None   # every SameConv here has one (_conv)
            head.weight = nn.Parameter(head.weight.data[rows].clone(), requires_grad=False)
            head.bias = nn.Parameter(head.bias.data[rows].clone(), requires_grad=False)
            head.out_channels = len(rows)
        self.num_classes = len(columns)
        return self

    def conv_layers(self) -> list[SameConv]:
        """The body's convolutions in network order (the order OpenVINO's graph lists them)."""
        out = [self.stem]
        for b in cast("Iterable[Block]", self.blocks):
            out += [m for m in (b.expand, b.depthwise, b.project) if m is not None]
        out.append(self.last)
        for extra in cast("Iterable[Iterable[SameConv]]", self.extras):
            out += list(extra)
        return out

    def feature_maps(self, x: torch.Tensor) -> list[torch.Tensor]:
        x = F.relu6(self.stem(x))
        maps = []
        for i, block in enumerate(self.blocks):
            if i == 13:    # the first 160-channel block: its 576-channel expansion is the 19x19 map
                x, expanded = block(x, tap=True)
                maps.append(expanded)
            else:
                x = block(x)
        x = F.relu6(self.last(x))
        maps.append(x)
        for conv1, dw, conv2 in cast("Iterable[nn.ModuleList]", self.extras):
            x = F.relu6(conv2(F.relu6(dw(F.relu6(conv1(x))))))
            maps.append(x)
        return maps

    def forward(self, rgb: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """rgb (B, 300, 300, 3) uint8 -> boxes (B, 1917, 4) x1, y1, x2, y2 in 0..1, scores (B, 1917, classes):
        91, or the kept ones after keep_classes."""
        x = rgb.permute(0, 3, 1, 2).float() * (2.0 / 255.0) - 1.0     # the graph's own scaling, in fp32
        x = x.to(self.stem.weight.dtype)
        maps = self.feature_maps(x)
        B = x.shape[0]
        enc = torch.cat([h(m).permute(0, 2, 3, 1).reshape(B, -1, 4) for h, m in zip(self.box_heads, maps)], 1)
        logits = torch.cat([h(m).permute(0, 2, 3, 1).reshape(B, -1, self.num_classes)
                            for h, m in zip(self.class_heads, maps)], 1)
        return self.decode(enc.float()), torch.sigmoid(logits.float())

    def decode(self, enc: torch.Tensor) -> torch.Tensor:
        a = self.anchors.float()
        ha, wa = a[:, 2] - a[:, 0], a[:, 3] - a[:, 1]
        yca, xca = a[:, 0] + ha / 2, a[:, 1] + wa / 2
        ty, tx, th, tw = (enc[..., i] / BOX_SCALES[i] for i in range(4))
        h, w = torch.exp(th) * ha, torch.exp(tw) * wa
        yc, xc = ty * ha + yca, tx * wa + xca
        return torch.stack([xc - w / 2, yc - h / 2, xc + w / 2, yc + h / 2], dim=-1)


# ---------------------------------------------------------------- weights from the frozen graph

def _source(op, i: int):
    return op.input(i).get_source_output().get_node()


def _bias_of(conv) -> np.ndarray:
    (add,) = [t.get_node() for t in conv.output(0).get_target_inputs()]
    const = [_source(add, i) for i in range(2) if _source(add, i).get_type_name() == "Constant"]
    if add.get_type_name() != "Add" or len(const) != 1:
        raise TransposeLiveError("unexpected SSD graph: a convolution without its bias")
    return const[0].get_data().reshape(-1)


def _producing_conv(node):
    """The convolution whose (bias-added, ReLU6-clamped) output `node` is."""
    while node.get_type_name() not in ("Convolution", "GroupConvolution"):
        node = _source(node, 0) if _source(node, 0).get_type_name() != "Constant" else _source(node, 1)
    return node


def state_from_graph(graph: Path) -> dict[str, torch.Tensor]:
    """The module's state dict from the frozen TensorFlow graph (OpenVINO reads it; no TensorFlow)."""
    try:
        import openvino as ov  # deferred: needed once, to convert the graph
    except ImportError:
        raise TransposeLiveError("converting the SSD for PyTorch needs the openvino package once "
                                 "(pip install 'transpose-live[openvino]'), or a converted file") from None
    model = ov.convert_model(str(graph), input=[1, 300, 300, 3])
    convs = [op for op in model.get_ordered_ops() if op.get_type_name() in ("Convolution", "GroupConvolution")]

    def is_head(op) -> bool:   # the only full (not depthwise) 3x3 convolutions besides the stem's on the image
        shape = tuple(_source(op, 1).get_output_partial_shape(0).to_shape())
        return op.get_type_name() == "Convolution" and shape[-2:] == (3, 3) and shape[1] != 3

    body = [op for op in convs if not is_head(op)]
    heads = [op for op in convs if is_head(op)]
    net = SSDMobileNetV2()
    layers = net.conv_layers()
    if len(body) != len(layers) or len(heads) != 12:
        raise TransposeLiveError(f"unexpected SSD graph: {len(body)} body and {len(heads)} head convolutions")
    state = {}
    names = {id(m): n for n, m in net.named_modules()}

    def put(module: SameConv, op) -> None:
        weight = _source(op, 1).get_data()
        weight = weight.reshape(module.weight.shape)     # GroupConvolution: (G, 1, 1, 3, 3) -> (G, 1, 3, 3)
        state[names[id(module)] + ".weight"] = torch.from_numpy(np.array(weight, np.float32))
        state[names[id(module)] + ".bias"] = torch.from_numpy(np.array(_bias_of(op), np.float32))

    for module, op in zip(layers, body):
        if tuple(_source(op, 1).get_output_partial_shape(0).to_shape())[-2:] != module.weight.shape[-2:] or \
                math.prod(_source(op, 1).get_output_partial_shape(0).to_shape()) != module.weight.numel():
            raise TransposeLiveError("unexpected SSD graph: a convolution's shape differs from SSD-MobileNet-v2")
        put(module, op)
    # a head's feature map: which body convolution produced the map it reads
    tap_index = {id(layers[i]): k for k, i in enumerate(_map_layer_indices(net))}
    body_of = {op.get_friendly_name(): module for module, op in zip(layers, body)}
    for op in heads:
        producer = _producing_conv(_source(op, 0))
        k = tap_index[id(body_of[producer.get_friendly_name()])]
        is_box = op.get_output_partial_shape(0)[1].get_length() == ANCHORS_PER_MAP[k] * 4
        put(cast(SameConv, (net.box_heads if is_box else net.class_heads)[k]), op)
    anchors = [op for op in model.get_ordered_ops() if op.get_friendly_name() == "Postprocessor/Tile"]
    if len(anchors) != 1:
        raise TransposeLiveError("unexpected SSD graph: no anchors")
    state["anchors"] = torch.from_numpy(np.array(_source(anchors[0], 0).get_data(), np.float32).reshape(1917, 4))
    missing = set(net.state_dict()) - set(state)
    if missing:
        raise TransposeLiveError(f"unexpected SSD graph: no weights for {sorted(missing)[:3]}")
    return state


def _map_layer_indices(net: SSDMobileNetV2) -> list[int]:
    """Indices in conv_layers() of the convolutions whose outputs are the six feature maps."""
    layers = net.conv_layers()
    index = {id(m): i for i, m in enumerate(layers)}
    extras = cast("Iterable[nn.ModuleList]", net.extras)
    return [index[id(cast(Block, net.blocks[13]).expand)], index[id(net.last)]] + [index[id(e[2])] for e in extras]


def cache_path(graph: Path) -> Path:
    return cache_dir() / "ssd" / f"ssd_mobilenet_v2-{graph_hash(graph)[:16]}.pt"


def load_state(graph: Path | None = None, file: str | os.PathLike | None = None) -> dict[str, torch.Tensor]:
    """The state dict from `file` (a converted file), else from the cache, converted there first."""
    if file is not None:
        path = Path(file)
        if not path.is_file():
            raise TransposeLiveError(f"SSD weights file not found: {path}")
    else:
        if graph is None:
            raise TransposeLiveError("the SSD's torch weights need the graph to convert or a converted file")
        path = cache_path(graph)
        if not path.is_file():
            log.info("converting the SSD detector for PyTorch (once; cached in %s)", path.parent)
            state = state_from_graph(graph)
            path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
            os.close(fd)
            try:
                torch.save(state, tmp)
                os.replace(tmp, path)
            finally:
                Path(tmp).unlink(missing_ok=True)
            return state
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise TransposeLiveError(f"cannot read the SSD weights {path}: {type(exc).__name__}: {exc}") from exc


class TorchSSD:
    """`(rgb (300, 300, 3) uint8) -> (boxes (1917, 4), scores (1917, 2))` as numpy, on `device`; fp16 on CUDA
    by default (the scores then differ from fp32 by ~1e-3). The scores' columns are ssd_openvino.KEPT_CLASSES
    (background, person): the other classes' heads are pruned at load, as on OpenVINO."""

    def __init__(self, graph: Path | None, device: str = "cpu", half: bool | None = None,
                 file: str | os.PathLike | None = None):
        self.device = torch.device(device)
        self.half = self.device.type == "cuda" if half is None else bool(half)
        net = SSDMobileNetV2()
        state = {k: v.float() for k, v in load_state(graph, file).items()}
        # a file of tools/export_ssd_torch.py holds the pruned heads already; a converted graph all 91 classes
        pruned = state["class_heads.0.weight"].shape[0] == ANCHORS_PER_MAP[0] * len(KEPT_CLASSES)
        if pruned:
            net.keep_classes(KEPT_CLASSES)
        net.load_state_dict(state, strict=True)
        if not pruned:
            net.keep_classes(KEPT_CLASSES)
        self.net = net.to(self.device).eval()
        if self.half:
            self.net.half()
            self.net.anchors.data = state["anchors"].to(self.device)   # anchors and the decode stay fp32
        self._lock = threading.Lock()

    @torch.inference_mode()
    def __call__(self, rgb: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        with self._lock:
            x = torch.from_numpy(np.ascontiguousarray(rgb[None])).to(self.device, non_blocking=True)
            boxes, scores = self.net(x)
            return boxes[0].float().cpu().numpy(), scores[0].float().cpu().numpy()


__all__ = ["SSDMobileNetV2", "TorchSSD", "state_from_graph", "load_state", "cache_path"]
