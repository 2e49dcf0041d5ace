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

from .. import emulation
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


def flags(target: str, emulation_mode: str = "plain") -> list[str]:
    """The compiler flags of ``target``; the emulated CUDA target's in its mode
    (wavegen.emulation)."""
    return FLAGS[target] + (emulation.flags(emulation_mode) if target == "cuda_emulated" else [])


def toolchain(target: str, emulation_mode: str = "plain") -> dict:
    return {**_describe(compiler()), "flags": flags(target, emulation_mode)}


def compile_library(target: str, emulation_mode: str, src: Path, out: Path) -> None:
    cmd = [compiler(), *flags(target, emulation_mode), str(src), "-o", str(out)]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"compiling generated {target} source failed ({' '.join(cmd)}):\n"
                           f"{proc.stderr[-4000:]}")


def load(path: Path, kernel, dtype: str, target: str, emulation_mode: str = "plain"):
    """The kernel's entry point in the shared library at ``path``, as ``fn(packed, blocks,
    threads)``: ``packed`` is the kernel's argument struct (args_struct), passed by
    pointer (the CPU target ignores the grid). A checked emulation's entry point takes the
    parameters' tensor extents too (emulation.checked_entry)."""
    if emulation_mode == "sanitized":
        emulation.require_sanitizer_runtime()
    library = ctypes.CDLL(str(path))
    symbol = kernel_symbol(kernel, dtype, target)
    fn = getattr(library, symbol)
    if target == "cpu":
        fn.argtypes, fn.restype = [ctypes.c_void_p], None
        return lambda packed, blocks, threads: fn(ctypes.byref(packed))
    fn.argtypes = [ctypes.c_uint, ctypes.c_uint, ctypes.c_void_p, ctypes.c_void_p]
    fn.restype = ctypes.c_size_t
    if emulation_mode != "plain":
        return emulation.checked_entry(library, fn, f"{kernel.name} ({dtype})")
    return lambda packed, blocks, threads: fn(blocks, threads, ctypes.byref(packed), None)
