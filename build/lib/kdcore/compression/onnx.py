"""The student as an ONNX file (fp32), its static int8 version, and either run as a torch module.

int8 goes through ONNX Runtime's static QDQ quantization rather than torch.ao's FX flow: FX
quantization is deprecated in favour of PT2E, whose x86 path lives in a separate package (torchao)
that changes quickly, while an ONNX QDQ model is a file format that ONNX Runtime, TensorRT and
OpenVINO all run, on the drone's CPU among others. Weights are quantized per output channel,
activations calibrated on training frames.
"""

from __future__ import annotations

import os
import tempfile
import warnings
from pathlib import Path

import numpy as np
import torch
from torch import nn

from kdcore.io import atomic_path


def export_onnx(model: nn.Module, path: str | os.PathLike, img_size: int) -> Path:
    """fp32 ONNX, input ``rgb`` (batch, height and width free), output ``logits``.

    Traced by torch's TorchScript exporter: the student is a plain CNN without data-dependent
    control flow, which tracing captures exactly (each stage checks the file against the model:
    ``onnx_parity``), in 0.1 s where torch.export takes 2-3 s a model (`python -m
    benchmarks.compression`). torch calls that exporter legacy, and says so once per export."""
    model = model.eval()
    example = (torch.randn(2, 3, img_size, img_size),)
    with atomic_path(path) as tmp, warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # "the legacy TorchScript-based ONNX export"
        warnings.simplefilter("ignore", torch.jit.TracerWarning)  # the student's Python-level options
        torch.onnx.export(model, example, str(tmp), input_names=["rgb"], output_names=["logits"],
                          dynamic_axes={"rgb": {0: "batch", 2: "height", 3: "width"}, "logits": {0: "batch"}},
                          dynamo=False)
    return Path(path)


class _Calibration:
    """ONNX Runtime's calibration reader over normalized training frames."""

    def __init__(self, frames: np.ndarray, batch: int = 16):
        self.batches = iter([{"rgb": frames[i:i + batch]} for i in range(0, len(frames), batch)])

    def get_next(self):
        return next(self.batches, None)


def quantize_onnx(fp32: str | os.PathLike, out: str | os.PathLike, calibration: np.ndarray) -> Path:
    """Static int8 QDQ: weights per channel (s8), activations (u8) calibrated on ``calibration``.

    Weights use 7 bits (``reduce_range``): x86 CPUs without VNNI multiply u8 by s8 with an
    instruction whose 16-bit pair sums saturate, which cost the demo students up to 7 points of
    macro-F1 with 8-bit weights and nothing measurable with 7 (tests/test_pipeline.py).
    """
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    with tempfile.TemporaryDirectory() as work:
        prepared = Path(work) / "prepared.onnx"
        quant_pre_process(str(fp32), str(prepared))  # fold BatchNorm into conv, infer shapes
        with atomic_path(out) as tmp:
            quantize_static(str(prepared), str(tmp), _Calibration(calibration.astype(np.float32)),
                            quant_format=QuantFormat.QDQ, per_channel=True, reduce_range=True,
                            activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8,
                            calibrate_method=CalibrationMethod.MinMax)
    return Path(out)


class OnnxModel(nn.Module):
    """An ONNX file behind the interface of a student: ``model(rgb) -> logits``."""

    modalities = ("rgb",)

    def __init__(self, path: str | os.PathLike, threads: int | None = None):
        super().__init__()
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.intra_op_num_threads = threads or torch.get_num_threads()
        self.path = Path(path)
        self.session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])

    def forward(self, rgb: torch.Tensor, ir: torch.Tensor | None = None) -> torch.Tensor:
        logits = self.session.run(None, {"rgb": rgb.detach().cpu().float().numpy()})[0]
        return torch.from_numpy(logits)
