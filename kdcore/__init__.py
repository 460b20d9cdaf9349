"""kdcore: privileged knowledge distillation from RGB+IR teachers into an RGB-only student."""

from kdcore.errors import KDError

__version__ = "0.1.0"
__all__ = ["KDError", "__version__"]
