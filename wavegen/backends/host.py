"""Host-compiled targets: 'cpu' (the generated C++) and 'cuda_emulated' (the generated CUDA
source compiled against templates/cuda_emu.h). Both are shared libraries with a C ABI,
built by the system C++ compiler (``$CXX``, else ``c++``) and loaded with ctypes."""
from __future__ import annotations

import ctypes
import functools
import os
import platform
import shutil
import subprocess
from pathlib import Path

from ..render import kernel_symbol

FLAGS = {
    "cpu": ["-O3", "-march=native", "-fno-math-errno", "-fopenmp", "-std=c++17", "-fPIC", "-shared"],
    # Emulation is for tests and debugging: quick to compile, one thread.
    "cuda_emulated": ["-O1", "-std=c++17", "-fPIC", "-shared"],
}


def compiler() -> str:
    cxx = os.environ.get("CXX") or "c++"
    if shutil.which(cxx) is None:
        raise RuntimeError(f"the C++ compiler {cxx!r} was not found; install g++ or clang++, "
                           "or point $CXX at one")
    return cxx


@functools.lru_cache(maxsize=None)
def _describe(cxx: str) -> dict:
    version = subprocess.run([cxx, "--version"], capture_output=True, text=True).stdout
    cpu = platform.processor()
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next((line.split(":", 1)[1].strip() for line in f
                        if line.startswith("model name")), cpu)
    except OSError:
        pass
    return {"compiler": cxx, "version": version.splitlines()[0] if version else "",
            "machine": platform.machine(), "cpu": cpu}


def toolchain(target: str) -> dict:
    return {**_describe(compiler()), "flags": FLAGS[target]}


def compile_library(target: str, src: Path, out: Path) -> None:
    cmd = [compiler(), *FLAGS[target], str(src), "-o", str(out)]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"compiling generated {target} source failed ({' '.join(cmd)}):\n"
                           f"{proc.stderr[-4000:]}")


_P, _I = ctypes.c_void_p, ctypes.c_longlong
ARGTYPES = {
    # Every DWT pass takes three views (pointer, plane stride, row stride), then P, M, N, K.
    "dwt": [_P, _I, _I] * 3 + [_I] * 4,
    # Every DTCWT level: templates/dtcwt_signature.j2.
    "dtcwt": [_P] + [_I] * 7 + [_P] + [_I] * 3 + ([_P] + [_I] * 6) + ([_P] + [_I] * 5)
    + [_I] * 5 + [ctypes.c_double],
}


class HostModule:
    """A loaded shared library; ``launch`` calls one kernel of it."""

    def __init__(self, path: Path, plan, dtype: str, target: str):
        self.lib = ctypes.CDLL(str(path))
        self.target = target
        self.functions = {}
        for kernel in plan.kernels.values():
            fn = getattr(self.lib, kernel_symbol(kernel, dtype, target))
            grid = [ctypes.c_uint, ctypes.c_uint] if target == "cuda_emulated" else []
            fn.argtypes = grid + ARGTYPES[plan.abi]
            fn.restype = None
            self.functions[kernel.name] = fn

    def launch(self, kernel, args: list[int], grid: int, block: int) -> None:
        fn = self.functions[kernel.name]
        if self.target == "cuda_emulated":
            fn(grid, block, *args)
        else:
            fn(*args)
