"""Host-compiled targets: 'cpu' (the generated C++) and 'cuda_emulated' (the generated CUDA
source compiled against wavegen/templates/cuda_emu.h). Both are shared libraries with a C ABI,
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


def load(path: Path, kernel, dtype: str, target: str):
    """The kernel's entry point in the shared library at ``path``, as ``fn(packed, blocks,
    threads)``: ``packed`` is the kernel's argument struct (args_struct), passed by
    pointer (the CPU target ignores the grid)."""
    fn = getattr(ctypes.CDLL(str(path)), kernel_symbol(kernel, dtype, target))
    grid = [ctypes.c_uint, ctypes.c_uint] if target == "cuda_emulated" else []
    fn.argtypes = grid + [ctypes.c_void_p]
    fn.restype = None
    if target == "cuda_emulated":
        return lambda packed, blocks, threads: fn(blocks, threads, ctypes.byref(packed))
    return lambda packed, blocks, threads: fn(ctypes.byref(packed))
