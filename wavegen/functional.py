"""PyWavelets' functions on tensors: ``wavegen.functional.wavedec2(x, "db4", level=3)``.

The names, argument order, defaults and return structures are PyWavelets': coefficient
lists coarsest first, 2-D details as ``(cH, cV, cD)`` tuples, ``level=None`` for
``dwt_max_level``, ``None`` coefficients in the inverses for zeros. Tensors of any rank:
the transformed axes are ``axis`` / ``axes``, every other dimension is batch. They run on
the compiled transforms of ``wavegen.build`` (so on CUDA tensors, in every dtype, with
gradients); a level above ``dwt_max_level`` warns as PyWavelets does. ``wavelet`` may also
be a bank of tensors (``wavegen.TensorFilterBank`` or four 1-D tensors dec_lo, dec_hi,
rec_lo, rec_hi): the kernels then take the taps at run time, and gradients reach them.
"""
from __future__ import annotations

import functools
import math
import numbers
import operator

import torch

from .plan import max_level, output_length
from .spec import Spec, axis_modes, canonical_mode, filter_bank
from .taps import TapsTransform, tensor_bank
from .transform import build

__all__ = ["dwt", "idwt", "wavedec", "waverec", "dwt2", "idwt2", "wavedec2", "waverec2",
           "dwt_max_level", "dwt_coeff_len"]


def _filter_length(filter_len) -> int:
    """An integral number, or a wavelet (name, pywt.Wavelet, filter tuple or bank of
    tensors) whose decomposition length counts."""
    if isinstance(filter_len, numbers.Real) and not isinstance(filter_len, bool):
        if filter_len != int(filter_len):
            raise ValueError(f"a filter length must be a whole number, got {filter_len}")
        return int(filter_len)
    bank = tensor_bank(filter_len)
    return bank.length if bank is not None else filter_bank(filter_len).length


def _lengths(wavelet, count: int) -> tuple[int, ...]:
    """The filter length per axis: a wavelet, or for 2-D a pair (one per axis) of them."""
    bank = tensor_bank(wavelet)
    if bank is not None:
        return (bank.length,) * count
    return tuple(b.length for b in Spec("dwt2d" if count == 2 else "dwt1d", wavelet).banks)


def _per_axis(kind: str, wavelet, mode):
    """(wavelets, modes) per axis of a 2-D ``kind``, as the 1-D functions take them."""
    bank = tensor_bank(wavelet)
    return ((bank, bank) if bank is not None else Spec(kind, wavelet).banks,
            axis_modes(kind, mode, 2))


def _transform(kind: str, wavelet, levels: int, mode):
    """The transform of ``kind``: compiled with the wavelet's taps, or, for a bank of
    tensors, with run-time taps (differentiable in them; taps.py)."""
    bank = tensor_bank(wavelet)
    if bank is not None:
        return TapsTransform(kind, bank.length, levels, mode, bank=bank)
    return build(Spec(kind, wavelet, levels, mode))


def dwt_max_level(data_len: int, filter_len) -> int:
    """``pywt.dwt_max_level``: the most levels with every coefficient still informed by the
    signal; ``filter_len`` an int or a wavelet."""
    length = _filter_length(filter_len)
    if length < 2:
        raise ValueError(f"invalid wavelet filter length {length}; it must be at least 2")
    if data_len < 1:
        raise ValueError(f"data_len must be at least 1, got {data_len}")
    return max_level(int(data_len), length)


def dwt_coeff_len(data_len: int, filter_len, mode: str) -> int:
    """``pywt.dwt_coeff_len``: the number of coefficients one level gives."""
    if data_len < 1:
        raise ValueError(f"data_len must be at least 1, got {data_len}")
    length = _filter_length(filter_len)
    if length < 1:
        raise ValueError(f"filter_len must be at least 1, got {length}")
    return output_length(int(data_len), length, canonical_mode(mode))


def _tensor(x, what: str) -> torch.Tensor:
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"{what} must be a torch.Tensor, got {type(x).__name__} (wrap NumPy "
                        "arrays with torch.from_numpy)")
    return x


def _axes(axes, ndim: int, count: int, distinct: bool = True) -> tuple[int, ...]:
    """The transformed axes as non-negative indices, checked (dwt2 and idwt2 may repeat
    one, as PyWavelets' may)."""
    if isinstance(axes, int) and count > 1:
        raise TypeError(f"axes must be a sequence of {count} axes, got the int {axes}")
    axes = (axes,) if isinstance(axes, int) else tuple(axes)
    if len(axes) != count:
        raise ValueError(f"expected {count} axes, got {axes}")
    if ndim < count:
        raise ValueError(f"expected an input with at least {count} dimension(s), got "
                         f"{ndim}")
    for a in axes:
        if not -ndim <= a < ndim:
            raise ValueError(f"axis {a} is out of range for a {ndim}-d input")
    axes = tuple(a % ndim for a in axes)
    if distinct and len(set(axes)) != count:
        raise ValueError(f"the axes must be distinct, got {axes}")
    return axes


class _Batch:
    """Moves the transformed axes last and every other dimension into one batch
    dimension, (B, 1, *spatial) as the transforms take, and back."""

    def __init__(self, shape, axes):
        self.axes, self.last = axes, tuple(range(-len(axes), 0))
        self.lead = tuple(n for d, n in enumerate(shape) if d not in axes)

    def into(self, t: torch.Tensor) -> torch.Tensor:
        t = t.movedim(self.axes, self.last)
        return t.reshape(math.prod(self.lead), 1, *t.shape[len(self.lead):])

    def out(self, t: torch.Tensor) -> torch.Tensor:
        spatial = t.shape[-len(self.axes):]
        return t.reshape(*self.lead, *spatial).movedim(self.last, self.axes)


def _check_level(level, sizes, wavelet) -> int:
    """PyWavelets' level rule: None is the largest level every axis allows, below 0 is an
    error (0 is the identity)."""
    if level is None:
        return min(max_level(n, L) for n, L in zip(sizes, _lengths(wavelet, len(sizes))))
    try:
        level = operator.index(level)          # an int, or a NumPy integer
    except TypeError:
        raise TypeError(f"level must be an integer or None, got {type(level).__name__}") \
            from None
    if level < 0:
        raise ValueError(f"level value of {level} is too low; the minimum level is 0")
    return level


# -- 1-D ------------------------------------------------------------------------------------
def wavedec(data, wavelet, mode="symmetric", level=None, axis=-1):
    """``[cA_n, cD_n, ..., cD_1]`` along ``axis``."""
    data = _tensor(data, "data")
    axes = _axes(axis, data.dim(), 1)
    level = _check_level(level, (data.shape[axes[0]],), wavelet)
    if level == 0:
        return [data]
    batch = _Batch(data.shape, axes)
    yl, yh = _transform("dwt1d", wavelet, level, mode)(batch.into(data))
    return [batch.out(yl)] + [batch.out(d) for d in reversed(yh)]


def dwt(data, wavelet, mode="symmetric", axis=-1):
    """``(cA, cD)``: one level along ``axis``."""
    data = _tensor(data, "data")
    axes = _axes(axis, data.dim(), 1)
    batch = _Batch(data.shape, axes)
    yl, yh = _transform("dwt1d", wavelet, 1, mode)(batch.into(data),
                                                           level_warning=False)
    return batch.out(yl), batch.out(yh[0])


def waverec(coeffs, wavelet, mode="symmetric", axis=-1):
    """The inverse of ``wavedec``: ``coeffs = [cA_n, cD_n, ..., cD_1]``, where ``None``
    (the approximation or a detail) means zeros."""
    approx, details = _split(coeffs)
    if not details:
        return approx
    for j, d in enumerate(details):
        if d is not None and not isinstance(d, torch.Tensor):
            raise ValueError(f"Unexpected detail coefficient type {type(d).__name__} at level "
                             f"{len(details) - j}: 1-D details must be tensors as wavedec "
                             "returns them")
    present = next(c for c in [approx, *details] if c is not None)
    axes = _axes(axis, present.dim(), 1)
    return _synthesis("idwt1d", approx, [[d] for d in details], wavelet, mode, axes)


def idwt(cA, cD, wavelet, mode="symmetric", axis=-1):
    """One level of synthesis along ``axis``; either of cA and cD may be None (zeros)."""
    if cA is None and cD is None:
        raise ValueError("at least one of cA and cD must be given")
    for c, what in ((cA, "cA"), (cD, "cD")):
        if c is not None:
            _tensor(c, what)
    if cA is not None and cD is not None and cA.shape != cD.shape:
        raise ValueError(f"cA and cD must have the same shape; got {tuple(cA.shape)} and "
                         f"{tuple(cD.shape)}")
    present = cA if cA is not None else cD
    return _synthesis("idwt1d", cA, [[cD]], wavelet, mode, _axes(axis, present.dim(), 1))


# -- 2-D ------------------------------------------------------------------------------------
def wavedec2(data, wavelet, mode="symmetric", level=None, axes=(-2, -1)):
    """``[cA_n, (cH_n, cV_n, cD_n), ..., (cH_1, cV_1, cD_1)]`` over ``axes``."""
    data = _tensor(data, "data")
    axes = _axes(axes, data.dim(), 2)
    level = _check_level(level, tuple(data.shape[a] for a in axes), wavelet)
    if level == 0:
        return [data]
    batch = _Batch(data.shape, axes)
    yl, yh = _transform("dwt2d", wavelet, level, mode)(batch.into(data))
    return [batch.out(yl)] + [tuple(batch.out(d[:, :, b]) for b in range(3))
                              for d in reversed(yh)]


def dwt2(data, wavelet, mode="symmetric", axes=(-2, -1)):
    """``(cA, (cH, cV, cD))``: one level over ``axes``."""
    data = _tensor(data, "data")
    axes = _axes(axes, data.dim(), 2, distinct=False)
    if axes[0] == axes[1]:
        # Twice along one axis, as PyWavelets' dwtn: (a, d), then each of them again.
        (w0, w1), (m0, m1) = _per_axis("dwt2d", wavelet, mode)
        a, d = dwt(data, w0, m0, axes[0])
        (aa, ad), (da, dd) = (dwt(c, w1, m1, axes[1]) for c in (a, d))
        return aa, (da, ad, dd)
    batch = _Batch(data.shape, axes)
    yl, yh = _transform("dwt2d", wavelet, 1, mode)(batch.into(data),
                                                           level_warning=False)
    return batch.out(yl), tuple(batch.out(yh[0][:, :, b]) for b in range(3))


def waverec2(coeffs, wavelet, mode="symmetric", axes=(-2, -1)):
    """The inverse of ``wavedec2``; ``None`` (the approximation, a detail tuple or one of
    its bands) means zeros."""
    approx, details = _split(coeffs)
    if not details:
        return approx
    details = [_detail_tuple(d, len(details) - j) for j, d in enumerate(details)]
    present = next((c for c in [approx, *(b for d in details for b in d)] if c is not None),
                   None)
    if present is None:
        raise ValueError("every coefficient is None; at least one must be given")
    return _synthesis("idwt2d", approx, details, wavelet, mode,
                      _axes(axes, present.dim(), 2))


def idwt2(coeffs, wavelet, mode="symmetric", axes=(-2, -1)):
    """One level of synthesis over ``axes``: ``coeffs = (cA, (cH, cV, cD))``, any of them
    None (zeros)."""
    if not isinstance(coeffs, (tuple, list)) or len(coeffs) != 2:
        raise ValueError("idwt2 takes coeffs = (cA, (cH, cV, cD))")
    cA, detail = coeffs
    detail = _detail_tuple(detail, 1)
    present = [c for c in (cA, *detail) if c is not None]
    if not present:
        raise ValueError("at least one of cA, cH, cV and cD must be given")
    if any(c.shape != present[0].shape for c in present):
        raise ValueError("cA, cH, cV and cD must have the same shape; got "
                         f"{[tuple(c.shape) for c in present]}")
    axes = _axes(axes, present[0].dim(), 2, distinct=False)
    if axes[0] == axes[1]:
        # The inverse of dwt2's two passes along one axis: the second first.
        (w0, w1), (m0, m1) = _per_axis("idwt2d", wavelet, mode)
        cH, cV, cD = detail
        a, d = (None if lo is None and hi is None else idwt(lo, hi, w1, m1, axes[1])
                for lo, hi in ((cA, cV), (cH, cD)))
        return idwt(a, d, w0, m0, axes[0])
    return _synthesis("idwt2d", cA, [detail], wavelet, mode, axes)


# -- synthesis of PyWavelets-ordered coefficients ------------------------------------------
def _split(coeffs):
    if not isinstance(coeffs, (list, tuple)):
        raise ValueError("expected a sequence of coefficient arrays (coarsest first)")
    if len(coeffs) < 1:
        raise ValueError("the coefficient list is empty; it needs at least the approximation")
    return coeffs[0], list(coeffs[1:])


def _detail_tuple(detail, level: int) -> tuple:
    if detail is None:
        return (None, None, None)
    if not isinstance(detail, (tuple, list)) or len(detail) != 3:
        raise ValueError(f"Unexpected detail coefficient type {type(detail).__name__} at level "
                         f"{level}: 2-D details must be a (cH, cV, cD) tuple as wavedec2 "
                         "returns them")
    for c, what in zip(detail, ("cH", "cV", "cD")):
        if c is not None:
            _tensor(c, f"level {level} {what}")
    shapes = {tuple(c.shape) for c in detail if c is not None}
    if len(shapes) > 1:
        raise ValueError(f"level {level}: cH, cV and cD must have one shape; got "
                         f"{[None if c is None else tuple(c.shape) for c in detail]}")
    return tuple(detail)


def _synthesis(kind, approx, details, wavelet, mode, axes):
    """``details``: per level, coarsest first, the bands ([cD], or [cH, cV, cD]); None
    coefficients become zeros of the size the neighbouring ones imply."""
    t = _transform(kind, wavelet, len(details), mode)
    given = [c for c in [approx, *(b for d in details for b in d)] if c is not None]
    # Coefficients of several dtypes are computed in the widest, as PyWavelets does.
    dtype = functools.reduce(torch.promote_types, [c.dtype for c in given])
    approx = approx if approx is None else approx.to(dtype)
    details = [[b if b is None else b.to(dtype) for b in d] for d in details]
    like = given[0].to(dtype)
    batch = _Batch(like.shape, axes)
    size = None if approx is None else tuple(approx.shape[a] for a in axes)
    bands = []
    for level, detail in enumerate(details):
        given = next((b for b in detail if b is not None), None)
        band_size = tuple(given.shape[a] for a in axes) if given is not None else size
        if band_size is None:         # no approximation and nothing at the coarsest level
            raise ValueError("the approximation and the coarsest details are all None: their "
                             "size is unknown")
        bands.append([batch.into(b) if b is not None else
                      like.new_zeros((math.prod(batch.lead), 1, *band_size))
                      for b in detail])
        size = t.plan.synthesis_size(band_size)
    yl = batch.into(approx) if approx is not None else \
        like.new_zeros((math.prod(batch.lead), 1, *tuple(bands[0][0].shape[2:])))
    yh = [b[0] if len(b) == 1 else torch.stack(b, 2) for b in reversed(bands)]
    return batch.out(t(yl, yh))
