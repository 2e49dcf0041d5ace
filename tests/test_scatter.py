"""The DTCWT scattering network (scatter2d, ScatLayer, ScatLayerj2) and the magnitude op:
against pytorch_wavelets' layers (every size from 9 to 40, an empty batch), against the
definition built from the dtcwt package, gradients (gradcheck, gradgradcheck,
pytorch_wavelets' backward), saved memory, emulated CUDA, errors. Tolerances are the
elementwise bounds of bounds.ScatterBounds."""
import dtcwt
import numpy as np
import pytest
import pytorch_wavelets as ptw
import torch

import wavegen
from bounds import (ScatterBounds, assert_within, central_difference, gamma,
                    scatter_derivatives)
from test_dtcwt import zero_mode_reference
from wavegen.plan_scatter import path_key

TWO_F64 = [(torch.float64, 2)]


def scatter(J, order=None, biort="near_sym_a", qshift="qshift_a", **kw):
    return wavegen.build(wavegen.Spec("scatter2d", levels=J, order=order or J, biort=biort,
                                      qshift=qshift, **kw))


def ptw_padding(side: int, J: int):
    """pytorch_wavelets' ScatLayerj2 block-copies (8 - r) // 2 rows before and (9 - r) // 2
    after, r = side % 8 (here for the multiple 2^(J+1)); ScatLayer pads nothing
    (it repeats the last row of an odd side, which is dtcwt's rule)."""
    m = 1 << (J + 1)
    r = side % m
    return (0, 0) if r == 0 else ((m - r) // 2, (m + 1 - r) // 2)


def bounds_for(layer_or_spec, x, evaluations=TWO_F64):
    """ScatterBounds for a layer's (or a scatter2d spec's) network on x."""
    s = layer_or_spec.spec if hasattr(layer_or_spec, "spec") else layer_or_spec
    chain = s.qshift is not None and s.levels >= 2
    pad = tuple(ptw_padding(n, s.levels) for n in x.shape[-2:]) \
        if chain and s.size_rule == "pytorch_wavelets" else None
    return ScatterBounds(x, s.levels, s.order, s.biort, s.qshift, s.mode, s.magbias,
                         evaluations, pad, combine=s.combine_colour)


def paths_of(s):
    return wavegen.build(s).plan.paths


def assert_same_values_and_gradients(ours, theirs, x, spec, evaluations=TWO_F64):
    """ours(x) and theirs(x), and their gradients for one random output gradient, within
    the network's derived bounds; returns ours(x)."""
    z, ref = ours(x), theirs(x)
    assert z.shape == ref.shape
    bounds = bounds_for(spec, x, evaluations)
    paths = paths_of(spec)
    assert_within(z, ref.detach().double().numpy(), bounds.output(paths), "values")
    g = torch.randn_like(ref)
    grad, = torch.autograd.grad(z, x, g.to(z.dtype))
    expected, = torch.autograd.grad(ref, x, g)
    assert_within(grad, expected.double().numpy(), bounds.gradient(g.double(), paths),
                  "gradients")
    return z


def reference(x, J, order, biort, qshift, mode, b):
    """Every path's coefficients of one plane from the definition (plan_scatter), with
    dtcwt's size rule: DTCWTs from the dtcwt package (or, for mode 'zero', dtcwt's
    algorithm on zero-padded arrays), magnitudes and 2x2 pooling in NumPy."""
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


def block_padded(x, J):
    """x block-padded as pytorch_wavelets' ScatLayerj2 pads it (ptw_padding)."""
    (top, bottom), (left, right) = (ptw_padding(n, J) for n in x.shape[-2:])
    x = np.concatenate([x[:top], x, x[x.shape[0] - bottom:]], 0)
    return np.concatenate([x[:, :left], x, x[:, x.shape[1] - right:]], 1)


def check_reference(t, x):
    s = t.spec
    z = t(x).detach().numpy()
    bound = bounds_for(s, x).output(t.plan.paths)
    N, C = x.shape[:2]
    z = z.reshape(N, -1, C, *z.shape[-2:])
    bound = bound.reshape(z.shape)
    chain = s.qshift is not None and s.levels >= 2
    for n in range(N):
        for c in range(C):
            plane = x[n, c].numpy()
            if chain and s.size_rule == "pytorch_wavelets":
                plane = block_padded(plane, s.levels)
            ref = reference(plane, s.levels, s.order, s.biort.name,
                            s.qshift.name if s.qshift else None, s.mode, s.magbias)
            assert_within(z[n, :, c], ref, bound[n, :, c], f"plane {n}, {c}")


@pytest.mark.parametrize("biort,mode,size", [("near_sym_a", "symmetric", (32, 40)),
                                             ("near_sym_b", "zero", (31, 21)),
                                             ("near_sym_b_bp", "symmetric", (17, 24))])
def test_scatlayer_matches_pytorch_wavelets(float64_reference, biort, mode, size):
    x = torch.randn(2, 3, *size, requires_grad=True)
    ours = wavegen.nn.ScatLayer(biort=biort, mode=mode, magbias=1e-2)
    z = assert_same_values_and_gradients(
        ours, ptw.ScatLayer(biort=biort, mode=mode, magbias=1e-2), x, ours.spec)
    assert z.shape == (2, 21, (size[0] + 1) // 2, (size[1] + 1) // 2)


@pytest.mark.parametrize("biort,qshift,b,size", [("near_sym_a", "qshift_a", 1e-2, (32, 40)),
                                                 ("near_sym_b", "qshift_b", 0.0, (24, 16)),
                                                 ("near_sym_b_bp", "qshift_b_bp", 0.1, (16, 24))])
def test_scatlayerj2_matches_pytorch_wavelets(float64_reference, biort, qshift, b, size):
    """b = 0 is the plain magnitude."""
    x = torch.randn(2, 3, *size, requires_grad=True)
    ours = wavegen.nn.ScatLayerj2(biort=biort, qshift=qshift, magbias=b)
    z = assert_same_values_and_gradients(
        ours, ptw.ScatLayerj2(biort=biort, qshift=qshift, magbias=b), x, ours.spec)
    assert z.shape == (2, 147, size[0] // 4, size[1] // 4)


@pytest.mark.parametrize("layer", ["ScatLayer", "ScatLayerj2"])
def test_every_size_from_9_to_40_matches_pytorch_wavelets(float64_reference, layer):
    """Drop-in sizes: pytorch_wavelets' output shapes and values (ScatLayerj2 block-copies
    rows and columns up to a multiple of 8) for every side from 9 to 40, each height with
    a different width, values and gradients."""
    ours, theirs = getattr(wavegen.nn, layer)(), getattr(ptw, layer)()
    for h in range(9, 41):
        x = torch.randn(2, 1, h, 49 - h, requires_grad=True)
        assert_same_values_and_gradients(ours, theirs, x, ours.spec)


@pytest.mark.parametrize("layer,combine", [("ScatLayer", False), ("ScatLayerj2", False),
                                           ("ScatLayerj2", True)])
def test_empty_batch(float64_reference, layer, combine):
    x = torch.randn(0, 3, 8, 8, requires_grad=True)
    z = getattr(wavegen.nn, layer)(combine_colour=combine)(x)
    assert z.shape == getattr(ptw, layer)(combine_colour=combine)(x).shape
    z.sum().backward()
    assert x.grad.shape == x.shape


@pytest.mark.parametrize("layer,args,channels,size", [
    ("ScatLayer", ("near_sym_a",), 9, (32, 40)), ("ScatLayer", ("near_sym_b",), 9, (27, 30)),
    ("ScatLayerj2", ("near_sym_b_bp", "qshift_b_bp"), 51, (32, 40)),
    ("ScatLayerj2", ("near_sym_a", "qshift_a"), 51, (28, 30))])
def test_combine_colour_matches_pytorch_wavelets(float64_reference, layer, args, channels, size):
    """Colour-combined first order: values and gradients, sizes that need padding too."""
    x = torch.randn(2, 3, *size, requires_grad=True)
    ours = getattr(wavegen.nn, layer)(*args, combine_colour=True)
    z = assert_same_values_and_gradients(ours, getattr(ptw, layer)(*args, combine_colour=True),
                                         x, ours.spec)
    assert z.shape[1] == channels


def scatter_gradcheck(fn, spec, x, double: bool = False):
    """gradcheck (or gradgradcheck) of a scattering network with magnitude bias b > 0, with
    the step and tolerance its central differences need: the value's rounding (its derived
    bound) against the truncation, from the bound on the network's third (for the
    gradient of the gradient, fourth) derivatives (bounds.scatter_derivatives)."""
    bounds = bounds_for(spec, x.detach().abs() + 1e-3)
    paths = paths_of(spec)
    parts = 2 * x.shape[1] if spec.combine_colour else 2
    derivatives = scatter_derivatives(bounds.gain, spec.magbias, spec.order, parts)
    if not double:
        eps, atol = central_difference(float(bounds.output(paths).max()), derivatives[2])
        return torch.autograd.gradcheck(fn, (x,), eps=eps, atol=atol, rtol=0)
    out = fn(x.detach())
    g = torch.randn_like(out)
    # The gradient's value errs by its bound; its third derivative sums the coefficients'
    # fourth derivatives against |g|.
    value = float(bounds.gradient(g.abs() + 1e-3, paths).max())
    eps, atol = central_difference(value, derivatives[3] * float(g.abs().sum()))
    return torch.autograd.gradgradcheck(fn, (x,), (g,), eps=eps, atol=atol, rtol=0)


def test_combine_colour_dtcwt_size_rule_and_gradcheck():
    """size_rule='dtcwt' sizes every stage as dtcwt does (no padded image): ceil(H / 4)."""
    x = torch.randn(1, 3, 19, 13, dtype=torch.float64, requires_grad=True)
    layer = wavegen.nn.ScatLayerj2(mode="zero", magbias=1e-2, combine_colour=True,
                                   size_rule="dtcwt")
    assert layer(x).shape[-2:] == wavegen.nn.ScatLayerj2(size_rule="dtcwt")(x).shape[-2:] \
        == (5, 4)
    assert wavegen.nn.ScatLayerj2()(x).shape[-2:] == (6, 4)       # 24 x 16, as ptw
    assert scatter_gradcheck(layer, layer.spec, x)


@pytest.mark.parametrize("J,order,qshift,mode,size,rule", [
    (2, 2, "qshift_a", "symmetric", (29, 35), "dtcwt"),   # odd, not multiples of 4 at scale 2
    (2, 2, "qshift_a", "zero", (26, 30), "dtcwt"),        # ScatLayerj2 in zero mode
    (2, 2, None, "symmetric", (21, 16), "dtcwt"),         # stacked: biorthogonal at every scale
    (2, 1, "qshift_a", "symmetric", (16, 18), "dtcwt"),
    (3, 2, "qshift_a", "symmetric", (27, 20), "dtcwt"),
    (3, 2, "qshift_a", "symmetric", (27, 20), "pytorch_wavelets"),   # padded to 32 x 32
    (2, 2, "qshift_a", "zero", (26, 30), "pytorch_wavelets"),
])
def test_general_spec_matches_the_definition(J, order, qshift, mode, size, rule):
    x = torch.randn(1, 2, *size, dtype=torch.float64)
    check_reference(scatter(J, order, "near_sym_a", qshift, mode=mode, size_rule=rule), x)


@pytest.mark.parametrize("kw", [dict(J=1), dict(J=2, mode="zero", magbias=1e-2),
                                dict(J=2, qshift=None, biort="near_sym_b_bp", magbias=0.1)])
def test_gradcheck(kw):
    t = scatter(**kw)
    x = torch.randn(1, 2, 11, 9, dtype=torch.float64, requires_grad=True)
    assert scatter_gradcheck(t, t.spec, x)


@pytest.mark.parametrize("layer,kw", [("ScatLayer", {}), ("ScatLayerj2", {}),
                                      pytest.param("ScatLayerj2", dict(combine_colour=True),
                                                   marks=pytest.mark.slow)])
def test_double_backward_gradgradcheck(layer, kw):
    """Double backward (gradient penalties): the backward is differentiable again, through
    the network composed from differentiable ops (ops.composed_scatter)."""
    module = getattr(wavegen.nn, layer)(**kw)
    x = torch.randn(1, 3, 10, 9, dtype=torch.float64, requires_grad=True)
    assert scatter_gradcheck(module, module.spec, x, double=True)
    # And create_graph=True gives a gradient one can train through.
    grad, = torch.autograd.grad(module(x).square().sum(), x, create_graph=True)
    grad.square().sum().backward()
    assert torch.isfinite(x.grad).all()


@pytest.mark.parametrize("b", [0.0, pytest.param(1e-2, marks=pytest.mark.slow)])
def test_float32_matches_float64(b):
    """float32 (where the CPU has AVX-512: estimated reciprocal square roots, wg_rsqrt)
    against float64, values and gradients, within the bound of both evaluations; the
    gradient's includes the conditioning of the phase z / |z|_b, which near the origin
    (b = 0) is what float32 loses. Odd sizes leave partial vectors; a zero block in the
    random image puts band values exactly at the origin (where, for b = 0, the gradient is
    the subgradient 0)."""
    layer = wavegen.nn.ScatLayerj2("near_sym_b", "qshift_b", magbias=b)
    x = torch.randn(1, 2, 75, 90, dtype=torch.float64)
    x[:, :, 8:56, 10:60] = 0
    x32 = x.float().requires_grad_()
    x64 = x.requires_grad_()
    z32, z64 = layer(x32), layer(x64)
    assert (z64 == 0).any()
    bounds = bounds_for(layer.spec, x, [(torch.float32, 1), (torch.float64, 1)])
    paths = paths_of(layer.spec)
    assert_within(z32, z64.detach().numpy(), bounds.output(paths), "values")
    g = torch.randn_like(z64)
    grad32, = torch.autograd.grad(z32, x32, g.float())
    grad64, = torch.autograd.grad(z64, x64, g)
    assert_within(grad32, grad64.numpy(), bounds.gradient(g, paths), "gradients")


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


@pytest.mark.parametrize("rule", ["pytorch_wavelets", "dtcwt"])
def test_emulated_cuda_matches_cpu_forward_and_backward(rule):
    """The CUDA kernels (with the block padding's folds, for 19 x 22) against the CPU's."""
    spec = wavegen.Spec("scatter2d", levels=2, order=2, biort="near_sym_b_bp",
                        qshift="qshift_b_bp", mode="zero", magbias=0.1, size_rule=rule)
    emulated, cpu = wavegen.build(spec, target="cuda_emulated"), wavegen.build(spec)
    x = torch.randn(1, 2, 19, 22, dtype=torch.float64, requires_grad=True)
    assert_same_values_and_gradients(emulated, cpu, x, spec)


def test_torch_compile_fullgraph_trains():
    """aot_eager runs the traced graph's own kernels: the same as eager mode, bit for bit."""
    layer = torch.nn.Sequential(wavegen.nn.ScatLayer(), torch.nn.Conv2d(21, 4, 1))
    compiled = torch.compile(layer, fullgraph=True, backend="aot_eager")
    x = torch.randn(2, 3, 16, 16, requires_grad=True)
    compiled(x).square().sum().backward()
    expected = x.grad.clone()
    x.grad = None
    layer(x).square().sum().backward()
    assert torch.equal(x.grad, expected)


def test_magnitude_op():
    re, im = torch.randn(2, 50, dtype=torch.float64), torch.randn(2, 50, dtype=torch.float64)
    # sqrt(re^2 + im^2) rounds four times, hypot (torch's abs) once: within 5 u |z|.
    plain = torch.complex(re, im).abs()
    assert torch.all((wavegen.magnitude(re, im) - plain).abs() <= gamma(5, re.dtype) * plain)
    b = 0.3
    assert torch.equal(wavegen.magnitude(re, im, b), torch.sqrt(re * re + im * im + b * b) - b)
    for bias in (0.0, b):
        assert magnitude_gradcheck(lambda r, i: wavegen.magnitude(r, i, bias), re, im, bias)
    origin = torch.zeros(3, dtype=torch.float64, requires_grad=True)
    r, = torch.autograd.grad(wavegen.magnitude(origin, origin.detach()).sum(), origin)
    assert torch.equal(r, torch.zeros(3, dtype=torch.float64))   # the subgradient 0, no NaN
    # The magnitude of the vector along a dimension.
    re, im = re.detach(), im.detach()
    assert torch.equal(wavegen.magnitude(re, im, b, dim=0),
                       torch.sqrt((re * re + im * im).sum(0) + b * b) - b)
    assert magnitude_gradcheck(lambda r, i: wavegen.magnitude(r, i, 0.0, dim=-2), re, im,
                               0.0, dim=-2)


def magnitude_gradcheck(fn, re, im, bias, dim=None):
    """gradcheck of |z|_b = sqrt(|z|^2 + b^2) - b: evaluated within a few roundings of
    |z| + b; its third derivative along a coordinate is at most 3 / |z|_b^2 (at the
    smallest |z|_b of the inputs, which central differences stay near)."""
    energy = re * re + im * im
    norm = torch.sqrt((energy if dim is None else energy.sum(dim)) + bias * bias)
    value = gamma(6, re.dtype) * float(norm.max() + bias)
    eps, atol = central_difference(value, 3 / float(norm.min()) ** 2)
    assert eps < float(norm.min()) / 10                 # the steps stay away from 0
    return torch.autograd.gradcheck(fn, (re.detach().requires_grad_(),
                                         im.detach().requires_grad_()), eps=eps, atol=atol,
                                    rtol=0)


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
    with pytest.raises(ValueError, match="block padding to a multiple of 16.*at least 6"):
        scatter(3, 2)(torch.randn(1, 1, 5, 40))
    with pytest.raises(ValueError, match="unknown size_rule 'ptw'.*pytorch_wavelets, dtcwt"):
        wavegen.nn.ScatLayerj2(size_rule="ptw")
    with pytest.raises(ValueError, match="dim 2 is out of range for a 2-d tensor"):
        wavegen.magnitude(torch.ones(2, 2), torch.ones(2, 2), dim=2)
    with pytest.raises(ValueError, match="order must be 1 or 2"):
        wavegen.Spec("scatter2d", levels=1, order=2)
    with pytest.raises(ValueError, match="accepted modes are symmetric, zero"):
        wavegen.nn.ScatLayer(mode="periodization")
    with pytest.raises(ValueError, match="bias must be a finite number >= 0"):
        wavegen.magnitude(torch.ones(2), torch.ones(2), -1.0)
