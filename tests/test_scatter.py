"""The DTCWT scattering network (scatter2d, ScatLayer, ScatLayerj2) and the magnitude op:
against pytorch_wavelets' layers, against the definition built from the dtcwt package,
gradients (gradcheck, pytorch_wavelets' backward), saved memory, emulated CUDA, errors."""
import dtcwt
import numpy as np
import pytest
import pytorch_wavelets as ptw
import torch

import wavegen
from conftest import rel_err
from test_dtcwt import zero_mode_reference
from wavegen.plan_scatter import path_key


def scatter(J, order=None, biort="near_sym_a", qshift="qshift_a", **kw):
    return wavegen.build(wavegen.Spec("scatter2d", levels=J, order=order or J, biort=biort,
                                      qshift=qshift, **kw))


def assert_same_values_and_gradients(ours, theirs, x, tol=1e-12):
    """ours(x) equals theirs(x), and so do their gradients for one random output gradient;
    returns ours(x)."""
    z, ref = ours(x), theirs(x)
    assert z.shape == ref.shape
    assert rel_err(z.detach(), ref.detach()) < tol
    g = torch.randn_like(ref)
    assert rel_err(torch.autograd.grad(z, x, g)[0], torch.autograd.grad(ref, x, g)[0]) < tol
    return z


def reference(x, J, order, biort, qshift, mode, b):
    """Every path's coefficients of one plane from the definition (plan_scatter): DTCWTs
    from the dtcwt package (or, for mode 'zero', dtcwt's algorithm on zero-padded arrays),
    magnitudes and 2x2 pooling in NumPy."""
    def dtcwt_of(a, levels):
        if mode == "zero":
            return zero_mode_reference(biort, qshift or "qshift_a", a, levels)
        p = dtcwt.Transform2d(biort=biort, qshift=qshift or "qshift_a").forward(a, levels)
        return p.lowpass, p.highpasses

    def pool(a):
        return (a[0::2, 0::2] + a[0::2, 1::2] + a[1::2, 0::2] + a[1::2, 1::2]) / 4

    def mag(z):
        return np.sqrt(np.abs(z) ** 2 + b * b) - b

    nodes = {} if qshift else {(): x}
    for s in range(J):
        nxt = {}
        for path, a in nodes.items():
            lo, hi = dtcwt_of(a, 1)
            nxt[path] = pool(lo)
            if len(path) < order:
                nxt.update({path + ((s + 1, o),): mag(hi[0][:, :, o]) for o in range(6)})
        if qshift:
            lo, hi = dtcwt_of(x, s + 1)
            nxt.update({((s + 1, o),): mag(hi[s][:, :, o]) for o in range(6)})
            if s + 1 == J:
                nxt[()] = pool(lo)
        nodes = nxt
    return np.stack([nodes[p] for p in sorted(nodes, key=path_key)])


def check_reference(t, x, J, order, biort, qshift, mode="symmetric", b=1e-2):
    z = t(x).detach().numpy()
    N, C = x.shape[:2]
    z = z.reshape(N, -1, C, *z.shape[-2:])
    for n in range(N):
        for c in range(C):
            ref = reference(x[n, c].numpy(), J, order, biort, qshift, mode, b)
            assert z.shape[1:2] + z.shape[3:] == ref.shape
            assert rel_err(z[n, :, c], ref) < 1e-12


@pytest.mark.parametrize("biort,mode,size", [("near_sym_a", "symmetric", (32, 40)),
                                             ("near_sym_b", "zero", (31, 21)),
                                             ("near_sym_b_bp", "symmetric", (17, 24))])
def test_scatlayer_matches_pytorch_wavelets(float64_reference, biort, mode, size):
    x = torch.randn(2, 3, *size)
    z = wavegen.nn.ScatLayer(biort=biort, mode=mode, magbias=1e-2)(x)
    ref = ptw.ScatLayer(biort=biort, mode=mode, magbias=1e-2)(x)
    assert z.shape == ref.shape == (2, 21, (size[0] + 1) // 2, (size[1] + 1) // 2)
    assert rel_err(z, ref) < 1e-12


@pytest.mark.parametrize("biort,qshift,b,size", [("near_sym_a", "qshift_a", 1e-2, (32, 40)),
                                                 ("near_sym_b", "qshift_b", 0.0, (24, 16)),
                                                 ("near_sym_b_bp", "qshift_b_bp", 0.1, (16, 24))])
def test_scatlayerj2_matches_pytorch_wavelets(float64_reference, biort, qshift, b, size):
    """Sizes that need no padding (multiples of 8); b = 0 is the plain magnitude."""
    x = torch.randn(2, 3, *size)
    z = wavegen.nn.ScatLayerj2(biort=biort, qshift=qshift, magbias=b)(x)
    ref = ptw.ScatLayerj2(biort=biort, qshift=qshift, magbias=b)(x)
    assert z.shape == ref.shape == (2, 147, size[0] // 4, size[1] // 4)
    assert rel_err(z, ref) < 1e-12


@pytest.mark.parametrize("layer,args,channels", [
    ("ScatLayer", ("near_sym_a",), 9), ("ScatLayerj2", ("near_sym_b_bp", "qshift_b_bp"), 51)])
def test_combine_colour_matches_pytorch_wavelets(float64_reference, layer, args, channels):
    """Colour-combined first order: values and gradients."""
    x = torch.randn(2, 3, 32, 40, requires_grad=True)
    z = assert_same_values_and_gradients(getattr(wavegen.nn, layer)(*args, combine_colour=True),
                                         getattr(ptw, layer)(*args, combine_colour=True), x)
    assert z.shape[1] == channels


def test_combine_colour_odd_sizes_and_gradcheck():
    """Sizes pytorch_wavelets cannot take follow the plain layer's size rule; gradcheck
    with b = 0 (the random input keeps away from the origin)."""
    x = torch.randn(1, 3, 19, 13, dtype=torch.float64, requires_grad=True)
    layer = wavegen.nn.ScatLayerj2(mode="zero", magbias=0.0, combine_colour=True)
    assert layer(x).shape[-2:] == wavegen.nn.ScatLayerj2()(x).shape[-2:] == (5, 4)
    assert torch.autograd.gradcheck(layer, (x,), eps=1e-6, atol=1e-8, fast_mode=True)


def test_gradients_match_pytorch_wavelets(float64_reference):
    x = torch.randn(2, 2, 24, 32, requires_grad=True)
    assert_same_values_and_gradients(wavegen.nn.ScatLayerj2(), ptw.ScatLayerj2(), x)


@pytest.mark.parametrize("J,order,qshift,mode,size", [
    (2, 2, "qshift_a", "symmetric", (29, 35)),     # odd, not multiples of 4 at scale 2
    (2, 2, "qshift_a", "zero", (26, 30)),          # ScatLayerj2 in zero mode
    (2, 2, None, "symmetric", (21, 16)),           # stacked: biorthogonal at every scale
    (2, 1, "qshift_a", "symmetric", (16, 18)),
    (3, 2, "qshift_a", "symmetric", (27, 20)),
])
def test_general_spec_matches_the_definition(J, order, qshift, mode, size):
    x = torch.randn(1, 2, *size, dtype=torch.float64)
    t = scatter(J, order, "near_sym_a", qshift, mode=mode)
    check_reference(t, x, J, order, "near_sym_a", qshift, mode)


@pytest.mark.parametrize("kw", [dict(J=1), dict(J=2, mode="zero", magbias=0.0),
                                dict(J=2, qshift=None, biort="near_sym_b_bp", magbias=0.1)])
def test_gradcheck(kw):
    """float64 gradcheck; with magbias 0 the random input keeps away from the origin."""
    t = scatter(**kw)
    x = torch.randn(1, 2, 11, 9, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(t, (x,), eps=1e-6, atol=1e-8, fast_mode=True)


@pytest.mark.parametrize("b", [0.0, 1e-2])
def test_float32_matches_float64(b):
    """float32 (where the CPU has AVX-512: estimated reciprocal square roots, wg_rsqrt)
    against float64, values and gradients. Odd sizes leave partial vectors; a zero block
    in the random image puts band values exactly at the origin (where, for b = 0, the
    gradient is the subgradient 0)."""
    layer = wavegen.nn.ScatLayerj2("near_sym_b", "qshift_b", magbias=b)
    x = torch.randn(2, 3, 75, 90, dtype=torch.float64)
    x[:, :, 8:56, 10:60] = 0
    x32 = x.float().requires_grad_()
    x64 = x.requires_grad_()
    z32, z64 = layer(x32), layer(x64)
    assert (z64 == 0).any()
    assert rel_err(z32.detach().double(), z64.detach()) < 1e-6
    g = torch.randn_like(z64)
    grad32, = torch.autograd.grad(z32, x32, g.float())
    grad64, = torch.autograd.grad(z64, x64, g)
    assert rel_err(grad32.double(), grad64) < 1e-5


def test_backward_saves_only_the_input():
    saved = []

    def pack(t):
        saved.append(t.numel() * t.element_size())
        return t

    x = torch.randn(2, 3, 32, 32, dtype=torch.float64, requires_grad=True)
    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        z = wavegen.nn.ScatLayerj2()(x)
    assert sum(saved) <= x.numel() * x.element_size()
    z.square().sum().backward()
    assert torch.isfinite(x.grad).all()


def test_emulated_cuda_matches_cpu_forward_and_backward():
    spec = wavegen.Spec("scatter2d", levels=2, order=2, biort="near_sym_b_bp",
                        qshift="qshift_b_bp", mode="zero", magbias=0.1)
    emulated, cpu = wavegen.build(spec, target="cuda_emulated"), wavegen.build(spec)
    x = torch.randn(1, 2, 19, 22, dtype=torch.float64, requires_grad=True)
    assert_same_values_and_gradients(emulated, cpu, x)


def test_torch_compile_fullgraph_trains():
    layer = torch.nn.Sequential(wavegen.nn.ScatLayer(), torch.nn.Conv2d(21, 4, 1))
    compiled = torch.compile(layer, fullgraph=True, backend="aot_eager")
    x = torch.randn(2, 3, 16, 16, requires_grad=True)
    compiled(x).square().sum().backward()
    expected = x.grad.clone()
    x.grad = None
    layer(x).square().sum().backward()
    assert rel_err(x.grad, expected) < 1e-5


def test_magnitude_op():
    re, im = torch.randn(2, 50, dtype=torch.float64), torch.randn(2, 50, dtype=torch.float64)
    assert rel_err(wavegen.magnitude(re, im), torch.complex(re, im).abs()) < 1e-15
    b = 0.3
    assert rel_err(wavegen.magnitude(re, im, b), torch.sqrt(re ** 2 + im ** 2 + b * b) - b) \
        < 1e-15
    for bias in (0.0, b):
        assert torch.autograd.gradcheck(lambda r, i: wavegen.magnitude(r, i, bias),
                                        (re.requires_grad_(), im.requires_grad_()))
    origin = torch.zeros(3, dtype=torch.float64, requires_grad=True)
    r, = torch.autograd.grad(wavegen.magnitude(origin, origin.detach()).sum(), origin)
    assert torch.equal(r, torch.zeros(3, dtype=torch.float64))   # the subgradient 0, no NaN
    # The magnitude of the vector along a dimension.
    re, im = re.detach(), im.detach()
    assert rel_err(wavegen.magnitude(re, im, b, dim=0),
                   torch.sqrt((re ** 2 + im ** 2).sum(0) + b * b) - b) < 1e-15
    assert torch.autograd.gradcheck(lambda r, i: wavegen.magnitude(r, i, 0.0, dim=-2),
                                    (re.requires_grad_(), im.requires_grad_()))


def test_errors():
    with pytest.raises(ValueError, match="magbias must be a finite number >= 0"):
        wavegen.nn.ScatLayer(magbias=-1e-2)
    with pytest.raises(ValueError, match="too small for a 2-scale scattering network.*at least 3"):
        wavegen.nn.ScatLayerj2()(torch.randn(1, 1, 2, 8))
    with pytest.raises(ValueError, match=r"combines 3 colour channels.*\(N, 3, H, W\).*got "
                                         r"\(1, 4, 16, 16\)"):
        wavegen.nn.ScatLayerj2(combine_colour=True)(torch.randn(1, 4, 16, 16))
    with pytest.raises(ValueError, match="too small for a 2-scale scattering network"):
        wavegen.nn.ScatLayerj2(combine_colour=True)(torch.randn(1, 3, 2, 8))
    with pytest.raises(ValueError, match="dim 2 is out of range for a 2-d tensor"):
        wavegen.magnitude(torch.ones(2, 2), torch.ones(2, 2), dim=2)
    with pytest.raises(ValueError, match="order must be 1 or 2"):
        wavegen.Spec("scatter2d", levels=1, order=2)
    with pytest.raises(ValueError, match="accepted modes are symmetric, zero"):
        wavegen.nn.ScatLayer(mode="periodization")
    with pytest.raises(ValueError, match="bias must be a finite number >= 0"):
        wavegen.magnitude(torch.ones(2), torch.ones(2), -1.0)
