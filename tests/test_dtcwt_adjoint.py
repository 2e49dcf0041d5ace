"""DTCWT adjoints: dot-product tests for every filter set and mode (forward and inverse),
gradcheck, double backward, nothing saved, opcheck and torch.compile."""
import logging

import pytest
import torch

import wavegen
from test_adjoint import assert_adjoint
from test_dtcwt import EVERYTHING, PAIRS

logging.getLogger().setLevel(logging.ERROR)


def spec(biort, qshift, J, **kw):
    return wavegen.Spec("dtcwt2d", biort=biort, qshift=qshift, levels=J, **kw)


def randn_like_bands(bands):
    return [torch.randn_like(b) if b.dim() else b for b in bands]


def dot_test(s, size):
    """<A x, y> = <x, A^T y> for the forward A and for its inverse S, in float64."""
    t = wavegen.build(s)
    x = torch.randn(2, 2, *size, dtype=torch.float64)
    yl, yh = t(x)
    gl, gh = torch.randn_like(yl), randn_like_bands(yh)
    xa = t.adjoint()(gl, gh, signal_size=size)
    present = [h for h in yh if h.dim()]
    assert_adjoint([yl, *present], [gl, *[g for g in gh if g.dim()]], [x], [xa],
                   ("forward", s.readable_name(), size))
    inv = t.inverse()
    xr = inv(gl, gh)
    r = torch.randn_like(xr)
    cl, ch = inv.adjoint()(r)
    assert_adjoint([xr], [r], [gl, *[g for g in gh if g.dim()]],
                   [cl, *[c for c in ch if c.dim()]], ("inverse", s.readable_name(), size))


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
    assert torch.autograd.gradcheck(lambda x: (t(x)[0], *t(x)[1]), (x,))
    yl, yh = t(x.detach())
    coeffs = [c.requires_grad_() for c in (yl, *yh)]
    inv = t.inverse()
    assert torch.autograd.gradcheck(lambda yl, *yh: inv(yl, list(yh)), tuple(coeffs))


def test_gradcheck_include_scale_and_zero_mode():
    m = wavegen.nn.DTCWTForward("antonini", "qshift_06", J=3, include_scale=[True, False, True],
                                mode="zero", o_dim=3, ri_dim=1)
    x = torch.randn(1, 1, 10, 13, dtype=torch.float64, requires_grad=True)

    def outputs(x):
        lows, yh = m(x)
        return (*[l for l in lows if l.dim()], *yh)
    assert torch.autograd.gradcheck(outputs, (x,))


def test_double_backward():
    t = wavegen.build(spec("near_sym_a", "qshift_b", 2))
    x = torch.randn(1, 1, 9, 12, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradgradcheck(lambda x: (t(x)[0], *t(x)[1]), (x,))


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
    fwd = wavegen.nn.DTCWTForward(J=2, biort="near_sym_a", qshift="qshift_b")
    inv = wavegen.nn.DTCWTInverse(biort="near_sym_a", qshift="qshift_b")

    class Model(torch.nn.Module):
        def forward(self, x):
            yl, yh = fwd(x)
            x_back = inv((yl * 2, [h.tanh() for h in yh]))
            return yl.square().sum() + sum(h.abs().sum() for h in yh) + x_back.sin().sum()

    compiled = torch.compile(Model(), fullgraph=True)
    x = torch.randn(2, 3, 16, 20, dtype=torch.float64, requires_grad=True)
    out = compiled(x)
    out.backward()
    x2 = x.detach().clone().requires_grad_()
    ref = Model()(x2)
    ref.backward()
    assert torch.allclose(out, ref, rtol=1e-5)
    assert torch.allclose(x.grad, x2.grad, rtol=1e-5, atol=1e-6)
