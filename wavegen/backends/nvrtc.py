"""NVRTC through ctypes: compiles CUDA source to a cubin, with or without a GPU.

The same function compiles kernels for the CUDA target and checks every generated CUDA
source in CI (the ``nvidia-cuda-nvrtc`` wheel ships the library; no driver is needed).

An NVRTC newer than the driver's CUDA version makes cubins the driver cannot load, so the
candidates (the machine's toolkit first, then the pip wheels, CUDA 12's and CUDA 13's
layouts) are tried in order and any newer than the driver is skipped.
"""
from __future__ import annotations

import ctypes
import functools
import glob
import os
from typing import Callable, Iterable


class NvrtcUnavailable(RuntimeError):
    pass


def _candidates():
    """The machine's CUDA toolkit first (it matches the driver that will load the cubins),
    the pip wheels last (CI and machines without a toolkit)."""
    for var in ("CUDA_PATH", "CUDA_HOME"):
        if os.environ.get(var):
            yield from sorted(glob.glob(os.path.join(os.environ[var], "lib64", "libnvrtc.so*")))
    yield from sorted(glob.glob("/usr/local/cuda/lib64/libnvrtc.so*"))
    yield from sorted(glob.glob("/usr/local/cuda-*/lib64/libnvrtc.so*"), reverse=True)
    yield from ("libnvrtc.so", "libnvrtc.so.13", "libnvrtc.so.12")
    try:
        import nvidia
    except ImportError:
        return
    for base in nvidia.__path__:
        # nvidia-cuda-nvrtc-cu12: nvidia/cuda_nvrtc/lib; the CUDA 13 wheel: nvidia/cu13/lib.
        for layout in ("cuda_nvrtc", "cu13"):
            yield from sorted(glob.glob(os.path.join(base, layout, "lib", "libnvrtc.so*")))


def _usable(path: str) -> bool:
    name = os.path.basename(path)
    return "builtins" not in name and ".alt." not in name


def _version_of(lib) -> tuple[int, int]:
    major, minor = ctypes.c_int(), ctypes.c_int()
    result = lib.nvrtcVersion(ctypes.byref(major), ctypes.byref(minor))
    if result != 0:
        raise OSError(f"nvrtcVersion failed ({result})")
    return major.value, minor.value


def select(candidates: Iterable[str], load: Callable, version_of: Callable,
           driver: tuple[int, int] | None):
    """The first candidate that loads and is no newer than ``driver`` (the driver's CUDA
    version; None: no driver, any NVRTC will do); raises NvrtcUnavailable naming what was
    tried and why each was passed over."""
    passed = []
    for path in candidates:
        if not _usable(path):
            continue
        try:
            lib = load(path)
            version = version_of(lib)
        except OSError as exc:
            passed.append(f"{path}: {exc}")
            continue
        if driver is not None and version > driver:
            passed.append(f"{path}: NVRTC {version[0]}.{version[1]} is newer than the "
                          f"driver's CUDA {driver[0]}.{driver[1]}")
            continue
        return lib
    raise NvrtcUnavailable("no usable NVRTC was found; install one no newer than the driver "
                           "(`pip install nvidia-cuda-nvrtc-cu12`, or CuPy's CUDA toolkit). "
                           "Tried: " + "; ".join(passed[-4:]))


@functools.lru_cache(maxsize=None)
def driver_version() -> tuple[int, int] | None:
    """The CUDA version the installed driver supports (cuDriverGetVersion), or None where
    there is no driver."""
    try:
        cuda = ctypes.CDLL("libcuda.so.1")
    except OSError:
        return None
    value = ctypes.c_int()
    if cuda.cuDriverGetVersion(ctypes.byref(value)) != 0:
        return None
    return value.value // 1000, value.value % 1000 // 10


@functools.lru_cache(maxsize=None)
def library() -> ctypes.CDLL:
    lib = select(_candidates(), ctypes.CDLL, _version_of, driver_version())
    lib.nvrtcGetErrorString.restype = ctypes.c_char_p
    return lib


def version() -> tuple[int, int]:
    return _version_of(library())


def _check(result: int, what: str, log: str = ""):
    if result != 0:
        message = library().nvrtcGetErrorString(result).decode()
        raise RuntimeError(f"{what} failed: {message}\n{log}")


def compile_cubin(source: str, arch: str, name: str = "kernels.cu") -> bytes:
    """Compile ``source`` for ``arch`` (e.g. 'sm_90'); raise with NVRTC's log on error."""
    return compile_cubin_with_log(source, arch, (), name)[0]


def compile_cubin_with_log(source: str, arch: str, extra: tuple[str, ...] = (),
                           name: str = "kernels.cu") -> tuple[bytes, str]:
    """The cubin and NVRTC's log (ptxas's report with ``--ptxas-options=-v`` in
    ``extra``)."""
    lib = library()
    prog = ctypes.c_void_p()
    _check(lib.nvrtcCreateProgram(ctypes.byref(prog), source.encode(), name.encode(), 0,
                                  None, None), "nvrtcCreateProgram")
    try:
        options = [f"--gpu-architecture={arch}", "-std=c++17", *extra]
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
        return cubin.raw, log.value.decode(errors="replace")
    finally:
        lib.nvrtcDestroyProgram(ctypes.byref(prog))
