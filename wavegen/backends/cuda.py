"""The CUDA target: NVRTC cubins, loaded and launched through CuPy's driver API bindings
(``cupy.cuda.driver``: module loading and ``cuLaunchKernel``, the same in CuPy 13 and 14)
on PyTorch's current stream, with no host synchronisation.

A launch passes its arguments as one buffer (CU_LAUNCH_PARAM_BUFFER_POINTER), laid out from
the kernel's parameter declaration (backends.args_struct), and the raw stream handle: no
stream object, context manager or NumPy scalar per launch; the device is switched only
when the caller's current device is another.
"""
from __future__ import annotations

import ctypes
from pathlib import Path

import torch

from . import args_struct, nvrtc
from ..render import kernel_symbol

INSTALL_HINT = ("running wavegen on CUDA tensors needs CuPy: `pip install wavegen[cuda12]` "
                "(CUDA 12) or `pip install wavegen[cuda13]` (CUDA 13)")
# cuLaunchKernel's `extra` keys (cuda.h).
_PARAM_BUFFER_POINTER, _PARAM_BUFFER_SIZE, _PARAM_END = 1, 2, 0


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
    """What a cubin depends on: the NVRTC that compiled it, the architecture and the
    driver that loads it (a newer driver may load what an older one refused)."""
    driver = nvrtc.driver_version()
    return {"nvrtc": list(nvrtc.version()), "arch": arch(device_index),
            "driver": list(driver) if driver else None}


def compile_cubin(device_index: int, src: Path, out: Path) -> None:
    out.write_bytes(nvrtc.compile_cubin(src.read_text(), arch(device_index), src.name))


def _current_stream(device_index: int) -> int:
    """The raw handle of PyTorch's current stream on the device."""
    raw = getattr(torch._C, "_cuda_getCurrentRawStream", None)
    return raw(device_index) if raw else torch.cuda.current_stream(device_index).cuda_stream


def load(path: Path, kernel, dtype: str, device_index: int):
    """The kernel in the cubin at ``path``, as ``fn(packed, blocks, threads)``: ``packed``
    is its argument struct (args_struct), passed as the launch's parameter buffer."""
    driver = cupy().cuda.driver
    with torch.cuda.device(device_index):
        torch.cuda.synchronize()               # binds the device's primary context here
        module = driver.moduleLoadData(path.read_bytes())
        function = driver.moduleGetFunction(module, kernel_symbol(kernel, dtype, "cuda"))
    size = ctypes.c_size_t(ctypes.sizeof(args_struct(kernel.params)))

    def launch(packed, blocks, threads):
        # The driver copies the buffer at the launch: ``packed`` may go right after.
        extra = (ctypes.c_void_p * 5)(_PARAM_BUFFER_POINTER, ctypes.addressof(packed),
                                      _PARAM_BUFFER_SIZE, ctypes.addressof(size), _PARAM_END)
        stream = _current_stream(device_index)
        if torch.cuda.current_device() == device_index:
            driver.launchKernel(function, blocks, 1, 1, threads, 1, 1, 0, stream, 0,
                                ctypes.addressof(extra))
        else:
            with torch.cuda.device(device_index):
                driver.launchKernel(function, blocks, 1, 1, threads, 1, 1, 0, stream, 0,
                                    ctypes.addressof(extra))

    launch.module = module                     # keeps the module referenced with its kernel
    return launch
