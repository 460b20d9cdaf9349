"""What the fork server of ``kdcore.study.kernels`` imports once, so that every stage kernel forks
with it loaded: the modules the stage notebooks import, eagerly or on first use.

Named as strings: importing them is this process's job, not a dependency of ``kdcore.study``
(the notebooks' own modules, ``kdcore.reports``, sit above it). A module that is not installed
is left out; the stage that needs it imports it, and fails, as it would have.
"""

import importlib
import os

# matplotlib reads its backend when imported: the one ipykernel would have set in the kernel
os.environ.setdefault("MPLBACKEND", "module://matplotlib_inline.backend_inline")

MODULES = [
    "ipykernel.kernelapp",
    "kdcore.reports.display", "kdcore.reports.stages", "kdcore.reports.plots",
    "kdcore.study.work.run", "kdcore.study.work.fits", "kdcore.study.work.evaluation",
    "kdcore.study.work.compression", "kdcore.study.work.compare", "kdcore.study.work.seed_data",
    "kdcore.models.teachers", "kdcore.models.profile", "kdcore.evaluation.embed",
    "kdcore.compression.onnx", "kdcore.compression.pruning", "kdcore.compression.predict",
    "torch._dynamo", "torch.onnx", "timm", "torchvision", "safetensors.torch", "thop", "torch_pruning",
    "onnx", "onnxruntime", "onnxruntime.quantization", "sklearn.manifold", "sklearn.model_selection",
    "scipy.optimize",
]

for name in MODULES:
    try:
        importlib.import_module(name)
    except ImportError:
        pass
