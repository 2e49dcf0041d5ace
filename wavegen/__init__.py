"""wavegen: a code-generating compiler for wavelet transforms in PyTorch."""
from .spec import FilterBank, Spec
from .transform import Transform, build, precompile
from . import functional, nn
from .ops import magnitude

__all__ = ["Spec", "FilterBank", "Transform", "build", "precompile", "functional", "nn", "magnitude"]
