"""wavegen: a code-generating compiler for wavelet transforms in PyTorch."""
from .spec import FilterBank, Spec
from .transform import Transform, build, precompile
from .taps import TensorFilterBank
from . import functional, nn, taps
from .ops import magnitude

__all__ = ["Spec", "FilterBank", "TensorFilterBank", "Transform", "build", "precompile",
           "functional", "nn", "taps", "magnitude"]
