"""Forward and inverse DWTs against PyWavelets, the reference for values and sizes."""
import warnings

import numpy as np
import pytest
import pywt
import torch
from hypothesis import given, settings, HealthCheck, strategies as st

import wavegen
from wavegen.spec import MODES
from bounds import DwtBounds, assert_within

WAVELETS = ["haar", "db4", "sym5", "coif2", "bior2.2", "rbio3.5", "db10"]
SIZES_2D = [(37, 50), (16, 16), (5, 3), (1, 2)]


def pywt_2d(x, wavelet, mode, level):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return pywt.wavedec2(x.double().numpy(), wavelet, mode=mode, level=level)


def check_2d(x, wavelet, mode, level, target=None, pywt_wavelet=None):
    """wavedec2 and waverec2 against PyWavelets, within the elementwise bound derived
    for this input, filter, mode and number of levels (tests/bounds.py)."""
    t = wavegen.build(wavegen.Spec("dwt2d", wavelet, level, mode), target)
    try:
        ref = pywt_2d(x, pywt_wavelet or wavelet, mode, level)
    except ValueError:      # e.g. reflect of a single sample: wavegen must refuse as well
        with pytest.raises(ValueError, match="too short"):
            t(x)
        return None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yl, yh = t(x)
    assert yl.dtype == x.dtype
    bounds = DwtBounds(x.double().numpy(), pywt_wavelet or wavelet, mode, level, x.dtype, 2)
    low, details = bounds.forward()
    assert yl.shape == ref[0].shape
    assert_within(yl, ref[0], low, "yl")
    for j in range(level):
        bands = np.stack(ref[-1 - j], axis=2)
        assert yh[j].shape == bands.shape, f"level {j + 1}"
        assert_within(yh[j], bands, details[j], f"yh[{j}]")
    xr = t.inverse()(yl, yh)
    xref = pywt.waverec2(ref, pywt_wavelet or wavelet, mode=mode)
    assert xr.shape == xref.shape
    assert_within(xr, xref, bounds.inverse(), "waverec2")
    return yl, yh


def wavelet_mode_pairs(wavelets, every: int) -> list:
    """(wavelet, mode) for every pair; those with (wavelet index + mode index) not a multiple
    of ``every`` marked slow, so that the default run still gives every mode and every
    wavelet (each pair compiles its own kernels, ~1 s each on two cores)."""
    return [pytest.param(w, m, marks=() if (i + j) % every == 0 else pytest.mark.slow)
            for i, w in enumerate(wavelets) for j, m in enumerate(MODES)]


@pytest.mark.parametrize("wavelet,mode", wavelet_mode_pairs(WAVELETS, 2))
def test_dwt2d_matches_pywt_float64(wavelet, mode):
    for size in SIZES_2D:
        x = torch.randn(2, 3, *size, dtype=torch.float64)
        check_2d(x, wavelet, mode, 3)


@pytest.mark.parametrize("mode", ["symmetric", "periodization", "smooth", "antireflect"])
def test_dwt2d_matches_pywt_float32(mode):
    x = torch.randn(2, 2, 29, 40, dtype=torch.float32)
    check_2d(x, "db3", mode, 3)


def test_dwt2d_different_filters_per_axis():
    """A pair of banks filters the height with the first and the width with the second."""
    x = torch.randn(1, 2, 23, 30, dtype=torch.float64)
    check_2d(x, ("db2", "bior3.1"), "symmetric", 2,
             pywt_wavelet=(pywt.Wavelet("db2"), pywt.Wavelet("bior3.1")))


def test_dwt2d_cpu_level_over_chunks_of_planes():
    """The CPU runs a fused 2-D level's passes over chunks of planes of about
    FusedLevelKernel.cpu_chunk samples per temporary: 50 planes of 64 x 700 (db4) make a
    chunk of 42 planes, then one of 8."""
    t = wavegen.build(wavegen.Spec("dwt2d", "db4", 1, "periodic"))
    plane = 35 * 700                   # the height pass's output: 35 rows of 700
    per_chunk = t.plan.level_kernel.cpu_chunk // plane
    assert per_chunk == 42 and 50 % per_chunk == 8
    check_2d(torch.randn(5, 10, 64, 700, dtype=torch.float64), "db4", "periodic", 1)


def test_custom_filter_bank_odd_length():
    """Odd-length custom banks are zero-padded at the end, as pywt does."""
    rng = np.random.default_rng()
    bank = [rng.standard_normal(5) for _ in range(4)]
    w = pywt.Wavelet("random", filter_bank=bank)
    x = torch.randn(2, 1, 19, 12, dtype=torch.float64)
    for mode in ("zero", "periodization", "antisymmetric"):
        check_2d(x, tuple(bank), mode, 2, pywt_wavelet=w)
    check_2d(x, w, "smooth", 2)                  # pywt.Wavelet objects are accepted too


@pytest.mark.slow
@pytest.mark.parametrize("chunk", range(6))
def test_every_discrete_wavelet_1d(chunk):
    """Each of pywt's discrete wavelets (a sixth per test), forward and inverse, rotating
    through the modes and through sizes that include signals shorter than the filter (by
    default, test_functional's sweep runs every wavelet through the same transforms)."""
    names = pywt.wavelist(kind="discrete")
    assert len(names) > 100
    for i, name in list(enumerate(names))[chunk::6]:
        mode = MODES[i % len(MODES)]
        L = pywt.Wavelet(name).dec_len
        n = [L // 2 + 1, 2 * L + 3, 64][i % 3]
        x = torch.randn(2, 2, n, dtype=torch.float64)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ref = pywt.wavedec(x.numpy(), name, mode=mode, level=2)
            yl, yh = wavegen.build(wavegen.Spec("dwt1d", name, 2, mode))(x)
        bounds = DwtBounds(x.numpy(), name, mode, 2, x.dtype, 1)
        low, details = bounds.forward()
        assert_within(yl, ref[0], low, f"{name} {mode} n={n} yl")
        for j in range(2):
            assert_within(yh[j], ref[-1 - j], details[j], f"{name} {mode} n={n} yh[{j}]")
        xr = wavegen.build(wavegen.Spec("idwt1d", name, 2, mode))(yl, yh)
        assert_within(xr, pywt.waverec(ref, name, mode=mode), bounds.inverse(),
                      f"{name} {mode} n={n} waverec")


@pytest.mark.parametrize("mode", MODES)
def test_perfect_reconstruction_odd_sizes(mode):
    """idwt(dwt(x)) restores x (the last row/column is the extra one of odd sizes)."""
    x = torch.randn(3, 2, 31, 26, dtype=torch.float64)
    t = wavegen.build(wavegen.Spec("dwt2d", "sym4", 3, mode))
    xr = t.inverse()(*t(x))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")       # pywt's level warning, in the bound's operators
        bound = DwtBounds(x.numpy(), "sym4", mode, 3, x.dtype, 2).reconstruction()
    assert_within(xr[..., :31, :26], x, bound, "round trip")


SWEEP_WAVELETS = ["haar", "db2", "db5", "sym3", "coif1", "bior1.3", "bior3.9", "rbio2.4",
                  "dmey"]
SWEEP = dict(wavelet=st.sampled_from(SWEEP_WAVELETS), mode=st.sampled_from(MODES),
             levels=st.integers(1, 4), h=st.integers(2, 40), w=st.integers(2, 40),
             dtype=st.sampled_from([torch.float32, torch.float64]))


def sweep_case(wavelet, mode, levels, h, w, dtype):
    x = torch.randn(1, 2, h, w, dtype=dtype)
    check_2d(x, wavelet, mode, levels)


# In CI the examples are derandomized (the same 40 every run: hypothesis draws them from
# the test's name) and the inputs come from the printed seed; the wide sweep draws fresh
# examples, and more of them.
@settings(max_examples=40, deadline=None, derandomize=True, database=None,
          suppress_health_check=[HealthCheck.too_slow])
@given(**SWEEP)
def test_property_sweep_against_pywt(wavelet, mode, levels, h, w, dtype):
    sweep_case(wavelet, mode, levels, h, w, dtype)


@pytest.mark.slow
@settings(max_examples=1500, deadline=None, database=None,
          suppress_health_check=[HealthCheck.too_slow])
@given(**SWEEP)
def test_wide_property_sweep_against_pywt(wavelet, mode, levels, h, w, dtype):
    sweep_case(wavelet, mode, levels, h, w, dtype)


def test_levels_beyond_max_level_warn_like_pywt():
    x = torch.randn(1, 1, 16, 16, dtype=torch.float64)
    t = wavegen.build(wavegen.Spec("dwt2d", "db4", 3, "zero"))
    with pytest.warns(UserWarning, match="too high"):
        t(x)
