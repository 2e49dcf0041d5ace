"""wavegen.nn layers against pytorch_wavelets: same arguments, layouts and values, so that
migrating is changing the import; and where pytorch_wavelets is wrong, against pywt."""
import copy
import pickle
import warnings

import numpy as np
import pytest
import pywt
import torch

import pytorch_wavelets as ptw
from wavegen import nn as wnn
from conftest import rel_err

warnings.filterwarnings("ignore", message="Level value")
PTW_MODES = ["zero", "symmetric", "reflect", "periodic", "periodization"]


@pytest.mark.parametrize("mode", PTW_MODES)
@pytest.mark.parametrize("wave", ["db1", "db3", "bior2.2"])
def test_dwt_layers_match_pytorch_wavelets(mode, wave, float64_reference):
    # 36x42 keeps every level's padded length >= the filter: below that pytorch_wavelets'
    # periodization is wrong (contract 3.2) and its reflect raises.
    x = torch.randn(2, 3, 36, 42)
    ours, theirs = wnn.DWTForward(J=3, wave=wave, mode=mode), ptw.DWTForward(J=3, wave=wave,
                                                                              mode=mode)
    (yl, yh), (rl, rh) = ours(x), theirs(x)
    assert yl.shape == rl.shape and rel_err(yl, rl) < 1e-12
    for a, b in zip(yh, rh):
        assert a.shape == b.shape and rel_err(a, b) < 1e-12
    xr = wnn.DWTInverse(wave=wave, mode=mode)((yl, yh))
    rr = ptw.DWTInverse(wave=wave, mode=mode)((rl, rh))
    assert xr.shape == rr.shape and rel_err(xr, rr) < 1e-12


@pytest.mark.parametrize("mode", PTW_MODES)
def test_dwt1d_layers_match_pytorch_wavelets(mode, float64_reference):
    x = torch.randn(2, 3, 61)
    (yl, yh), (rl, rh) = (wnn.DWT1DForward(J=2, wave="sym4", mode=mode)(x),
                          ptw.DWT1DForward(J=2, wave="sym4", mode=mode)(x))
    assert rel_err(yl, rl) < 1e-12 and all(rel_err(a, b) < 1e-12 for a, b in zip(yh, rh))
    xr = wnn.DWT1DInverse(wave="sym4", mode=mode)((yl, yh))
    rr = ptw.DWT1DInverse(wave="sym4", mode=mode)((rl, rh))
    assert rel_err(xr, rr) < 1e-12


def test_periodization_of_short_signals_follows_pywt_not_pytorch_wavelets():
    """pytorch_wavelets wraps only once when the padded signal is shorter than the filter."""
    x = torch.randn(1, 1, 5, 5, dtype=torch.float64)
    yl, yh = wnn.DWTForward(J=1, wave="db4", mode="periodization")(x)
    ref = pywt.wavedec2(x.numpy(), "db4", mode="periodization", level=1)
    assert rel_err(yl, ref[0]) < 1e-12


def test_tuple_filters_follow_their_names(float64_reference):
    """(h0_col, h1_col, h0_row, h1_row): *_col filter the columns (height axis)."""
    col, row = pywt.Wavelet("db2"), pywt.Wavelet("haar")
    x = torch.randn(1, 2, 20, 17)
    yl, yh = wnn.DWTForward(J=1, wave=(col.dec_lo, col.dec_hi, row.dec_lo, row.dec_hi),
                            mode="symmetric")(x)
    ref = pywt.wavedec2(x.numpy(), (col, row), mode="symmetric", level=1)
    assert rel_err(yl, ref[0]) < 1e-12
    assert rel_err(yh[0], np.stack(ref[1], 2)) < 1e-12
    xr = wnn.DWTInverse(wave=(col.rec_lo, col.rec_hi, row.rec_lo, row.rec_hi),
                        mode="symmetric")((yl, yh))
    assert rel_err(xr[..., :20, :17], x) < 1e-12
    two = wnn.DWT1DForward(J=1, wave=(col.dec_lo, col.dec_hi), mode="zero")
    assert rel_err(two(x[:, :, 0])[0], pywt.wavedec(x[:, :, 0].numpy(), col, "zero", level=1)[0]) \
        < 1e-12


def test_none_bands_are_zeros():
    x = torch.randn(1, 2, 32, 32, dtype=torch.float64)
    yl, yh = wnn.DWTForward(J=3, wave="db2", mode="symmetric")(x)
    inv = wnn.DWTInverse(wave="db2", mode="symmetric")
    expected = inv((yl, [yh[0], torch.zeros_like(yh[1]), yh[2]]))
    assert torch.equal(inv((yl, [yh[0], None, yh[2]])), expected)


def test_modules_pickle_copy_and_keep_no_parameters():
    layer = wnn.DWTForward(J=2, wave="db2", mode="reflect")
    x = torch.randn(1, 1, 16, 16)
    for clone in (pickle.loads(pickle.dumps(layer)), copy.deepcopy(layer)):
        assert torch.equal(clone(x)[0], layer(x)[0])
    assert list(layer.parameters()) == [] and list(layer.buffers()) == []
    assert "wave=db2" in repr(layer)
