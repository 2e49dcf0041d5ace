"""The real CUDA target, wherever a GPU and CuPy are present (marked `gpu`): against the
CPU target and PyWavelets, on large and odd shapes, forward, inverse and gradients."""
import warnings

import pytest
import pywt
import torch

import wavegen
from wavegen.spec import MODES
from conftest import rel_err

pytestmark = pytest.mark.gpu
warnings.filterwarnings("ignore", message="Level value")


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_cuda_matches_cpu_target_large_odd(mode, dtype):
    x = torch.randn(4, 3, 257, 383, dtype=dtype)
    t = wavegen.build(wavegen.Spec("dwt2d", "db4", 4, mode))
    cpu_l, cpu_h = t(x)
    gpu_l, gpu_h = t(x.cuda())
    tol = 1e-12 if dtype == torch.float64 else 1e-5
    assert rel_err(gpu_l.cpu(), cpu_l) < tol
    for a, b in zip(gpu_h, cpu_h):
        assert rel_err(a.cpu(), b) < tol
    xr = t.inverse()(gpu_l, gpu_h)
    assert rel_err(xr.cpu(), t.inverse()(cpu_l, cpu_h)) < tol


def test_cuda_matches_pywt_and_gradients_are_adjoint():
    x = torch.randn(2, 2, 61, 77, dtype=torch.float64)
    t = wavegen.build(wavegen.Spec("dwt2d", "sym5", 3, "antireflect"))
    yl, yh = t(x.cuda())
    ref = pywt.wavedec2(x.numpy(), "sym5", mode="antireflect", level=3)
    assert rel_err(yl.cpu(), ref[0]) < 1e-12
    xg = x.cuda().requires_grad_()
    yl, yh = t(xg)
    gl, gh = torch.randn_like(yl), [torch.randn_like(h) for h in yh]
    torch.autograd.backward([yl, *yh], [gl, *gh])
    expected = t.adjoint()(gl.cpu(), [g.cpu() for g in gh], signal_size=(61, 77))
    assert rel_err(xg.grad.cpu(), expected) < 1e-12


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
    assert rel_err(yl.cpu(), ref_l) < 1e-5


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("kw", [dict(biort="near_sym_b", qshift="qshift_b"),
                                dict(biort="near_sym_b_bp", qshift="qshift_b_bp", mode="zero",
                                     o_dim=1, ri_dim=2, skip_hps=[False, True, False, False])])
def test_cuda_dtcwt_matches_cpu_target_large_odd(kw, dtype):
    """The tiled analysis and adjoint kernels on the device, against
    the CPU target (itself tested against dtcwt): forward, inverse and both gradients."""
    t = wavegen.build(wavegen.Spec("dtcwt2d", levels=4, **kw))
    x = torch.randn(3, 5, 257, 190, dtype=dtype)
    tol = 1e-12 if dtype == torch.float64 else 1e-5
    cpu_l, cpu_h = t(x)
    xg = x.cuda().requires_grad_()
    gpu_l, gpu_h = t(xg)
    assert rel_err(gpu_l.detach().cpu(), cpu_l) < tol
    for a, b in zip(gpu_h, cpu_h):
        assert rel_err(a.detach().cpu(), b) < tol
    gl, gh = torch.randn_like(cpu_l), [torch.randn_like(h) if h.dim() else h for h in cpu_h]
    torch.autograd.backward([gpu_l] + [h for h in gpu_h if h.dim()],
                            [gl.cuda()] + [g.cuda() for g in gh if g.dim()])
    assert rel_err(xg.grad.cpu(), t.adjoint()(gl, gh, signal_size=(257, 190))) < tol
    inv = t.inverse()
    assert rel_err(inv(gl.cuda(), [g.cuda() for g in gh]).cpu(), inv(gl, gh)) < tol


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("kw", [dict(biort="near_sym_a", qshift="qshift_a", mode="zero"),
                                dict(biort="near_sym_b_bp", qshift=None, magbias=0.0)])
def test_cuda_scatter_matches_cpu_target(kw, dtype):
    """The fused scattering stages and their backward on the device, against the CPU
    target (itself tested against pytorch_wavelets and dtcwt)."""
    t = wavegen.build(wavegen.Spec("scatter2d", levels=2, order=2, **kw))
    x = torch.randn(3, 5, 131, 94, dtype=dtype)
    tol = 1e-12 if dtype == torch.float64 else 1e-5
    xc, xg = x.clone().requires_grad_(), x.cuda().requires_grad_()
    zc, zg = t(xc), t(xg)
    assert rel_err(zg.detach().cpu(), zc.detach()) < tol
    g = torch.randn_like(zc)
    zc.backward(g)
    zg.backward(g.cuda())
    assert rel_err(xg.grad.cpu(), xc.grad) < tol
