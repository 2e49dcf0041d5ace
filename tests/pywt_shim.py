"""A pytest plugin that runs PyWavelets' own tests against ``wavegen.functional``:
``python -m pytest -p pywt_shim --pyargs pywt.tests.test_dwt_idwt ...`` (test_pywt_suite.py).

The functions wavegen provides (dwt, idwt, wavedec, waverec, their 2-D forms,
dwt_max_level, dwt_coeff_len) are replaced in the ``pywt`` namespace by thin wrappers:
NumPy in, tensors through wavegen, NumPy out. The wrappers convert only what the tensor API
leaves to its caller, as PyWavelets converts it: float32 stays float32, float16 becomes
float32, other real types float64, complex arrays run as their real and imaginary parts.
Everything else (argument checks, errors, sizes, values) is wavegen's.
"""
import functools

import numpy as np
import pywt
import torch

import wavegen.functional as F

_REAL = {np.dtype(np.float32): torch.float32, np.dtype(np.float16): torch.float32}


def _tensor(a):
    """PyWavelets' dtype rule, then a tensor; complex arrays are split by the caller."""
    a = np.asarray(a)
    return torch.from_numpy(np.ascontiguousarray(a, dtype=np.float64)) \
        if a.dtype not in _REAL else torch.from_numpy(np.ascontiguousarray(a)).to(_REAL[a.dtype])


def _numpy(out):
    if isinstance(out, torch.Tensor):
        return out.numpy()
    if isinstance(out, (tuple, list)):
        return type(out)(_numpy(o) for o in out)
    return out


def _complex_parts(arrays):
    """(real parts, imaginary parts) of a structure of arrays, or None if all are real."""
    def parts(a, part):
        if a is None:
            return None
        if isinstance(a, (tuple, list)):
            return type(a)(parts(b, part) for b in a)
        a = np.asarray(a)
        return getattr(a, part) if np.iscomplexobj(a) else (a if part == "real" else
                                                             np.zeros_like(a))

    def any_complex(a):
        if isinstance(a, (tuple, list)):
            return any(any_complex(b) for b in a)
        return a is not None and np.iscomplexobj(a)
    return (parts(arrays, "real"), parts(arrays, "imag")) if any_complex(arrays) else None


def _tensors(a):
    """Arrays of a coefficient structure as tensors; what is not an array (a dict of
    wavedecn's) stays as it is, for wavegen to reject."""
    if isinstance(a, (tuple, list)):
        return type(a)(_tensors(b) for b in a)
    return _tensor(a) if isinstance(a, np.ndarray) else a


def _combine(real, imag):
    if isinstance(real, (tuple, list)):
        return type(real)(_combine(r, i) for r, i in zip(real, imag))
    return real + 1j * imag


def _wrap(name, structured: bool):
    """pywt.<name> on NumPy arrays (one array, or ``structured``: a coefficient structure
    of them), computed by wavegen.functional.<name>."""
    ours = getattr(F, name)

    @functools.wraps(ours)
    def call(data, *args, **kwargs):
        if not structured:
            data = np.asarray(data)
        split = _complex_parts(data)
        if split is not None:
            return _combine(call(split[0], *args, **kwargs), call(split[1], *args, **kwargs))
        return _numpy(ours(_tensors(data), *args, **kwargs))
    return call


def _wrap_idwt():
    @functools.wraps(F.idwt)
    def idwt(cA, cD, *args, **kwargs):
        split = _complex_parts([cA, cD])
        if split is not None:
            return idwt(*split[0], *args, **kwargs) + 1j * idwt(*split[1], *args, **kwargs)
        return _numpy(F.idwt(*(None if c is None else _tensor(c) for c in (cA, cD)), *args,
                             **kwargs))
    return idwt


# name -> whether its first argument is a coefficient structure (else one array)
REPLACED = {"dwt": False, "wavedec": False, "dwt2": False, "wavedec2": False,
            "waverec": True, "idwt2": True, "waverec2": True}


def pytest_configure(config):
    for name, structured in REPLACED.items():
        setattr(pywt, name, _wrap(name, structured))
    pywt.idwt = _wrap_idwt()
    pywt.dwt_max_level = F.dwt_max_level
    pywt.dwt_coeff_len = F.dwt_coeff_len
