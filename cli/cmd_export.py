"""`transpose-live export --onnx FILE`: the pose model as an ONNX graph (the one export the backends use)."""

from __future__ import annotations

from pathlib import Path

import typer

from transpose_live.cli.options import option, say
from transpose_live.errors import TransposeLiveError


def export_command(
    onnx: Path = typer.Option(..., "--onnx", help="The ONNX file to write."),
    model: str = option("model"),
    weights: str = option("weights"),
    image_size: str = typer.Option(None, "--image-size", help="Input HEIGHTxWIDTH (default: the size the weights "
                                   "were trained at)."),
    dynamic_batch: bool = typer.Option(False, "--dynamic-batch", help="Leave the batch axis free (all persons of "
                                       "a frame in one call); else it is fixed to --batch."),
    batch: int = typer.Option(1, "--batch", min=1, help="The fixed batch size (without --dynamic-batch)."),
    attention: bool = typer.Option(False, "--attention", help="Also output every encoder layer's head-averaged "
                                   "attention map (B, N, N) as attention_0..attention_{L-1}."),
    opset: int = typer.Option(17, "--opset", min=13, help="ONNX opset."),
) -> None:
    """Write the model as ONNX: input 'input' (B, 3, H, W) float32 normalised RGB crops, output 'heatmaps'
    (B, 17, H/4, W/4); checked against the torch model with ONNX Runtime before it returns."""
    # deferred: torch and the exporter load only when the command runs (--help stays cheap)
    from transpose_live.live.spec import RunSpec
    from transpose_live.media.sinks import check_output
    from transpose_live.model import load_model
    from transpose_live.model.backends.export import export_onnx

    if str(onnx) == "-":
        raise TransposeLiveError("--onnx needs a file name (an ONNX graph is not streamed to stdout)")
    spec = RunSpec.from_options(model=model, weights=weights, image_size=image_size)
    check_output(onnx, "onnx")
    net = load_model(spec.model, spec.weights, spec.image_size).float()
    export_onnx(net, onnx, attention=attention, dynamic_batch=dynamic_batch, opset=opset, batch=batch)
    diff = _parity(net, onnx, attention, 2 if dynamic_batch else batch)
    h, w = net.config.image_size
    say(f"wrote {onnx} ({net.config.name}, {h}x{w}, batch {'dynamic' if dynamic_batch else batch}"
        f"{', attention maps' if attention else ''}, opset {opset}); "
        f"ONNX Runtime vs torch: heatmaps max |diff| {diff:.2e}")
    typer.echo(str(onnx))


def _parity(net, path: Path, attention: bool, batch: int) -> float:
    """Largest heatmap difference between ONNX Runtime on the written file and the torch model."""
    import numpy as np
    import onnxruntime as ort  # deferred: the check's runtime loads only when a graph is checked
    import torch

    h, w = net.config.image_size
    x = torch.randn(batch, 3, h, w, generator=torch.Generator().manual_seed(0))
    with torch.inference_mode():
        ref = net(x)
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    out = session.run(None, {"input": x.numpy()})
    return float(np.abs(out[0] - ref.numpy()).max())


def register(app: typer.Typer) -> None:
    app.command("export")(export_command)
