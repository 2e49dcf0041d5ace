"""Filter banks of tensors (run-time taps, taps.py): values against PyWavelets and the
compiled-in taps, gradients with respect to inputs and taps together (gradcheck and
gradgradcheck in float64, every mode), deterministic tap gradients, no recompiles when the
taps change, learnable layers, the loss terms that keep a bank a wavelet, and the errors."""
import json
import os
import subprocess
import sys
import warnings
from pathlib import Path

import pytest
import pywt
import torch

import wavegen
import wavegen.functional as F
from wavegen import nn as wnn
from wavegen.spec import MODES
from wavegen.taps import (TapsTransform, TensorFilterBank, orthogonality_error,
                          reconstruction_error)
from test_functional import check, sweep

ROOT = Path(__file__).resolve().parents[1]
warnings.filterwarnings("ignore", message="Level value")


@pytest.mark.slow
@pytest.mark.parametrize("chunk", range(6))
def test_banks_of_tensors_match_pywt_every_wavelet(chunk):
    """The functional sweep (every sixth wavelet per chunk, rotating modes, sizes, axes and
    levels; 2-D for every fourth wavelet) with each wavelet given as its bank of tensors
    (by default, test_run_time_taps_equal_the_compiled_taps holds them to the compiled
    transforms, which the default sweep holds to PyWavelets)."""
    sweep(chunk, lambda i: i % 4 == 0, banks=True)


@pytest.mark.parametrize("mode", ["smooth", "periodization"])
def test_banks_of_tensors_match_pywt(mode):
    """wavedec/waverec and wavedec2/waverec2 on a bank of tensors against PyWavelets,
    within the derived bounds, on odd sizes and inner axes."""
    bank = TensorFilterBank.from_wavelet("bior3.5", dtype=torch.float64)
    check(torch.randn(3, 29, 2, dtype=torch.float64), "bior3.5", mode, None, 1, bank)
    check(torch.randn(21, 2, 18, dtype=torch.float64), "bior3.5", mode, 2, (0, 2), bank)


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("ndim", [1, 2])
def test_run_time_taps_equal_the_compiled_taps(mode, ndim):
    """The same arithmetic with the taps read at run time: bit for bit the compiled
    transform, forward and inverse, float32, on the CPU target."""
    kind = "dwt2d" if ndim == 2 else "dwt1d"
    x = torch.randn(2, 3, *((19, 22) if ndim == 2 else (37,)))
    baked = wavegen.build(wavegen.Spec(kind, "sym4", 2, mode))
    bank = TensorFilterBank.from_wavelet("sym4")
    yl, yh = TapsTransform(kind, bank.length, 2, mode, bank=bank)(x)
    expected_l, expected_h = baked(x)
    assert torch.equal(yl, expected_l)
    assert all(torch.equal(a, b) for a, b in zip(yh, expected_h))
    assert torch.equal(TapsTransform("i" + kind, bank.length, 2, mode, bank=bank)(yl, yh),
                       baked.inverse()(expected_l, expected_h))


def _gradcheck(kind, mode, target=None, double=False):
    ndim = 2 if kind.endswith("2d") else 1
    bank = [f.double().requires_grad_() for f in TensorFilterBank.from_wavelet("db2")]
    size = (7, 6) if ndim == 2 else (9,)
    if kind.startswith("i"):
        forward = TapsTransform(kind[1:], 4, 2, mode)
        yl, yh = forward(torch.randn(1, 2, *size, dtype=torch.float64),
                         bank=TensorFilterBank(*[f.detach() for f in bank]))
        inputs = [yl.requires_grad_(), *(h.requires_grad_() for h in yh)]

        def run(*args):
            return TapsTransform(kind, 4, 2, mode, target)(
                args[0], list(args[1:-4]), bank=TensorFilterBank(*args[-4:]))
    else:
        inputs = [torch.randn(1, 2, *size, dtype=torch.float64, requires_grad=True)]

        def run(*args):
            yl, yh = TapsTransform(kind, 4, 2, mode, target)(
                args[0], bank=TensorFilterBank(*args[-4:]))
            return (yl, *yh)
    check = torch.autograd.gradgradcheck if double else torch.autograd.gradcheck
    assert check(run, (*inputs, *bank))


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("kind", ["dwt1d", "dwt2d", "idwt1d", "idwt2d"])
def test_tap_gradients_gradcheck_every_mode(kind, mode):
    """Inputs and the four filters together, two levels (so that a level's taps meet the
    previous level's output), float64."""
    _gradcheck(kind, mode)


@pytest.mark.parametrize("kind,mode", [("dwt2d", "smooth"), ("idwt1d", "periodization")])
def test_tap_gradients_double_backward(kind, mode):
    _gradcheck(kind, mode, double=True)


@pytest.mark.parametrize("kind", ["dwt2d", pytest.param("idwt2d", marks=pytest.mark.slow)])
def test_tap_gradients_on_the_emulated_cuda_target(kind):
    """The three CUDA kernels (analysis, adjoint, tap gradient) with run-time taps, run by
    the emulation (the analysis's gradcheck runs all three; the inverse's with -m slow)."""
    _gradcheck(kind, "antireflect", target="cuda_emulated")


@pytest.mark.parametrize("target", [None, "cuda_emulated"])
def test_tap_gradients_are_deterministic(target):
    """Tap gradients are sums per line, then a sum over lines in a fixed order: the same
    inputs give the same bits, run after run (enough lines that the CPU runs threads)."""
    x = torch.randn(8, 3, 96, 96) if target is None else torch.randn(2, 2, 24, 20)
    g = None
    for _ in range(3):
        bank = [f.requires_grad_() for f in TensorFilterBank.from_wavelet("db4")]
        yl, yh = TapsTransform("dwt2d", 8, 3, "symmetric", target)(
            x, bank=TensorFilterBank(*bank))
        loss = (yl * yl).sum() + sum((h * h.detach().sin()).sum() for h in yh)
        grads = torch.autograd.grad(loss, bank[:2])
        if g is not None:
            assert all(torch.equal(a, b) for a, b in zip(grads, g))
        g = grads


def test_changing_taps_never_recompiles(tmp_path):
    """A learnable layer trained for a few steps: the first step compiles its kernels, the
    others compile nothing, though every step has new taps (a fresh process and cache)."""
    script = """
import json, torch, wavegen
from wavegen import cache
fwd = wavegen.nn.DWTForward(J=2, wave="db2", mode="reflect", learnable=True)
inv = wavegen.nn.DWTInverse(wave="db2", mode="reflect", filters=fwd.filters)
opt = torch.optim.SGD(fwd.parameters(), lr=1e-3)
x = torch.randn(2, 3, 24, 20)
counts, taps = [], []
for step in range(4):
    opt.zero_grad()
    yl, yh = fwd(x)
    loss = sum(h.abs().mean() for h in yh) + (inv((yl, yh)) - x).pow(2).mean()
    loss.backward()
    opt.step()
    counts.append(cache.compiles)
    taps.append(fwd.filters.dec_lo.tolist())
print(json.dumps({"counts": counts, "distinct": len({tuple(t) for t in taps})}))
"""
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          env={**os.environ, "WAVEGEN_CACHE_DIR": str(tmp_path)}, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert result["counts"][0] > 0
    assert result["counts"] == [result["counts"][0]] * 4
    assert result["distinct"] == 4


def test_learnable_layers_hold_one_shareable_bank():
    fwd = wnn.DWTForward(J=2, wave="db3", mode="symmetric", learnable=True)
    inv = wnn.DWTInverse(wave="db3", mode="symmetric", filters=fwd.filters)
    assert [n for n, _ in fwd.named_parameters()] == \
        ["filters.dec_lo", "filters.dec_hi", "filters.rec_lo", "filters.rec_hi"]
    assert inv.filters is fwd.filters
    baked = wnn.DWTForward(J=2, wave="db3", mode="symmetric")
    assert not list(baked.parameters()) and not list(baked.buffers())
    x = torch.randn(2, 3, 20, 21)
    yl, yh = fwd(x)
    # Initialised from the wavelet: the compiled layer's values, bit for bit.
    assert torch.equal(yl, baked(x)[0]) and torch.equal(yh[1], baked(x)[1][1])
    # A float64 bank: the pair is a perfect reconstruction to float64 rounding.
    bank64 = wnn.FilterBankModule("db3", dtype=torch.float64)
    fwd64 = wnn.DWTForward(J=2, wave="db3", mode="symmetric", filters=bank64)
    inv64 = wnn.DWTInverse(wave="db3", mode="symmetric", filters=bank64)
    x64 = x.double()
    assert torch.allclose(inv64(fwd64(x64))[..., :20, :21], x64, rtol=0, atol=1e-12)
    loss = yl.pow(2).sum() + sum(h.abs().sum() for h in yh)
    loss.backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0
               for p in (fwd.filters.dec_lo, fwd.filters.dec_hi))
    one_d = wnn.DWT1DForward(J=1, wave="haar", learnable=True)
    z = torch.randn(2, 1, 16)
    # Each sample passes two float32-rounded taps and two roundings of the arithmetic.
    bound = 4 * torch.finfo(torch.float32).eps * z.abs().max()
    assert (wnn.DWT1DInverse(filters=one_d.filters)(one_d(z)) - z).abs().max() <= bound


def test_loss_terms_vanish_on_wavelets_and_not_on_perturbed_banks():
    """Perfect reconstruction and alias cancellation: zero for every PyWavelets wavelet but
    dmey, a FIR approximation, to the precision of PyWavelets' tables (some carry about 11
    significant digits: a squared error up to 1e-21, sym20); orthogonality: zero likewise
    for the orthogonal families, positive for the biorthogonal ones; both positive once a
    tap moves by 1e-3."""
    floor = 1e-20
    for name in pywt.wavelist(kind="discrete"):
        bank = TensorFilterBank.from_wavelet(name, dtype=torch.float64)
        if name != "dmey":
            assert reconstruction_error(bank) <= floor, name
        w = pywt.Wavelet(name)
        if w.orthogonal and name != "dmey":
            assert orthogonality_error(bank) <= floor, name
        elif not w.orthogonal and name not in ("bior1.1", "rbio1.1"):     # (Haar)
            assert orthogonality_error(bank) > 1e-6, name
        moved = bank._replace(dec_lo=bank.dec_lo + 1e-3 * torch.randn(bank.length,
                                                                      dtype=torch.float64))
        assert reconstruction_error(moved) > 1e-9, name
        if w.orthogonal:
            assert orthogonality_error(moved) > 1e-9, name
    # Differentiable: a step down the gradient of the error reduces it.
    bank = TensorFilterBank.from_wavelet("db4", dtype=torch.float64)
    moved = [f + 1e-2 * torch.randn_like(f) for f in bank]
    moved = [f.requires_grad_() for f in moved]
    error = reconstruction_error(moved) + orthogonality_error(moved)
    grads = torch.autograd.grad(error, moved)
    stepped = [f - 1e-2 * g for f, g in zip(moved, grads)]
    assert reconstruction_error(stepped) + orthogonality_error(stepped) < error


def test_bad_banks_are_named():
    x = torch.randn(1, 1, 16)
    db2 = TensorFilterBank.from_wavelet("db2")
    with pytest.raises(ValueError, match=r"one length .*'dec_lo': 4, 'dec_hi': 4, "
                                         r"'rec_lo': 4, 'rec_hi': 6"):
        F.wavedec(x, db2._replace(rec_hi=torch.randn(6)), "symmetric", 1)
    with pytest.raises(ValueError, match="filter dec_hi has non-finite taps"):
        F.dwt(x, db2._replace(dec_hi=torch.tensor([1.0, float("nan"), 0.0, 0.0])), "zero")
    with pytest.raises(ValueError, match=r"filter dec_lo is torch.float64 on cpu but the "
                                         r"signal is torch.float32 on cpu"):
        F.dwt(x, db2._replace(dec_lo=db2.dec_lo.double()), "zero")
    with pytest.raises(ValueError, match=r"filter rec_lo is torch.float32 on meta"):
        F.idwt(x, x, db2._replace(rec_lo=torch.empty(4, device="meta")), "zero")
    with pytest.raises(TypeError, match="four 1-D tensors"):
        F.dwt(x, (db2.dec_lo, db2.dec_hi), "zero")
    with pytest.raises(ValueError, match="requires grad, but a Spec compiles its taps in"):
        wnn.DWTForward(wave=tuple(f.requires_grad_() for f in db2))
    with pytest.raises(TypeError, match="FilterBankModule"):
        wnn.DWTInverse(filters=db2)
    # Learnable layers check their inputs as the compiled ones do.
    learned = wnn.DWTForward(J=1, wave="db2", learnable=True)
    with pytest.raises(ValueError, match=r"x must be a 4-D tensor \(N, C, H, W\)"):
        learned(torch.randn(8, 8))
    yl, yh = learned(torch.randn(1, 2, 8, 8))
    with pytest.raises(ValueError, match=r"yh\[0\] has batch/channels \(1, 1\)"):
        wnn.DWTInverse(wave="db2", filters=learned.filters)((yl, [yh[0][:, :1]]))


def test_learnable_layers_under_torch_compile_fullgraph():
    """One graph: the passes are ops with fake kernels. Forward values are the eager ones
    bit for bit (the torch ops between the kernels scale by powers of two); the taps'
    gradients sum the same per-pass terms, perhaps in another order: within a few float32
    roundings of their size."""
    class Model(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.fwd = wnn.DWTForward(J=2, wave="db2", mode="symmetric", learnable=True)
            self.inv = wnn.DWTInverse(wave="db2", mode="symmetric", filters=self.fwd.filters)

        def forward(self, x):
            yl, yh = self.fwd(x)
            return self.inv((yl * 2, [h * 0.5 for h in yh]))

    model = Model()
    compiled = torch.compile(model, fullgraph=True)
    x = torch.randn(2, 3, 16, 18)
    g = torch.randn(2, 3, 16, 18)
    out = compiled(x)
    grads = torch.autograd.grad(out, list(model.parameters()), g)
    expected = model(x)
    expected_grads = torch.autograd.grad(expected, list(model.parameters()), g)
    assert torch.equal(out, expected)
    eps = torch.finfo(torch.float32).eps
    for a, b in zip(grads, expected_grads):
        assert (a - b).abs().max() <= 16 * eps * b.abs().max()
