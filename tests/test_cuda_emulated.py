"""The generated CUDA source, executed on the CPU by the emulation header (blocks in turn,
threads as fibers), against PyWavelets and against the CPU target. Outputs start as NaN,
so an element no thread writes fails the comparison. NVRTC compiles the same sources
(conftest), so CI checks every CUDA kernel both ways without a GPU."""
import warnings

import numpy as np
import pytest
import pywt
import torch

import wavegen
from wavegen import emulation
from wavegen.spec import MODES
from bounds import DwtBounds, assert_within
from test_adjoint import gradcheck_atol

warnings.filterwarnings("ignore", message="Level value")
TWO_F64 = [(torch.float64, 2)]


@pytest.mark.parametrize("mode", MODES)
def test_emulated_cuda_dwt2d_matches_pywt(mode):
    x = torch.randn(2, 2, 13, 10, dtype=torch.float64)
    t = wavegen.build(wavegen.Spec("dwt2d", "db3", 2, mode), target="cuda_emulated")
    yl, yh = t(x)
    ref = pywt.wavedec2(x.numpy(), "db3", mode=mode, level=2)
    bounds = DwtBounds(x.numpy(), "db3", mode, 2, x.dtype, 2)
    low, details = bounds.forward()
    assert_within(yl, ref[0], low, "yl")
    for j in range(2):
        assert_within(yh[j], np.stack(ref[-1 - j], 2), details[j], f"yh[{j}]")
    xr = t.inverse()(yl, yh)
    assert_within(xr, pywt.waverec2(ref, "db3", mode=mode), bounds.inverse(), "inverse")


@pytest.mark.parametrize("wavelet, mode, shape, dtype, tiles", [
    # level 1: 38 x 71 coefficients, 3 x 2 analysis tiles of 16 x 64, partial at the ends;
    # the adjoint's 3 x 3 tiles of 32 x 64 over x include one away from both ends
    ("db2", "periodization", (1, 2, 75, 141), torch.float64, ((16, 64), (32, 64))),
    # a wavelet and a mode per axis, float32
    (("sym3", "haar"), ("periodic", "reflect"), (2, 1, 35, 140), torch.float32,
     ((16, 64), (32, 64))),
    # 102 taps: the float64 tile fits SHARED_BYTES at 8 x 32, the adjoint's not at all
    ("coif17", "antisymmetric", (1, 1, 24, 40), torch.float64, ((8, 32), None))], ids=str)
@pytest.mark.parametrize("emulation_mode", ["plain",
                                            pytest.param("checked", marks=pytest.mark.sanitize)])
def test_emulated_fused_level_over_several_tiles(wavelet, mode, shape, dtype, tiles,
                                                 emulation_mode):
    """A fused 2-D level (plan.FusedLevelKernel: one launch, the first pass's rows in shared
    memory) over several tiles each way, partial at the ends, from a strided view of x,
    against PyWavelets; its adjoint and the inverse (fused adjoint levels) against the
    CPU target and PyWavelets. Checked (-m sanitize): no read of shared memory a partial
    tile left unwritten, no race, no access outside the tensors."""
    with emulation.using(emulation_mode):
        _fused_level_over_several_tiles(wavelet, mode, shape, dtype, tiles)


def _fused_level_over_several_tiles(wavelet, mode, shape, dtype, tiles):
    spec = wavegen.Spec("dwt2d", wavelet, 2, mode)
    t = wavegen.build(spec, target="cuda_emulated")
    assert list(t.plan.kernels) == ["wg_analysis_hw"]
    kernel = t.plan.level_kernel
    adjoint = kernel.transposed()
    assert (kernel.cuda_tile, adjoint.cuda_tile if adjoint.fuses else None) == tiles
    for other in (t.adjoint(), t.inverse()):
        assert list(other.plan.kernels) == (["wg_adjoint_hw"] if adjoint.fuses else
                                            ["wg_adjoint_h", "wg_adjoint_w"])
    x = torch.randn(*shape[:2], shape[3], shape[2], dtype=dtype).transpose(2, 3)
    yl, yh = t(x)
    for tile, extent in [(kernel.cuda_tile, yh[0].shape[-2:]), (tiles[1], shape[2:])]:
        if tile is not None:  # several tiles each way, the last partial
            assert all(n > size and n % size for n, size in zip(extent, tile)), (extent, tile)
    x64 = x.double().numpy()
    pywt_wavelet = wavelet if isinstance(wavelet, str) else [pywt.Wavelet(w) for w in wavelet]
    ref = pywt.wavedec2(x64, pywt_wavelet, mode=mode, level=2)
    bounds = DwtBounds(x64, wavelet, mode, 2, dtype, 2)
    low, details = bounds.forward()
    assert_within(yl, ref[0], low, "yl")
    for j in range(2):
        assert_within(yh[j], np.stack(ref[-1 - j], 2), details[j], f"yh[{j}]")
    assert_within(t.inverse()(yl, yh), pywt.waverec2(ref, pywt_wavelet, mode=mode),
                  bounds.inverse(), "inverse")
    gl, gh = torch.randn_like(yl), [torch.randn_like(h) for h in yh]
    a = t.adjoint()(gl, gh, signal_size=shape[2:])
    b = wavegen.build(spec).adjoint()(gl, gh, signal_size=shape[2:])
    evaluations = [(dtype, 2)]
    assert_within(a, b.double().numpy(), bounds.adjoint(gl.double().numpy(),
                                                        [g.double().numpy() for g in gh],
                                                        evaluations), "adjoint")


@pytest.mark.parametrize("mode", MODES)
def test_emulated_cuda_adjoints_match_cpu_target(mode):
    """The CUDA adjoint kernels (gather-form fold) against the CPU ones (scatter-form fold)
    of the same plan, in every mode; and the adjoint of synthesis (analysis kernels)."""
    spec = wavegen.Spec("dwt2d", "sym4", 2, mode)
    emulated = wavegen.build(spec, target="cuda_emulated")
    cpu = wavegen.build(spec)
    x = torch.randn(1, 3, 11, 14, dtype=torch.float64)
    yl, yh = cpu(x)
    gl, gh = torch.randn_like(yl), [torch.randn_like(h) for h in yh]
    a = emulated.adjoint()(gl, gh, signal_size=(11, 14))
    b = cpu.adjoint()(gl, gh, signal_size=(11, 14))
    bounds = DwtBounds(x.numpy(), "sym4", mode, 2, x.dtype, 2)
    assert_within(a, b.numpy(), bounds.adjoint(gl.numpy(), [g.numpy() for g in gh], TWO_F64),
                  "adjoint")
    xr = cpu.inverse()(yl, yh)
    r = torch.randn_like(xr)
    (el, eh), (cl, ch) = emulated.inverse().adjoint()(r), cpu.inverse().adjoint()(r)
    low, details = bounds.synthesis_adjoint(r.numpy(), TWO_F64)
    for u, v, bound in zip([el, *eh], [cl, *ch], [low, *details]):
        assert_within(u, v.numpy(), bound, "adjoint of the inverse")


def test_emulated_cuda_1d_float32_and_gradients():
    t = wavegen.build(wavegen.Spec("dwt1d", "coif2", 3, "reflect"), target="cuda_emulated")
    x = torch.randn(3, 2, 45, dtype=torch.float32)
    yl, yh = t(x)
    ref = pywt.wavedec(x.double().numpy(), "coif2", mode="reflect", level=3)
    assert_within(yl, ref[0], DwtBounds(x.double().numpy(), "coif2", "reflect", 3, x.dtype,
                                        1).forward()[0], "yl")
    xg = torch.randn(1, 1, 19, dtype=torch.float64, requires_grad=True)
    low, details = DwtBounds(xg.detach().abs().numpy() + 1e-6, "coif2", "reflect", 3,
                             xg.dtype, 1).forward([(torch.float64, 1)])
    largest = max(float(b.max()) for b in [low, *details])
    assert torch.autograd.gradcheck(lambda x: (t(x)[0], *t(x)[1]), (xg,), rtol=0,
                                    atol=gradcheck_atol(largest))


def test_emulation_runs_block_barriers():
    """__syncthreads and __shared__ keep their meaning: a block reverses its elements
    through shared memory, which is only right if every thread stores before any loads."""
    from pathlib import Path
    import ctypes
    import tempfile
    from wavegen.backends import host
    from wavegen.render import templates_dir

    source = (templates_dir() / "cuda_emu.h").read_text() + r'''
extern "C" __global__ void reverse(const float* in, float* out) {
  __shared__ float tile[64];
  const unsigned i = blockIdx.x * blockDim.x + threadIdx.x;
  tile[threadIdx.x] = in[i];
  __syncthreads();
  out[i] = tile[blockDim.x - 1 - threadIdx.x];
}
extern "C" void run(const float* in, float* out) {
  wg_emu::launch(dim3(3), dim3(64), [&] { reverse(in, out); });
}
'''
    with tempfile.TemporaryDirectory() as tmp:
        src, lib = Path(tmp) / "k.cpp", Path(tmp) / "k.so"
        src.write_text(source)
        host.compile_library("cuda_emulated", "plain", src, lib)
        fn = ctypes.CDLL(str(lib)).run
        x = torch.randn(192)
        out = torch.full_like(x, float("nan"))
        fn(ctypes.c_void_p(x.data_ptr()), ctypes.c_void_p(out.data_ptr()))
    assert torch.equal(out, x.reshape(3, 64).flip(1).reshape(-1))
