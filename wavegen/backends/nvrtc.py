"""NVRTC through ctypes: compiles CUDA source to a cubin, with or without a GPU.

The same function compiles kernels for the CUDA target and checks every generated CUDA
source in CI (the ``nvidia-cuda-nvrtc`` wheel ships the library; no driver is needed).
"""
from __future__ import annotations

import ctypes
import functools
import glob
import os


class NvrtcUnavailable(RuntimeError):
    pass


def _candidates():
    """The machine's CUDA toolkit first (it matches the driver that will load the cubins),
    the pip wheel last (CI and machines without a toolkit)."""
    for var in ("CUDA_PATH", "CUDA_HOME"):
        if os.environ.get(var):
            yield from sorted(glob.glob(os.path.join(os.environ[var], "lib64", "libnvrtc.so*")))
    yield from sorted(glob.glob("/usr/local/cuda/lib64/libnvrtc.so*"))
    yield from sorted(glob.glob("/usr/local/cuda-*/lib64/libnvrtc.so*"), reverse=True)
    yield from ("libnvrtc.so", "libnvrtc.so.13", "libnvrtc.so.12")
    try:
        import nvidia.cuda_nvrtc as wheel
        for base in wheel.__path__:
            yield from sorted(glob.glob(os.path.join(base, "lib", "libnvrtc.so*")))
    except ImportError:
        pass


@functools.lru_cache(maxsize=None)
def library() -> ctypes.CDLL:
    errors = []
    for path in _candidates():
        if "builtins" in os.path.basename(path) or ".alt." in os.path.basename(path):
            continue
        try:
            lib = ctypes.CDLL(path)
        except OSError as exc:
            errors.append(f"{path}: {exc}")
            continue
        lib.nvrtcGetErrorString.restype = ctypes.c_char_p
        return lib
    raise NvrtcUnavailable("NVRTC was not found; install it with `pip install "
                           "nvidia-cuda-nvrtc-cu12` (or CuPy's CUDA toolkit). Tried: "
                           + "; ".join(errors[-3:]))


def version() -> tuple[int, int]:
    major, minor = ctypes.c_int(), ctypes.c_int()
    _check(library().nvrtcVersion(ctypes.byref(major), ctypes.byref(minor)), "nvrtcVersion")
    return major.value, minor.value


def _check(result: int, what: str, log: str = ""):
    if result != 0:
        message = library().nvrtcGetErrorString(result).decode()
        raise RuntimeError(f"{what} failed: {message}\n{log}")


def compile_cubin(source: str, arch: str, name: str = "kernels.cu") -> bytes:
    """Compile ``source`` for ``arch`` (e.g. 'sm_90'); raise with NVRTC's log on error."""
    lib = library()
    prog = ctypes.c_void_p()
    _check(lib.nvrtcCreateProgram(ctypes.byref(prog), source.encode(), name.encode(), 0,
                                  None, None), "nvrtcCreateProgram")
    try:
        options = [f"--gpu-architecture={arch}", "-std=c++17"]
        opts = (ctypes.c_char_p * len(options))(*(o.encode() for o in options))
        result = lib.nvrtcCompileProgram(prog, len(options), opts)
        size = ctypes.c_size_t()
        lib.nvrtcGetProgramLogSize(prog, ctypes.byref(size))
        log = ctypes.create_string_buffer(size.value)
        lib.nvrtcGetProgramLog(prog, log)
        _check(result, "NVRTC compilation", log.value.decode(errors="replace"))
        _check(lib.nvrtcGetCUBINSize(prog, ctypes.byref(size)), "nvrtcGetCUBINSize")
        cubin = ctypes.create_string_buffer(size.value)
        _check(lib.nvrtcGetCUBIN(prog, cubin), "nvrtcGetCUBIN")
        return cubin.raw
    finally:
        lib.nvrtcDestroyProgram(ctypes.byref(prog))
