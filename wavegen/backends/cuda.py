"""The CUDA target: NVRTC cubins loaded with CuPy's RawModule, launched on PyTorch's
current stream (no host synchronisation)."""
from __future__ import annotations

import functools
from pathlib import Path

import numpy as np
import torch

from ..render import kernel_symbol
from . import nvrtc

INSTALL_HINT = ("running wavegen on CUDA tensors needs CuPy: `pip install wavegen[cuda12]` "
                "(CUDA 12) or `pip install wavegen[cuda13]` (CUDA 13)")


def cupy():
    try:
        import cupy as cp
    except ImportError as exc:
        raise RuntimeError(INSTALL_HINT) from exc
    return cp


def arch(device_index: int) -> str:
    major, minor = torch.cuda.get_device_capability(device_index)
    return f"sm_{major}{minor}"


def toolchain(device_index: int) -> dict:
    return {"nvrtc": list(nvrtc.version()), "arch": arch(device_index)}


def compile_cubin(device_index: int, src: Path, out: Path) -> None:
    out.write_bytes(nvrtc.compile_cubin(src.read_text(), arch(device_index), src.name))


@functools.lru_cache(maxsize=None)
def _external_stream(pointer: int, device_index: int):
    return cupy().cuda.ExternalStream(pointer, device_index)


class CudaModule:
    def __init__(self, path: Path, plan, dtype: str, device_index: int):
        cp = self.cp = cupy()
        self.device_index = device_index
        with cp.cuda.Device(device_index):
            module = cp.RawModule(path=str(path))
            self.functions = {k.name: module.get_function(kernel_symbol(k, dtype, "cuda"))
                              for k in plan.kernels.values()}

    def launch(self, kernel, args: list[int], grid: int, block: int) -> None:
        stream = torch.cuda.current_stream(self.device_index).cuda_stream
        with self.cp.cuda.Device(self.device_index), \
                _external_stream(stream, self.device_index):
            # NumPy scalars pass by value with their size: 8 bytes for the device pointers,
            # the `long long` sizes and strides and the `double` parameters.
            self.functions[kernel.name]((grid,), (block,), tuple(
                np.float64(a) if isinstance(a, float) else np.int64(a) for a in args))
