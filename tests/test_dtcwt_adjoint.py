"""DTCWT adjoints: dot-product tests for every filter set and mode (forward and inverse),
gradcheck, double backward, nothing saved, opcheck and torch.compile."""
import logging

import numpy as np
import pytest
import torch

import wavegen
from bounds import DtcwtBounds, inner_product_bound
from test_adjoint import assert_adjoint, gradcheck_atol
from test_dtcwt import EVERYTHING, PAIRS

logging.getLogger().setLevel(logging.ERROR)
ONE_F64 = [(torch.float64, 1)]


def spec(biort, qshift, J, **kw):
    return wavegen.Spec("dtcwt2d", biort=biort, qshift=qshift, levels=J, **kw)


def randn_like_bands(bands):
    return [torch.randn_like(b) if b.dim() else b for b in bands]


def default_layout(s, band):
    """A band tensor in (N, C, 6, h, w, 2), or None for a skipped one."""
    return band.movedim((s.o_dim, s.ri_dim), (2, 5)) if band.dim() else None


def dot_test(s, size):
    """<A x, y> = <x, A^T y> for the forward A and for its inverse S, in float64, within
    the bound the elementwise error bounds of both sides give (bounds.inner_product_bound)."""
    t = wavegen.build(s)
    x = torch.randn(2, 2, *size, dtype=torch.float64)
    yl, yh = t(x)
    gl, gh = torch.randn_like(yl), randn_like_bands(yh)
    xa = t.adjoint()(gl, gh, signal_size=size)
    bounds = DtcwtBounds(x.numpy(), s.biort, s.qshift, s.levels, mode=s.mode)
    low, bands = bounds.forward(ONE_F64)
    given = [j for j, h in enumerate(yh) if h.dim()]
    g_default = [default_layout(s, g) for g in gh]
    dense = [np.zeros(bounds.layout(bounds.coefficients[j], "magnitude").shape)
             if g is None else g.numpy() for j, g in enumerate(g_default)]
    bound = inner_product_bound(
        x.dtype, [yl, *(default_layout(s, yh[j]) for j in given)],
        [gl, *(g_default[j] for j in given)], [low, *(bands[j] for j in given)],
        [x], [xa], [bounds.gradient(gl.numpy(), dense, ONE_F64)])
    assert_adjoint([yl, *(yh[j] for j in given)], [gl, *(gh[j] for j in given)], [x], [xa],
                   bound, ("forward", s.readable_name(), size))
    inv = t.inverse()
    xr = inv(gl, gh)
    r = torch.randn_like(xr)
    cl, ch = inv.adjoint()(r)
    low, bands = bounds.synthesis_adjoint(r.numpy(), ONE_F64)
    bound = inner_product_bound(
        x.dtype, [xr], [r], [bounds.synthesis_of(gl.numpy(), [None if g is None else
                                                              g.numpy() for g in g_default],
                                                 ONE_F64)],
        [gl, *(g_default[j] for j in given)],
        [cl, *(default_layout(s, ch[j]) for j in given)], [low, *(bands[j] for j in given)])
    assert_adjoint([xr], [r], [gl, *(gh[j] for j in given)], [cl, *(ch[j] for j in given)],
                   bound, ("inverse", s.readable_name(), size))


@pytest.mark.parametrize("mode", ["symmetric", "zero"])
@pytest.mark.parametrize("biort,qshift", PAIRS)
def test_dot_product_every_filter_set(biort, qshift, mode):
    for size in [(37, 22), (16, 20)]:
        dot_test(spec(biort, qshift, 3, mode=mode), size)


def test_dot_product_layouts_and_skips():
    dot_test(wavegen.Spec("dtcwt2d", **EVERYTHING), (29, 35))


def test_gradcheck_forward_and_inverse():
    t = wavegen.build(spec("legall", "qshift_a", 2))
    x = torch.randn(1, 2, 11, 10, dtype=torch.float64, requires_grad=True)
    # Perturbed inputs stay within eps of x: the bound for x's magnitudes, plus eps.
    bounds = DtcwtBounds(x.detach().abs().numpy() + 1e-6, "legall", "qshift_a", 2)
    assert torch.autograd.gradcheck(lambda x: (t(x)[0], *t(x)[1]), (x,), rtol=0,
                                    atol=gradcheck_atol(bounds.largest(ONE_F64)))
    yl, yh = t(x.detach())
    coeffs = [c.requires_grad_() for c in (yl, *yh)]
    inv = t.inverse()
    value = bounds.synthesis_of(yl.detach().abs().numpy() + 1e-6,
                                [h.detach().abs().numpy() + 1e-6 for h in yh], ONE_F64)
    assert torch.autograd.gradcheck(lambda yl, *yh: inv(yl, list(yh)), tuple(coeffs), rtol=0,
                                    atol=gradcheck_atol(float(value.max())))


def test_gradcheck_include_scale_and_zero_mode():
    m = wavegen.nn.DTCWTForward("antonini", "qshift_06", J=3, include_scale=[True, False, True],
                                mode="zero", o_dim=3, ri_dim=1)
    x = torch.randn(1, 1, 10, 13, dtype=torch.float64, requires_grad=True)
    bounds = DtcwtBounds(x.detach().abs().numpy() + 1e-6, "antonini", "qshift_06", 3,
                         mode="zero")

    def outputs(x):
        lows, yh = m(x)
        return (*[l for l in lows if l.dim()], *yh)
    assert torch.autograd.gradcheck(outputs, (x,), rtol=0,
                                    atol=gradcheck_atol(bounds.largest(ONE_F64)))


def test_double_backward():
    """The backward of a linear map is linear in the output gradients: gradgradcheck's
    differences of it are exact but for the rounding of the adjoint's evaluations."""
    t = wavegen.build(spec("near_sym_a", "qshift_b", 2))
    x = torch.randn(1, 1, 9, 12, dtype=torch.float64, requires_grad=True)
    yl, yh = t(x.detach())
    grads = [torch.randn_like(yl)] + [torch.randn_like(h) for h in yh]
    bounds = DtcwtBounds(x.detach().numpy(), "near_sym_a", "qshift_b", 2)
    value = bounds.gradient(grads[0].abs().numpy() + 1e-6,
                            [g.abs().numpy() + 1e-6 for g in grads[1:]], ONE_F64)
    assert torch.autograd.gradgradcheck(lambda x: (t(x)[0], *t(x)[1]), (x,), grads, rtol=0,
                                        atol=gradcheck_atol(float(value.max())))


def test_backward_saves_no_tensors():
    saved = []
    fwd = wavegen.nn.DTCWTForward("legall", "qshift_a", J=2)
    inv = wavegen.nn.DTCWTInverse("legall", "qshift_a")
    x = torch.randn(2, 3, 20, 24, dtype=torch.float64, requires_grad=True)
    with torch.autograd.graph.saved_tensors_hooks(lambda t: saved.append(t) or t, lambda t: t):
        yl, yh = fwd(x)
        inv((yl, yh)).sum().backward()
    assert saved == []
    assert torch.isfinite(x.grad).all()


def test_opcheck():
    t = wavegen.build(spec("legall", "qshift_a", 2, o_dim=1, ri_dim=2))
    x = torch.randn(2, 3, 13, 10, dtype=torch.float64)
    geom = t.plan.geometry_from_signal((13, 10))
    torch.library.opcheck(torch.ops.wavegen.run.default, ([x], t.spec.to_json(), geom.flat(),
                                                         "cpu"))
    yl, yh = t(x)
    inv = t.inverse()
    _, _, hdim, wdim = inv.plan.band_dims()
    geom = inv.plan.geometry_from_coefficients(yl.shape[2:], [(h.shape[hdim], h.shape[wdim])
                                                              for h in yh])
    torch.library.opcheck(torch.ops.wavegen.run.default,
                          ([yl, *yh], inv.spec.to_json(), geom.flat(), "cpu"))


def test_torch_compile_fullgraph():
    """As for the DWT: the same kernels on the same inputs, joined by exact scalings, so
    the compiled graph agrees with eager mode bit for bit."""
    fwd = wavegen.nn.DTCWTForward(J=2, biort="near_sym_a", qshift="qshift_b")
    inv = wavegen.nn.DTCWTInverse(biort="near_sym_a", qshift="qshift_b")

    class Model(torch.nn.Module):
        def forward(self, x):
            yl, yh = fwd(x)
            return yl, inv((yl * 2, [h * 0.5 for h in yh]))

    compiled = torch.compile(Model(), fullgraph=True)
    x = torch.randn(2, 3, 16, 20, dtype=torch.float64, requires_grad=True)
    outputs = compiled(x)
    grads = [torch.randn_like(o) for o in outputs]
    torch.autograd.backward(outputs, grads)
    x2 = x.detach().clone().requires_grad_()
    expected = Model()(x2)
    torch.autograd.backward(expected, grads)
    assert all(torch.equal(a, b) for a, b in zip(outputs, expected))
    assert torch.equal(x.grad, x2.grad)
