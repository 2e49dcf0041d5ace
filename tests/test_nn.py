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
import wavegen
from wavegen import nn as wnn
from bounds import DwtBounds, assert_within

warnings.filterwarnings("ignore", message="Level value")
PTW_MODES = ["zero", "symmetric", "reflect", "periodic", "periodization"]


@pytest.mark.parametrize("mode", PTW_MODES)
@pytest.mark.parametrize("wave", ["db1", "db3", "bior2.2"])
def test_dwt_layers_match_pytorch_wavelets(mode, wave, float64_reference):
    # 36x42 keeps every level's padded length >= the filter: below that pytorch_wavelets'
    # periodization is wrong (contract 3.2) and its reflect raises.
    # pytorch_wavelets' float64 convolutions sum the same products as PyWavelets, so the
    # bound derived from PyWavelets' operators holds for it too.
    x = torch.randn(2, 3, 36, 42)
    ours, theirs = wnn.DWTForward(J=3, wave=wave, mode=mode), ptw.DWTForward(J=3, wave=wave,
                                                                              mode=mode)
    (yl, yh), (rl, rh) = ours(x), theirs(x)
    bounds = DwtBounds(x.numpy(), wave, mode, 3, x.dtype, 2)
    low, details = bounds.forward()
    assert_within(yl, rl, low, "yl")
    for j, (a, b) in enumerate(zip(yh, rh)):
        assert_within(a, b, details[j], f"yh[{j}]")
    xr = wnn.DWTInverse(wave=wave, mode=mode)((yl, yh))
    rr = ptw.DWTInverse(wave=wave, mode=mode)((rl, rh))
    assert_within(xr, rr, bounds.inverse(), "inverse")


@pytest.mark.parametrize("mode", PTW_MODES)
def test_dwt1d_layers_match_pytorch_wavelets(mode, float64_reference):
    x = torch.randn(2, 3, 61)
    (yl, yh), (rl, rh) = (wnn.DWT1DForward(J=2, wave="sym4", mode=mode)(x),
                          ptw.DWT1DForward(J=2, wave="sym4", mode=mode)(x))
    bounds = DwtBounds(x.numpy(), "sym4", mode, 2, x.dtype, 1)
    low, details = bounds.forward()
    assert_within(yl, rl, low, "yl")
    for j, (a, b) in enumerate(zip(yh, rh)):
        assert_within(a, b, details[j], f"yh[{j}]")
    xr = wnn.DWT1DInverse(wave="sym4", mode=mode)((yl, yh))
    rr = ptw.DWT1DInverse(wave="sym4", mode=mode)((rl, rh))
    assert_within(xr, rr, bounds.inverse(), "inverse")


def test_periodization_of_short_signals_follows_pywt_not_pytorch_wavelets():
    """pytorch_wavelets wraps only once when the padded signal is shorter than the filter."""
    x = torch.randn(1, 1, 5, 5, dtype=torch.float64)
    yl, yh = wnn.DWTForward(J=1, wave="db4", mode="periodization")(x)
    ref = pywt.wavedec2(x.numpy(), "db4", mode="periodization", level=1)
    assert_within(yl, ref[0], DwtBounds(x.numpy(), "db4", "periodization", 1, x.dtype,
                                        2).forward()[0], "yl")


def test_tuple_filters_follow_their_names(float64_reference):
    """(h0_col, h1_col, h0_row, h1_row): *_col filter the columns (height axis)."""
    col, row = pywt.Wavelet("db2"), pywt.Wavelet("haar")
    x = torch.randn(1, 2, 20, 17)
    yl, yh = wnn.DWTForward(J=1, wave=(col.dec_lo, col.dec_hi, row.dec_lo, row.dec_hi),
                            mode="symmetric")(x)
    ref = pywt.wavedec2(x.numpy(), (col, row), mode="symmetric", level=1)
    bounds = DwtBounds(x.numpy(), (col, row), "symmetric", 1, x.dtype, 2)
    low, details = bounds.forward()
    assert_within(yl, ref[0], low, "yl")
    assert_within(yh[0], np.stack(ref[1], 2), details[0], "yh[0]")
    xr = wnn.DWTInverse(wave=(col.rec_lo, col.rec_hi, row.rec_lo, row.rec_hi),
                        mode="symmetric")((yl, yh))
    assert_within(xr[..., :20, :17], x, bounds.reconstruction(), "round trip")
    two = wnn.DWT1DForward(J=1, wave=(col.dec_lo, col.dec_hi), mode="zero")
    line = x[:, :, 0]
    assert_within(two(line)[0], pywt.wavedec(line.numpy(), col, "zero", level=1)[0],
                  DwtBounds(line.numpy(), col, "zero", 1, x.dtype, 1).forward()[0], "1-D")


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


# -- migrating from pytorch_wavelets ---------------------------------------------------------

CHECKPOINT_LAYERS = [
    ("DWTForward", dict(J=2, wave="db3", mode="symmetric")),
    ("DWTForward", dict(J=1, wave=(pywt.Wavelet("db2").dec_lo, pywt.Wavelet("db2").dec_hi,
                                   pywt.Wavelet("haar").dec_lo, pywt.Wavelet("haar").dec_hi))),
    ("DWT1DForward", dict(J=2, wave="sym4")), ("DWTInverse", dict(wave="bior2.2")),
    ("DWT1DInverse", dict(wave="coif1")),
    ("DTCWTForward", dict(biort="near_sym_b", qshift="qshift_b", J=2)),
    ("DTCWTInverse", dict(biort="legall", qshift="qshift_c")),
    ("ScatLayer", dict(biort="near_sym_b_bp")), ("ScatLayerj2", dict()),
    ("ScatLayerj2", dict(biort="near_sym_b_bp", qshift="qshift_b_bp", combine_colour=True)),
]


@pytest.mark.parametrize("name,kw", CHECKPOINT_LAYERS)
def test_pytorch_wavelets_checkpoints_load_strictly(name, kw):
    """A state dict of the pytorch_wavelets layer with the same arguments (its filter
    buffers and parameters, float32 as it makes them, or converted to float64) loads into
    ours with strict=True; the filters are checked, then dropped."""
    theirs = getattr(ptw, name)(**kw)
    for state in (theirs.state_dict(), theirs.double().state_dict()):
        ours = getattr(wnn, name)(**kw)
        assert state, "pytorch_wavelets keeps its filters in the state dict"
        assert str(ours.load_state_dict(state, strict=True)) == "<All keys matched successfully>"
        assert ours.state_dict() == {}


def test_a_checkpoint_with_other_filters_is_an_error():
    state = ptw.ScatLayerj2(biort="near_sym_b", qshift="qshift_b").state_dict()
    with pytest.raises(RuntimeError, match=r"h0o: the checkpoint's filter is not the one this "
                                           r"ScatLayerj2 \(biort=near_sym_a.*expected"):
        wnn.ScatLayerj2().load_state_dict(state)
    state = ptw.DWTForward(J=1, wave="db3").state_dict()
    with pytest.raises(RuntimeError, match="h0_col: the checkpoint's filter"):
        wnn.DWTForward(J=1, wave="coif1").load_state_dict(state)    # as long, other taps
    bad = dict(ptw.DWT1DForward(J=1, wave="db2").state_dict(), h0=torch.ones(4))
    with pytest.raises(RuntimeError, match="h0: the checkpoint's filter"):
        wnn.DWT1DForward(J=1, wave="db2").load_state_dict(bad)


def small_model(scattering, conv):
    torch.manual_seed(conv)
    return torch.nn.Sequential(scattering, torch.nn.Conv2d(3 * 49, 8, 3, padding=1),
                               torch.nn.ReLU(), torch.nn.Conv2d(8, 2, 1))


def test_a_trained_pytorch_wavelets_model_migrates(float64_reference):
    """A ScatLayerj2 + convolutions model trained a few steps with pytorch_wavelets and
    saved, rebuilt with wavegen's layers (the import changed), loads its checkpoint
    strictly and gives the same outputs at 28x28, 30x30 and 32x32: the scattering
    coefficients within their derived bound, which the convolutions (row sums of their
    weights) and ReLU (1-Lipschitz) carry to the output."""
    import io
    from bounds import ScatterBounds, gamma
    from test_scatter import ptw_padding
    model = small_model(ptw.ScatLayerj2(), 7)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    for _ in range(3):
        x = torch.randn(4, 3, 32, 32)
        loss = model(x).square().mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    saved = io.BytesIO()
    torch.save(model.state_dict(), saved)
    saved.seek(0)
    migrated = small_model(wnn.ScatLayerj2(), 11)
    migrated.load_state_dict(torch.load(saved), strict=True)
    spec = migrated[0].spec
    paths = wavegen.build(spec).plan.paths
    conv1, conv2 = migrated[1], migrated[3]
    with torch.no_grad():
        for size in (28, 30, 32):
            x = torch.randn(2, 3, size, size)
            ours, theirs = migrated[0](x), model[0](x)
            pad = (ptw_padding(size, 2),) * 2
            bound = ScatterBounds(x, 2, 2, spec.biort, spec.qshift, spec.mode, spec.magbias,
                                  [(torch.float64, 2)], pad).output(paths)
            assert_within(ours, theirs.numpy(), bound, f"{size}: scattering")
            # A convolution output sums 147 * 9 (then 8) products and the bias: its own
            # rounding in both models, plus its inputs' difference through |weights|.
            bound = float(np.max(bound))
            for layer, products in ((conv1, 147 * 9), (conv2, 8)):
                gain = float(layer.weight.abs().sum((1, 2, 3)).max())
                bound = gain * bound + 2 * gamma(products + 1, torch.float64) * \
                    (gain * float(ours.abs().max()) + float(layer.bias.abs().max()))
                ours, theirs = layer(ours), layer(theirs)
                assert float((ours - theirs).abs().max()) <= bound, (size, layer)
                if layer is conv1:
                    ours, theirs = ours.relu(), theirs.relu()
            assert torch.equal(migrated(x), ours) and model(x).shape == ours.shape


def test_zero_levels_is_the_identity():
    x = torch.randn(1, 2, 8, 8)
    yl, yh = wnn.DWTForward(J=0)(x)
    assert yl is x and yh == []
    yl, yh = wnn.DWT1DForward(J=0)(x[:, :, 0])
    assert yh == []
    yl, yh = wnn.DTCWTForward(J=0)(x)
    assert yl is x and yh == []
    with pytest.raises(ValueError, match="J must be an integer >= 0"):
        wnn.DWTForward(J=-1)
    with pytest.raises(ValueError, match="levels must be >= 1.*identity"):
        wavegen.Spec("dwt2d", "db2", 0)


def test_inverse_without_lowpass_or_details():
    """yl=None: zeros of the coarsest detail's size; an empty yh returns yl; one tensor
    instead of (yl, yh) says so."""
    x = torch.randn(1, 2, 32, 30, dtype=torch.float64)
    yl, yh = wnn.DWTForward(J=3, wave="db2", mode="symmetric")(x)
    inv = wnn.DWTInverse(wave="db2", mode="symmetric")
    assert torch.equal(inv((None, yh)), inv((torch.zeros_like(yl), yh)))
    assert inv((yl, [])) is yl
    with pytest.raises(TypeError, match=r"coeffs = \(yl, yh\).*got a tensor of shape"):
        inv(yl)
    with pytest.raises(TypeError, match=r"coeffs = \(yl, yh\).*got a tensor of shape \(8, 8\)"):
        wnn.DTCWTInverse()(torch.randn(8, 8))
    with pytest.raises(TypeError, match="synthesis takes .*got one tensor of shape"):
        wavegen.build(wavegen.Spec("idwt2d", "db2", 3, "symmetric"))(yl)
    line = wnn.DWT1DInverse(wave="db2")
    yl1, yh1 = wnn.DWT1DForward(J=2, wave="db2")(x[:, :, 0])
    assert torch.equal(line((None, yh1)), line((torch.zeros_like(yl1), yh1)))


def test_levels_beyond_the_maximum_warn_only_on_the_pywavelets_path(recwarn):
    """pytorch_wavelets' layers never warn about levels beyond dwt_max_level; the
    PyWavelets-shaped build path warns as pywt does, at the caller's line."""
    import warnings
    x = torch.randn(1, 1, 40, 40)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        wnn.DWTForward(J=3, wave="db4")(x)
        wnn.DWT1DForward(J=4, wave="db4")(x[:, :, 0])
    assert caught == []
    with pytest.warns(UserWarning, match="Level value of 3 is too high") as record:
        wavegen.build(wavegen.Spec("dwt2d", "db4", 3))(x)
    assert record[0].filename == __file__


def test_unknown_names_suggest_the_closest():
    with pytest.raises(ValueError, match=r"unknown wavelet 'db99' \(did you mean 'db9'"):
        wnn.DWTForward(wave="db99")
    with pytest.raises(ValueError, match="'morl' is a continuous wavelet.*pywt.cwt"):
        wnn.DWTForward(wave="morl")
    with pytest.raises(ValueError, match=r"unknown biort filters 'near_sym_c' \(did you mean "
                                         r"'near_sym_b'"):
        wnn.ScatLayer(biort="near_sym_c")
    with pytest.raises(ValueError, match=r"unknown qshift filters 'qshift_e' \(did you mean"):
        wnn.DTCWTForward(qshift="qshift_e")
