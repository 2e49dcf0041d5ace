"""The real CUDA target, wherever a GPU and CuPy are present (marked `gpu`): against the
CPU target and PyWavelets, on large and odd shapes, forward, inverse and gradients, within
the bounds of tests/bounds.py for the two evaluations compared."""
import warnings

import numpy as np
import pytest
import pywt
import torch

import wavegen
from wavegen.spec import MODES
from bounds import DtcwtBounds, DwtBounds, assert_within
from test_scatter import bounds_for, paths_of

pytestmark = pytest.mark.gpu
warnings.filterwarnings("ignore", message="Level value")


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_cuda_matches_cpu_target_large_odd(mode, dtype):
    x = torch.randn(4, 3, 257, 383, dtype=dtype)
    t = wavegen.build(wavegen.Spec("dwt2d", "db4", 4, mode))
    cpu_l, cpu_h = t(x)
    gpu_l, gpu_h = t(x.cuda())
    both = [(dtype, 2)]
    bounds = DwtBounds(x.double().numpy(), "db4", mode, 4, dtype, 2)
    low, details = bounds.forward(both)
    assert_within(gpu_l.cpu(), cpu_l.double().numpy(), low, "yl")
    for j, (a, b) in enumerate(zip(gpu_h, cpu_h)):
        assert_within(a.cpu(), b.double().numpy(), details[j], f"yh[{j}]")
    xr = t.inverse()(gpu_l, gpu_h)
    assert_within(xr.cpu(), t.inverse()(cpu_l, cpu_h).double().numpy(), bounds.inverse(both),
                  "inverse")


def test_cuda_matches_pywt_and_gradients_are_adjoint():
    x = torch.randn(2, 2, 61, 77, dtype=torch.float64)
    t = wavegen.build(wavegen.Spec("dwt2d", "sym5", 3, "antireflect"))
    yl, yh = t(x.cuda())
    ref = pywt.wavedec2(x.numpy(), "sym5", mode="antireflect", level=3)
    bounds = DwtBounds(x.numpy(), "sym5", "antireflect", 3, x.dtype, 2)
    assert_within(yl.cpu(), ref[0], bounds.forward()[0], "yl")
    xg = x.cuda().requires_grad_()
    yl, yh = t(xg)
    gl, gh = torch.randn_like(yl), [torch.randn_like(h) for h in yh]
    torch.autograd.backward([yl, *yh], [gl, *gh])
    expected = t.adjoint()(gl.cpu(), [g.cpu() for g in gh], signal_size=(61, 77))
    assert_within(xg.grad.cpu(), expected.numpy(),
                  bounds.adjoint(gl.cpu().numpy(), [g.cpu().numpy() for g in gh],
                                 [(torch.float64, 2)]), "gradient")


def test_cuda_many_planes_and_current_stream():
    """100,000 planes in one launch (planes on the grid's x dimension), on a side stream."""
    t = wavegen.build(wavegen.Spec("dwt1d", "db2", 1, "zero"))
    x = torch.randn(100_000, 1, 16, device="cuda")
    stream = torch.cuda.Stream()
    stream.wait_stream(torch.cuda.current_stream())     # x was made on the default stream
    with torch.cuda.stream(stream):
        yl, yh = t(x)
    stream.synchronize()
    ref_l, _ = t(x.cpu())
    bound = DwtBounds(x.cpu().double().numpy(), "db2", "zero", 1, x.dtype, 1).forward(
        [(torch.float32, 2)])[0]
    assert_within(yl.cpu(), ref_l.double().numpy(), bound, "yl")


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("kw", [dict(biort="near_sym_b", qshift="qshift_b"),
                                dict(biort="near_sym_b_bp", qshift="qshift_b_bp", mode="zero",
                                     o_dim=1, ri_dim=2, skip_hps=[False, True, False, False])])
def test_cuda_dtcwt_matches_cpu_target_large_odd(kw, dtype):
    """The tiled analysis and adjoint kernels on the device, against
    the CPU target (itself tested against dtcwt): forward, inverse and both gradients."""
    s = wavegen.Spec("dtcwt2d", levels=4, **kw)
    t = wavegen.build(s)
    x = torch.randn(3, 5, 257, 190, dtype=dtype)
    both = [(dtype, 2)]
    bounds = DtcwtBounds(x.double().numpy(), s.biort, s.qshift, 4, mode=s.mode)
    cpu_l, cpu_h = t(x)
    xg = x.cuda().requires_grad_()
    gpu_l, gpu_h = t(xg)
    assert_within(gpu_l.detach().cpu(), cpu_l.double().numpy(), bounds.forward(both)[0], "yl")
    for a, b in zip(gpu_h, cpu_h):          # layouts vary: the bands' largest bound
        assert float((a.detach().cpu() - b).abs().max()) <= bounds.largest(both)
    gl, gh = torch.randn_like(cpu_l), [torch.randn_like(h) if h.dim() else h for h in cpu_h]
    torch.autograd.backward([gpu_l] + [h for h in gpu_h if h.dim()],
                            [gl.cuda()] + [g.cuda() for g in gh if g.dim()])
    default = [g.movedim((s.o_dim, s.ri_dim), (2, 5)).double().numpy() if g.dim() else
               np.zeros(bounds.layout(bounds.coefficients[j], "magnitude").shape)
               for j, g in enumerate(gh)]
    assert_within(xg.grad.cpu(), t.adjoint()(gl, gh, signal_size=(257, 190)).double().numpy(),
                  bounds.gradient(gl.double().numpy(), default, both), "gradient")
    inv = t.inverse()
    assert_within(inv(gl.cuda(), [g.cuda() for g in gh]).cpu(), inv(gl, gh).double().numpy(),
                  bounds.synthesis_of(gl.double().numpy(),
                                      [None if not g.dim() else d for g, d in zip(gh, default)],
                                      both), "inverse")


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("kw", [dict(biort="near_sym_a", qshift="qshift_a", mode="zero"),
                                dict(biort="near_sym_b_bp", qshift=None, magbias=0.0)])
def test_cuda_scatter_matches_cpu_target(kw, dtype):
    """The fused scattering stages and their backward on the device, against the CPU
    target (itself tested against pytorch_wavelets and dtcwt)."""
    s = wavegen.Spec("scatter2d", levels=2, order=2, **kw)
    t = wavegen.build(s)
    x = torch.randn(3, 5, 131, 94, dtype=dtype)
    bounds = bounds_for(s, x.double(), [(dtype, 2)])
    xc, xg = x.clone().requires_grad_(), x.cuda().requires_grad_()
    zc, zg = t(xc), t(xg)
    assert_within(zg.detach().cpu(), zc.detach().double().numpy(), bounds.output(paths_of(s)),
                  "values")
    g = torch.randn_like(zc)
    zc.backward(g)
    zg.backward(g.cuda())
    assert_within(xg.grad.cpu(), xc.grad.double().numpy(),
                  bounds.gradient(g.double(), paths_of(s)), "gradients")


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_cuda_half_storage_and_autocast(dtype):
    """2-byte storage on the device, against float64 on the same values within the bounds of
    tests/bounds.py (as test_half holds the CPU targets), and autocast on CUDA as for
    convolutions: float32 CUDA inputs run in the autocast dtype, bit for bit the call on
    converted inputs."""
    x = torch.randn(2, 3, 61, 77).to(dtype)
    x64 = x.double()
    both = [(dtype, 1), (torch.float64, 1)]
    dwt = wavegen.build(wavegen.Spec("dwt2d", "db4", 3, "symmetric"))
    yl, yh = dwt(x.cuda())
    low, details = DwtBounds(x64.numpy(), "db4", "symmetric", 3, dtype, 2).forward(both)
    exact_l, exact_h = dwt(x64)
    assert yl.dtype == dtype
    assert_within(yl.cpu(), exact_l.numpy(), low, "dwt yl")
    for j, (a, b) in enumerate(zip(yh, exact_h)):
        assert_within(a.cpu(), b.numpy(), details[j], f"dwt yh[{j}]")
    dtcwt = wavegen.build(wavegen.Spec("dtcwt2d", levels=3, biort="near_sym_b",
                                       qshift="qshift_b"))
    yl, yh = dtcwt(x.cuda())
    low, bands = DtcwtBounds(x64.numpy(), "near_sym_b", "qshift_b", 3).forward(both)
    exact_l, exact_h = dtcwt(x64)
    assert_within(yl.cpu(), exact_l.numpy(), low, "dtcwt yl")
    for j, (a, b) in enumerate(zip(yh, exact_h)):
        assert_within(a.cpu(), b.numpy(), bands[j], f"dtcwt yh[{j}]")
    x32 = torch.randn(2, 3, 61, 77, device="cuda")
    for t in (dwt, dtcwt):
        with torch.autocast("cuda", dtype=dtype):
            yl, yh = t(x32)
        expected, _ = t(x32.to(dtype))
        assert yl.dtype == dtype and torch.equal(yl, expected)
