"""wavegen.functional against PyWavelets' functions of the same names: values, sizes,
coefficient structures, axes, None coefficients and errors."""
import warnings

import numpy as np
import pytest
import pywt
import torch

import wavegen.functional as F
from wavegen.spec import MODES
from wavegen.taps import TensorFilterBank
from bounds import DwtBounds, assert_within

AXES_1D = [-1, 0, 1]
AXES_2D = [(-2, -1), (0, 2), (2, 0), (-1, -3)]


def quiet(fn, *args, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return fn(*args, **kwargs)


def moved(a, axes):
    """a (tensor or array) with ``axes`` moved last, as DwtBounds takes it."""
    a = a.detach().double().numpy() if isinstance(a, torch.Tensor) else np.asarray(a)
    axes = (axes,) if isinstance(axes, int) else axes
    return np.moveaxis(a, axes, tuple(range(-len(axes), 0)))


def check(x, wavelet, mode, level, axes, bank=None):
    """wavedec(2) and waverec(2) against PyWavelets within the derived bound; with
    ``bank``, wavegen runs on that bank of tensors (run-time taps) instead of the name."""
    ndim = 1 if isinstance(axes, int) else 2
    dec, rec = (F.wavedec, F.waverec) if ndim == 1 else (F.wavedec2, F.waverec2)
    pdec, prec = (pywt.wavedec, pywt.waverec) if ndim == 1 else (pywt.wavedec2, pywt.waverec2)
    key = "axis" if ndim == 1 else "axes"
    ours = quiet(dec, x, wavelet if bank is None else bank, mode, level, **{key: axes})
    ref = quiet(pdec, x.double().numpy(), wavelet, mode, level, **{key: axes})
    levels = len(ref) - 1
    assert len(ours) == len(ref)
    bounds = quiet(DwtBounds, moved(x, axes), wavelet, mode, levels, x.dtype, ndim)
    low, details = bounds.forward()
    what = f"{wavelet} {mode} level={level} {key}={axes}"
    assert tuple(ours[0].shape) == ref[0].shape, what
    assert_within(moved(ours[0], axes), moved(ref[0], axes), low, f"{what} cA")
    for k in range(1, levels + 1):
        bound = details[levels - k]
        bands = [ours[k]] if ndim == 1 else list(ours[k])
        expected = [ref[k]] if ndim == 1 else list(ref[k])
        assert len(bands) == len(expected)
        for b, (o, r) in enumerate(zip(bands, expected)):
            assert tuple(o.shape) == r.shape, what
            assert_within(moved(o, axes), moved(r, axes), bound if ndim == 1 else bound[..., b, :, :],
                          f"{what} level {levels + 1 - k} band {b}")
    as_tensors = [torch.from_numpy(ref[0])] + [
        torch.from_numpy(c) if ndim == 1 else tuple(torch.from_numpy(b) for b in c)
        for c in ref[1:]]
    xr, xref = rec(as_tensors, wavelet if bank is None else bank, mode, **{key: axes}), \
        prec(ref, wavelet, mode, **{key: axes})
    assert tuple(xr.shape) == xref.shape, what
    assert_within(moved(xr, axes), moved(xref, axes), bounds.inverse(), f"{what} waverec")


def sweep(chunk: int, two_d, banks: bool = False, every: int = 1) -> None:
    """A sixth of pywt's discrete wavelets (of every ``every``-th of them, spread over the
    list), each in a mode (rotating through all nine), odd and even sizes and signals
    shorter than the filter (at two levels), rotating axes and levels (None: the maximum);
    1-D for every wavelet, 2-D where ``two_d(i)``; with ``banks``, each wavelet given as a
    bank of tensors. The rotation counts the wavelets taken, ``r``, so that any ``every``
    still meets every mode."""
    names = pywt.wavelist(kind="discrete")
    for r, (i, name) in enumerate(list(enumerate(names))[::every][chunk::6]):
        r += chunk
        mode = MODES[r % len(MODES)]
        L = pywt.Wavelet(name).dec_len
        n = [2 * L + 3, 2 * L + 6, L // 2 + 1][r % 3]     # odd, even, shorter than L
        level = [None, 1, 2][r % 3]
        axis = AXES_1D[r % len(AXES_1D)]
        bank = TensorFilterBank.from_wavelet(name, dtype=torch.float64) if banks else None
        check(torch.randn(*[n if d == axis % 3 else 2 for d in range(3)], dtype=torch.float64),
              name, mode, level, axis, bank)
        if two_d(i):
            axes = AXES_2D[r % len(AXES_2D)]
            shape = [2, 2, 2]
            shape[axes[0] % 3], shape[axes[1] % 3] = n, n + 1
            check(torch.randn(*shape, dtype=torch.float64), name, mode, level, axes, bank)


@pytest.mark.parametrize("chunk", range(6))
def test_every_discrete_wavelet_every_mode(chunk):
    """Every third wavelet (36, from bior1.1 and db2 to db38), 1-D, and 2-D for every
    ninth: together they still meet every family, mode, size parity, level choice and
    axes pair. Each wavelet compiles its own kernels, ~3 s a wavelet on two cores, so the
    slow run below takes every wavelet, in 1-D and 2-D."""
    sweep(chunk, lambda i: i % 9 == 0, every=3)


@pytest.mark.slow
@pytest.mark.parametrize("chunk", range(6))
def test_every_discrete_wavelet_every_mode_2d(chunk):
    sweep(chunk, lambda i: True)


@pytest.mark.parametrize("mode", ["symmetric", "periodization", "smooth"])
def test_single_level_and_none_coefficients(mode):
    """dwt/idwt and dwt2/idwt2, with None for zeros, as PyWavelets."""
    x = torch.randn(4, 19, 22, dtype=torch.float64)
    a, d = F.dwt(x, "db3", mode, axis=1)
    ra, rd = pywt.dwt(x.numpy(), "db3", mode, axis=1)
    bounds = DwtBounds(moved(x, 1), "db3", mode, 1, x.dtype, 1)
    low, (high,) = bounds.forward()
    assert_within(moved(a, 1), moved(ra, 1), low, "cA")
    assert_within(moved(d, 1), moved(rd, 1), high, "cD")
    # The inverses take PyWavelets' coefficients, so that both sides invert the same values.
    ta, td = torch.from_numpy(ra), torch.from_numpy(rd)
    for ca, cd, rca, rcd in ((ta, None, ra, None), (None, td, None, rd), (ta, td, ra, rd)):
        got = F.idwt(ca, cd, "db3", mode, axis=1)
        expected = pywt.idwt(rca, rcd, "db3", mode, axis=1)
        bound = bounds.synthesis_of(moved(ra if rca is not None else np.zeros_like(rd), 1),
                                    [moved(rd if rcd is not None else np.zeros_like(ra), 1)],
                                    [(torch.float64, 2)])
        assert_within(moved(got, 1), moved(expected, 1), bound, "idwt")
    RA, rbands = pywt.dwt2(x.numpy(), "bior2.4", mode)
    A, bands = torch.from_numpy(RA), [torch.from_numpy(b) for b in rbands]
    coefficients = (A, (bands[0], None, bands[2]))
    expected = pywt.idwt2((RA, (rbands[0], None, rbands[2])), "bior2.4", mode)
    bounds = DwtBounds(x.numpy(), "bior2.4", mode, 1, x.dtype, 2)
    zeros = np.zeros_like(rbands[1])
    bound = bounds.synthesis_of(RA, [np.stack([rbands[0], zeros, rbands[2]], -3)],
                                [(torch.float64, 2)])
    assert_within(F.idwt2(coefficients, "bior2.4", mode), expected, bound, "idwt2")
    ref = pywt.wavedec2(x.numpy(), "db2", mode, level=2)
    ours = [torch.from_numpy(ref[0])] + [tuple(map(torch.from_numpy, d)) for d in ref[1:]]
    zero_a, zero_h = np.zeros_like(ref[0]), np.zeros_like(ref[2][0])
    ours[0] = ref[0] = None
    ours[2], ref[2] = (None, *ours[2][1:]), (None, *ref[2][1:])
    bound = DwtBounds(x.numpy(), "db2", mode, 2, x.dtype, 2).synthesis_of(
        zero_a, [np.stack([zero_h, *ref[2][1:]], -3), np.stack(ref[1], -3)],
        [(torch.float64, 2)])
    assert_within(F.waverec2(ours, "db2", mode), pywt.waverec2(ref, "db2", mode), bound,
                  "waverec2 with None")


@pytest.mark.parametrize("bank", [False, True], ids=["compiled", "tensor_bank"])
def test_a_mode_and_a_wavelet_per_axis(bank):
    """PyWavelets' 2-D functions take a mode per axis (and a wavelet per axis): the plan
    compiles each axis's pass in its mode; run-time taps run each axis's pass in its."""
    torch.manual_seed(15)
    modes = ("smooth", "periodization")
    for axes, wavelet in (((-2, -1), "db2"), ((2, 0), ("db2", "bior2.2"))):
        if bank and not isinstance(wavelet, str):
            continue                  # one bank of tensors serves both axes (test above)
        shape = [2, 2, 2]
        shape[axes[0] % 3], shape[axes[1] % 3] = 9, 12
        check(torch.randn(*shape, dtype=torch.float64), wavelet, modes, 2, axes,
              TensorFilterBank.from_wavelet(wavelet, dtype=torch.float64) if bank else None)
        check(torch.randn(*shape, dtype=torch.float64), wavelet, modes[::-1], None, axes)


def test_level_zero_max_level_and_coefficient_lengths():
    x = torch.randn(2, 40, dtype=torch.float64)
    assert F.wavedec(x, "db2", level=0)[0] is x
    assert len(F.wavedec(x, "db2")) == pywt.dwt_max_level(40, "db2") + 1
    assert len(F.wavedec2(torch.randn(2, 9, 40), "db4")) == 1 + \
        min(pywt.dwt_max_level(9, 8), pywt.dwt_max_level(40, 8))
    for n in (1, 2, 7, 8, 100, 1001):
        for w in ("haar", "db4", "sym7", "bior3.9", pywt.Wavelet("coif2"), 6):
            assert F.dwt_max_level(n, w) == pywt.dwt_max_level(n, w)
            length = w if isinstance(w, int) else \
                (w if isinstance(w, pywt.Wavelet) else pywt.Wavelet(w)).dec_len
            for mode in MODES:
                assert F.dwt_coeff_len(n, length, mode) == pywt.dwt_coeff_len(n, length, mode)
    assert F.waverec([x], "db2") is x


def test_half_precision():
    """Values in the input's 2-byte dtype within the bounds derived for it (PyWavelets
    computes in float64 on the same values); test_half runs the transforms underneath in
    every mode."""
    check(torch.randn(3, 37, dtype=torch.float64).half(), "sym4", "smooth", 3, -1)
    check(torch.randn(2, 20, 3, dtype=torch.float64).bfloat16(), "db2", "periodization", 2,
          (1, 0))


def test_gradients_cuda_dtypes_and_batch_dimensions():
    """Any leading dimensions are batch; gradients flow; half precision keeps its dtype."""
    x = torch.randn(2, 3, 4, 33, requires_grad=True)
    coefficients = F.wavedec(x, "db2", level=2)
    assert [tuple(c.shape[:3]) for c in coefficients] == [(2, 3, 4)] * 3
    sum(c.square().sum() for c in coefficients).backward()
    assert x.grad.shape == x.shape and torch.isfinite(x.grad).all()
    half = F.wavedec2(torch.randn(3, 16, 16).to(torch.bfloat16), "db2", level=1)
    assert half[0].dtype == torch.bfloat16 and half[1][0].dtype == torch.bfloat16


def test_errors_name_the_problem():
    x = torch.randn(2, 32)
    with pytest.raises(ValueError, match="level value of -1 is too low"):
        F.wavedec(x, "db2", level=-1)
    with pytest.raises(ValueError, match="unknown wavelet 'db99'"):
        F.wavedec(x, "db99")
    with pytest.raises(ValueError, match="unknown mode 'mirror'"):
        F.dwt(x, "db2", "mirror")
    with pytest.raises(ValueError, match=r"one mode or one per axis \(2\); got \('zero',\)"):
        F.dwt2(torch.randn(8, 8), "haar", mode=("zero",))
    with pytest.raises(TypeError, match="a bank of tensors serves both axes"):
        bank = TensorFilterBank.from_wavelet("haar")
        F.dwt2(torch.randn(8, 8), (bank, bank))
    with pytest.raises(ValueError, match="axes must be distinct"):
        F.wavedec2(torch.randn(4, 4, 4), "haar", axes=(1, -2))
    with pytest.raises(ValueError, match="at least 2 dimension"):
        F.dwt2(torch.randn(8), "haar")
    with pytest.raises(ValueError, match="axis 3 is out of range"):
        F.dwt(x, "haar", axis=3)
    with pytest.raises(ValueError, match="same shape"):
        F.idwt(torch.randn(2, 5), torch.randn(2, 6), "haar")
    # Mixed dtypes are computed in the wider, as PyWavelets does.
    cA, cD = F.dwt(torch.randn(2, 16, dtype=torch.float64), "db2")
    assert F.idwt(cA, cD.float(), "db2").dtype == torch.float64
    with pytest.raises(ValueError, match="at least one of cA and cD"):
        F.idwt(None, None, "haar")
    with pytest.raises(ValueError, match="coefficient shapes do not fit"):
        F.waverec([torch.randn(2, 9), torch.randn(2, 5)], "haar")
    with pytest.raises(ValueError, match="empty"):
        F.waverec([], "haar")
    with pytest.raises(ValueError, match=r"\(cH, cV, cD\) tuple"):
        F.waverec2([torch.randn(1, 4, 4), torch.randn(1, 4, 4)], "haar")
    with pytest.raises(TypeError, match="torch.from_numpy"):
        F.wavedec(np.zeros(8), "haar")
    with pytest.warns(UserWarning, match="Level value of 5 is too high"):
        F.wavedec(torch.randn(1, 20), "db2", level=5)
