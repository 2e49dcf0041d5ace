"""Bad input gets a clear error naming the problem and the accepted values; awkward but
valid input (non-contiguous, channels-last, empty batches) works."""
import sys

import numpy as np
import pytest
import pywt
import torch

import wavegen
from wavegen.backends import host


def test_unknown_wavelet_lists_the_accepted_ones():
    with pytest.raises(ValueError, match=r"unknown wavelet 'db99'.*haar.*sym4"):
        wavegen.Spec("dwt2d", "db99", 1, "zero")


def test_unknown_mode_and_kind():
    with pytest.raises(ValueError, match=r"unknown mode 'mirror'.*symmetric.*periodization"):
        wavegen.Spec("dwt2d", "db2", 1, "mirror")
    with pytest.raises(ValueError, match=r"unknown transform kind 'dwt3d'.*dwt1d"):
        wavegen.Spec("dwt3d", "db2", 1, "zero")


def test_levels_must_be_a_positive_integer():
    with pytest.raises(ValueError, match="levels must be >= 1"):
        wavegen.Spec("dwt1d", "db2", 0)
    with pytest.raises(TypeError, match="levels must be an integer"):
        wavegen.Spec("dwt1d", "db2", 1.5)


def test_wrong_ndim_and_dtype():
    t = wavegen.build(wavegen.Spec("dwt2d", "db2", 1, "zero"))
    with pytest.raises(ValueError, match=r"4-D tensor \(N, C, H, W\); got shape \(3, 8, 8\)"):
        t(torch.randn(3, 8, 8))
    with pytest.raises(TypeError, match="torch.int64.*float32, torch.float64, torch.float16 and torch.bfloat16"):
        t(torch.ones(1, 1, 8, 8, dtype=torch.int64))
    with pytest.raises(TypeError, match="complex64"):
        t(torch.randn(1, 1, 8, 8, dtype=torch.complex64))
    with pytest.raises(TypeError, match="must be a torch.Tensor"):
        t(np.zeros((1, 1, 8, 8)))
    t1 = wavegen.build(wavegen.Spec("dwt1d", "db2", 1, "zero"))
    with pytest.raises(ValueError, match=r"3-D tensor \(N, C, L\)"):
        t1(torch.randn(2, 8))


def test_too_few_samples_for_the_levels_says_what_pywt_allows():
    t = wavegen.build(wavegen.Spec("dwt2d", "haar", 5, "reflect"))
    x = torch.randn(1, 1, 12, 12)        # 12 -> 6 -> 3 -> 2 -> 1: level 5 reflects 1 sample
    with pytest.raises(ValueError, match=r"too short for 5 levels.*dwt_max_level .* is 3"):
        t(x)
    with pytest.raises(ValueError):       # pywt refuses the same input
        pywt.wavedec2(x.numpy(), "haar", mode="reflect", level=5)


def test_mismatched_inverse_coefficients_name_the_level():
    t = wavegen.build(wavegen.Spec("dwt2d", "db2", 3, "symmetric"))
    yl, yh = t(torch.randn(1, 2, 32, 32))
    inv = t.inverse()
    # sizes 32 -> 17 -> 10 -> 6; level 3 reconstructs 10 rows, which 7 cannot take
    with pytest.raises(ValueError, match=r"level 2: the reconstruction of level 3 has size "
                                         r"\(10, 10\), the details have size \(7, 7\)"):
        inv(yl, [yh[0], torch.randn(1, 2, 3, 7, 7), yh[2]])
    with pytest.raises(ValueError, match="at level 3: the lowpass"):
        inv(torch.randn(1, 2, 12, 12), yh)
    with pytest.raises(ValueError, match="yh has 2 levels but the transform has 3"):
        inv(yl, yh[:2])
    with pytest.raises(ValueError, match="3 bands"):
        inv(yl, [yh[0][:, :, :2], *yh[1:]])
    with pytest.raises(ValueError, match="batch/channels"):
        inv(yl, [yh[0][:, :1], *yh[1:]])


def test_filter_bank_errors():
    with pytest.raises(ValueError, match="same length"):
        wavegen.Spec("dwt1d", ([1, 1], [1, -1], [1, 1, 1, 1], [1, -1, 1, -1]))
    with pytest.raises(ValueError, match="needs synthesis filters"):
        wavegen.Spec("idwt1d", ([0.7, 0.7], [0.7, -0.7]))
    with pytest.raises(ValueError, match="non-finite"):
        wavegen.Spec("dwt1d", ([np.nan, 1], [1, -1]))


def test_cuda_tensor_without_cupy_says_how_to_install(monkeypatch):
    from wavegen.backends import cuda
    monkeypatch.setitem(sys.modules, "cupy", None)
    with pytest.raises(RuntimeError, match=r"pip install wavegen\[cuda12\]"):
        cuda.cupy()


def test_failed_compile_leaves_no_cache_entry(tmp_path, monkeypatch):
    monkeypatch.setenv("WAVEGEN_CACHE_DIR", str(tmp_path))

    def broken(target, emulation_mode, src, out):
        raise RuntimeError("compiler exploded")

    monkeypatch.setattr(host, "compile_library", broken)
    t = wavegen.transform.Transform(wavegen.Spec("dwt1d", "db3", 1, "periodic"))
    with pytest.raises(RuntimeError, match="compiler exploded"):
        t.module("cpu", "float32", torch.device("cpu")).ensure_all()
    assert list(tmp_path.iterdir()) == []


def test_non_contiguous_channels_last_and_empty_batches_work():
    t = wavegen.build(wavegen.Spec("dwt2d", "db3", 2, "symmetric"))
    x = torch.randn(2, 3, 20, 24, dtype=torch.float64)
    ref_l, ref_h = t(x)
    for variant in (x.to(memory_format=torch.channels_last),
                    x.transpose(2, 3).contiguous().transpose(2, 3),
                    torch.randn(2, 3, 20, 48, dtype=torch.float64)[..., ::2].copy_(x)):
        yl, yh = t(variant)
        assert torch.equal(yl, ref_l) and all(torch.equal(a, b) for a, b in zip(yh, ref_h))
    yl, yh = t(torch.randn(0, 3, 20, 24))
    assert yl.shape == (0, 3, 8, 9) and yh[0].shape == (0, 3, 3, 12, 14)
    assert t.inverse()(yl, yh).shape == (0, 3, 20, 24)


# -- DTCWT ----------------------------------------------------------------------------------

def test_dtcwt_unknown_filter_names_list_the_valid_ones():
    with pytest.raises(ValueError, match=r"unknown biort filters 'near_sym_c'.*antonini.*"
                                         r"near_sym_b_bp"):
        wavegen.Spec("dtcwt2d", biort="near_sym_c", levels=2)
    with pytest.raises(ValueError, match=r"unknown qshift filters 'qshift_e'.*qshift_06.*"
                                         r"qshift_b_bp"):
        wavegen.nn.DTCWTForward(qshift="qshift_e")
    with pytest.raises(ValueError, match=r"unknown DTCWT mode 'reflect'.*symmetric, zero"):
        wavegen.nn.DTCWTForward(mode="reflect")


def test_dtcwt_custom_filters_are_validated():
    with pytest.raises(ValueError, match="biort filter h0o must have odd length and be "
                                         "symmetric"):
        wavegen.Spec("dtcwt2d", biort=([1.0, 2.0], [1.0, -1.0, 1.0]), levels=1)
    h = np.random.rand(10)
    with pytest.raises(ValueError, match="qshift filter h0b must be the reverse of h0a"):
        wavegen.Spec("dtcwt2d", qshift=(h, np.random.rand(10), h[::-1], h[::-1]), levels=2)
    with pytest.raises(ValueError, match=r"a qshift tuple has 8 or 12 filters"):
        wavegen.Spec("dtcwt2d", qshift=(h, h[::-1], h), levels=2)


def test_dtcwt_too_small_says_the_minimum():
    t = wavegen.nn.DTCWTForward(J=4)
    with pytest.raises(ValueError, match=r"\(8, 40\) is too small for a 4-level DTCWT: each "
                                         r"side must be at least 9.*at most 3 level"):
        t(torch.randn(1, 1, 8, 40))


def test_dtcwt_malformed_coefficients_name_the_level_and_shape():
    fwd, inv = wavegen.nn.DTCWTForward(J=3), wavegen.nn.DTCWTInverse()
    yl, yh = fwd(torch.randn(1, 2, 32, 40))
    with pytest.raises(ValueError, match=r"yh\[1\] \(level 2\) has shape \(1, 2, 5, 8, 10, 2\)"
                                         r".*\(N, C, 6, h, w, 2\)"):
        inv((yl, [yh[0], yh[1][:, :, :5], yh[2]]))
    with pytest.raises(ValueError, match=r"level 2 has \(8, 11\) and level 1 has \(16, 20\)"):
        inv((yl, [yh[0], torch.randn(1, 2, 6, 8, 11, 2), yh[2]]))
    with pytest.raises(ValueError, match=r"lowpass has size \(8, 12\).*level 3\) have size "
                                         r"\(4, 5\)"):
        inv((torch.randn(1, 2, 8, 12), yh))
    with pytest.raises(ValueError, match=r"yh\[0\] is torch.float64.*expected torch.float32"):
        inv((yl, [yh[0].double(), yh[1], yh[2]]))
    with pytest.raises(ValueError, match="o_dim and ri_dim must be different"):
        wavegen.nn.DTCWTInverse(o_dim=2, ri_dim=2)
    with pytest.raises(ValueError, match="skip_hps must be a bool or a list of one bool per "
                                         "level"):
        wavegen.nn.DTCWTForward(J=3, skip_hps=[True, False])
