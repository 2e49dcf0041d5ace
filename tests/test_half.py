"""Half precision: float16 and bfloat16 tensors, stored in their type and summed in float32,
against float64 references of the same (2-byte) values, within bounds derived per stage
(tests/bounds.py: a float32 sum and two roundings to storage). Autocast as PyTorch's
convolutions."""
import warnings

import numpy as np
import pytest
import pywt
import torch

import wavegen
from wavegen.spec import MODES
from bounds import DtcwtBounds, DwtBounds, assert_within
from test_functional import quiet
from test_scatter import bounds_for, paths_of

HALF = [torch.float16, torch.bfloat16]
TARGETS = [None, "cuda_emulated"]


def check(kind, x, wavelet, mode, levels, target):
    """Forward against PyWavelets on x's own values, the inverse of the 2-byte coefficients
    against PyWavelets' inverse of the same values, the round trip against x, and the
    gradient against the float64 adjoint of the same 2-byte output gradients."""
    ndim = 2 if kind == "dwt2d" else 1
    dec, rec = (pywt.wavedec2, pywt.waverec2) if ndim == 2 else (pywt.wavedec, pywt.waverec)
    t = wavegen.build(wavegen.Spec(kind, wavelet, levels, mode), target)
    x = x.requires_grad_()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yl, yh = t(x)
        bounds = DwtBounds(x.detach().double().numpy(), wavelet, mode, levels, x.dtype, ndim)
    ref = quiet(dec, x.detach().double().numpy(), wavelet, mode=mode, level=levels)
    low, details = bounds.forward()
    assert yl.dtype == x.dtype and all(h.dtype == x.dtype for h in yh)
    assert_within(yl, ref[0], low, "yl")
    for j in range(levels):
        band = np.stack(ref[-1 - j], axis=2) if ndim == 2 else ref[-1 - j]
        assert_within(yh[j], band, details[j], f"yh[{j}]")

    both = [(x.dtype, 1), (torch.float64, 1)]
    coefficients = [yl.detach()] + [h.detach() for h in yh]
    xr = t.inverse()(coefficients[0], coefficients[1:])
    assert xr.dtype == x.dtype
    as_pywt = [c.double().numpy() for c in coefficients[:1]] + \
        [tuple(np.moveaxis(c.double().numpy(), 2, 0)) if ndim == 2 else c.double().numpy()
         for c in reversed(coefficients[1:])]
    assert_within(xr, quiet(rec, as_pywt, wavelet, mode=mode),
                  bounds.synthesis_of(coefficients[0].double(),
                                      [c.double() for c in coefficients[1:]], both), "inverse")
    crop = (Ellipsis, *(slice(0, n) for n in x.shape[-ndim:]))
    assert_within(xr[crop], x.detach().double().numpy(), bounds.reconstruction(),
                  "round trip")

    grads = [torch.randn_like(yl)] + [torch.randn_like(h) for h in yh]
    torch.autograd.backward([yl, *yh], grads)
    assert x.grad.dtype == x.dtype
    exact = quiet(wavegen.build(wavegen.Spec(kind, wavelet, levels, mode).adjoint()),
                  grads[0].double(), [g.double() for g in grads[1:]],
                  signal_size=x.shape[-ndim:] if ndim == 2 else x.shape[-1])
    assert_within(x.grad, exact.numpy(), bounds.adjoint(
        grads[0].double().numpy(), [g.double().numpy() for g in grads[1:]], both), "gradient")


@pytest.mark.parametrize("target", TARGETS)
@pytest.mark.parametrize("dtype", HALF)
@pytest.mark.parametrize("mode", ["symmetric", "smooth", "periodization", "zero",
                                  "antireflect"])
def test_dwt2d_half(mode, dtype, target):
    x = torch.randn(2, 3, 29, 40).to(dtype)
    check("dwt2d", x, "db3", mode, 3, target)


@pytest.mark.parametrize("dtype", HALF)
@pytest.mark.parametrize("mode", MODES)
def test_dwt1d_half_every_mode(mode, dtype):
    for target in TARGETS:
        check("dwt1d", torch.randn(2, 2, 45).to(dtype), "sym4", mode, 3, target)


def test_float16_keeps_small_values():
    """Values near float16's subnormal range: the bound's floor (half the smallest
    subnormal per rounding to storage) holds, and nothing flushes to zero wrongly."""
    x = (torch.randn(1, 2, 20, 24) * 2.0 ** -14).to(torch.float16)
    check("dwt2d", x, "db2", "symmetric", 2, None)


@pytest.mark.parametrize("target", TARGETS)
def test_autocast_runs_the_dwt_in_the_autocast_dtype(target):
    """As a convolution under autocast: float32 inputs run in the autocast dtype (the same
    result as converting first), float64 stays float64, the gradient reaches the float32
    input in float32."""
    t = wavegen.build(wavegen.Spec("dwt2d", "db2", 2, "symmetric"), target)
    x = torch.randn(2, 3, 16, 18, requires_grad=True)
    for dtype in HALF:
        with torch.autocast("cpu", dtype=dtype):
            yl, yh = t(x)
            y64, _ = t(x.detach().double())
            xr = t.inverse()(yl.float(), [h.float() for h in yh])
        expected_yl, expected_yh = t(x.detach().to(dtype))
        assert yl.dtype == dtype and torch.equal(yl, expected_yl)
        assert all(torch.equal(a, b) for a, b in zip(yh, expected_yh))
        assert y64.dtype == torch.float64 and xr.dtype == dtype
        x.grad = None
        yl.float().sum().backward()
        assert x.grad.dtype == torch.float32


@pytest.mark.parametrize("dtype", HALF)
@pytest.mark.parametrize("biort,qshift,mode,target", [
    ("near_sym_b", "qshift_b", "symmetric", None), ("near_sym_b", "qshift_b", "zero", None),
    pytest.param("legall", "qshift_a", "zero", None, marks=pytest.mark.slow),
    ("near_sym_b", "qshift_b", "symmetric", "cuda_emulated")])
def test_dtcwt_half(biort, qshift, mode, target, dtype):
    """The DTCWT of 2-byte x against the float64 DTCWT of the same values (float64 is held
    to the dtcwt package in test_dtcwt), the inverse of the 2-byte coefficients against the
    float64 inverse of the same values, and the gradient likewise."""
    x = torch.randn(2, 3, 29, 26).to(dtype).requires_grad_()
    t = wavegen.build(wavegen.Spec("dtcwt2d", levels=3, biort=biort, qshift=qshift,
                                   mode=mode), target)
    yl, yh = t(x)
    yl64, yh64 = t(x.detach().double())
    assert yl.dtype == dtype and all(b.dtype == dtype for b in yh)
    bounds = DtcwtBounds(x.detach().double().numpy(), biort, qshift, 3, mode=mode)
    both = [(dtype, 1), (torch.float64, 1)]
    low, bands = bounds.forward(both)
    assert_within(yl, yl64.numpy(), low, "yl")
    for j, (a, b) in enumerate(zip(yh, yh64)):
        assert_within(a, b.numpy(), bands[j], f"yh[{j}]")
    coefficients = [yl.detach()] + [b.detach() for b in yh]
    xr = t.inverse()(coefficients[0], coefficients[1:])
    assert xr.dtype == dtype
    assert_within(xr, t.inverse()(coefficients[0].double(),
                                  [b.double() for b in coefficients[1:]]).numpy(),
                  bounds.synthesis_of(coefficients[0].double().numpy(),
                                      [b.double().numpy() for b in coefficients[1:]], both),
                  "inverse")
    gl, gh = torch.randn_like(yl), [torch.randn_like(b) for b in yh]
    torch.autograd.backward([yl, *yh], [gl, *gh])
    assert x.grad.dtype == dtype
    expected = t.adjoint()(gl.double(), [g.double() for g in gh], signal_size=(29, 26))
    assert_within(x.grad, expected.numpy(), bounds.gradient(
        gl.double().numpy(), [g.double().numpy() for g in gh], both), "gradient")


@pytest.mark.parametrize("dtype", HALF)
def test_dtcwt_half_band_layouts_round_alike(dtype):
    """The CPU stores 2-byte band rows by one of three paths, by layout (rows of float
    converted at once where the values fill the row: orientation-major (N, C, 6, h, w, 2)
    and (N, C, 6, h, 2, w); element by element otherwise, (N, C, 6, 2, h, w)): every path
    rounds each value once, so all give the same bits."""
    x = torch.randn(2, 3, 21, 18).to(dtype)
    bands = {}
    for ri_dim in (5, 4, 3):
        t = wavegen.build(wavegen.Spec("dtcwt2d", levels=2, biort="near_sym_b",
                                       qshift="qshift_b", o_dim=2, ri_dim=ri_dim))
        yl, yh = t(x)
        bands[ri_dim] = [yl] + [h.movedim(ri_dim, -1) for h in yh]
    for ri_dim in (4, 3):
        assert all(torch.equal(a, b) for a, b in zip(bands[5], bands[ri_dim])), ri_dim


@pytest.mark.parametrize("dtype", HALF)
@pytest.mark.parametrize("layer,target", [pytest.param("ScatLayer", None, marks=pytest.mark.slow),
                                          ("ScatLayerj2", None),
                                          ("ScatLayerj2", "cuda_emulated")])
def test_scattering_half(layer, target, dtype):
    """The scattering network of 2-byte x against the float64 network of the same values,
    outputs and gradients (the bound includes the phase's conditioning near the origin)."""
    from wavegen import nn
    spec = getattr(nn, layer)(magbias=1e-2).spec
    network = wavegen.build(spec, target)
    x = torch.randn(2, 3, 30, 34).to(dtype).requires_grad_()
    x64 = x.detach().double().requires_grad_()
    z, z64 = network(x), network(x64)
    assert z.dtype == dtype
    bounds = bounds_for(spec, x64.detach(), [(dtype, 1), (torch.float64, 1)])
    paths = paths_of(spec)
    assert_within(z, z64.detach().numpy(), bounds.output(paths), "values")
    g = torch.randn_like(z)
    grad, = torch.autograd.grad(z, x, g)
    expected, = torch.autograd.grad(z64, x64, g.double())
    assert grad.dtype == dtype
    assert_within(grad, expected.numpy(), bounds.gradient(g.double(), paths), "gradients")


@pytest.mark.parametrize("dtype", HALF)
def test_autocast_runs_the_dtcwt_and_scattering_in_the_autocast_dtype(dtype):
    from wavegen.nn import DTCWTForward, ScatLayerj2
    x = torch.randn(2, 3, 16, 16)
    # test_dtcwt_half's filters: their 2-byte kernels are compiled once for both tests.
    for layer in (DTCWTForward(J=2, biort="near_sym_b", qshift="qshift_b"), ScatLayerj2()):
        with torch.autocast("cpu", dtype=dtype):
            cast = layer(x)
        expected = layer(x.to(dtype))
        cast, expected = (cast[0], expected[0]) if isinstance(cast, tuple) else \
            (cast, expected)
        assert cast.dtype == dtype and torch.equal(cast, expected)


@pytest.mark.parametrize("flags", [[], ["-mf16c"]])
@pytest.mark.parametrize("dtype", HALF)
def test_storage_conversions_are_torchs(dtype, flags, tmp_path):
    """The rendered storage types convert as torch does (round to nearest even, subnormals,
    overflow to infinity, NaN), element by element and by the rows of wg_convert (the
    CPU's conversion instructions with -mf16c): every 2-byte pattern up, and random float
    bit patterns plus the boundaries down."""
    import ctypes
    import subprocess
    from wavegen import render
    from wavegen.backends import host
    storage = render.DTYPES[{torch.float16: "float16", torch.bfloat16: "bfloat16"}[dtype]][0]
    env = render._environment()
    header = env.get_template("storage.h.j2").render(storage=storage) + \
        env.get_template("host_rows.h").render()
    src = tmp_path / "convert.cpp"
    src.write_text("#define WG_FN static inline\ntypedef long long wg_int;\n" + header + f"""
extern "C" void down(const float* x, unsigned short* y, wg_int n) {{
  for (wg_int i = 0; i < n; ++i) {{ {storage} s; s = x[i]; y[i] = s.bits; }}
}}
extern "C" void up(const unsigned short* x, float* y, wg_int n) {{
  for (wg_int i = 0; i < n; ++i) {{ {storage} s; s.bits = x[i]; y[i] = s; }}
}}
extern "C" void down_row(const float* x, {storage}* y, wg_int n) {{ wg_convert(y, x, n); }}
extern "C" void up_row(const {storage}* x, float* y, wg_int n) {{ wg_convert(y, x, n); }}
""")
    library = tmp_path / "convert.so"
    subprocess.run([host.compiler(), "-O2", "-std=c++17", "-fPIC", "-shared", *flags,
                    str(src), "-o", str(library)], check=True)
    lib = ctypes.CDLL(str(library))

    def call(name, x, out_dtype):
        out = torch.empty(x.shape, dtype=out_dtype)
        getattr(lib, name)(ctypes.c_void_p(x.data_ptr()), ctypes.c_void_p(out.data_ptr()),
                           ctypes.c_longlong(x.numel()))
        return out

    patterns = torch.arange(65536, dtype=torch.int32).to(torch.int16)
    expected = patterns.view(dtype).float()
    for name in ("up", "up_row"):
        got = call(name, patterns, torch.float32)
        same = (got.view(torch.int32) == expected.view(torch.int32)) | \
            (got.isnan() & expected.isnan())
        assert bool(same.all()), f"{name}: {int((~same).sum())} patterns differ"

    finfo = torch.finfo(dtype)
    edges = torch.tensor([0.0, -0.0, finfo.max, finfo.tiny, finfo.smallest_normal / 2 ** 10,
                          float("inf"), -float("inf"), float("nan"), 65519.996, 65520.0,
                          2.0 ** -25, 2.0 ** -24 * 1.5, 1.0 + 2.0 ** -11, 1.0 + 3 * 2.0 ** -11])
    floats = torch.cat([torch.randint(-2 ** 31, 2 ** 31 - 1, (1 << 20,),
                                      dtype=torch.int32).view(torch.float32), edges])
    expected = floats.to(dtype).view(torch.int16)
    for name in ("down", "down_row"):
        got = call(name, floats, torch.int16)
        same = (got == expected) | (got.view(dtype).isnan() & expected.view(dtype).isnan())
        assert bool(same.all()), f"{name}: {int((~same).sum())} values differ, e.g. " \
            f"{floats[~same][:4].tolist()}"
