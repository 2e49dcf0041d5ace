"""Generated adjoints: dot-product tests, gradcheck, nothing saved, double backward,
opcheck and torch.compile."""
import warnings

import pytest
import torch

import wavegen
from wavegen.spec import MODES

warnings.filterwarnings("ignore", message="Level value")


def inner(a, b):
    return sum((u * v).sum() for u, v in zip(a, b))


def norm(a):
    return inner(a, a).sqrt()


def assert_adjoint(ax, y, x, aty, what):
    """<Ax, y> = <x, A^T y> to 1e-12 of ||Ax|| ||y|| (the Cauchy-Schwarz bound, which a
    chance cancellation in the inner product cannot shrink)."""
    lhs, rhs = inner(ax, y), inner(x, aty)
    assert abs(lhs - rhs) <= 1e-12 * norm(ax) * norm(y), what


def random_like(tensors):
    return [torch.randn_like(t) for t in tensors]


def dot_test(spec, size):
    """<A x, y> = <x, A^T y> for the spec's analysis A and its synthesis S, in float64."""
    t = wavegen.build(spec)
    x = torch.randn(2, 2, *size, dtype=torch.float64)
    yl, yh = t(x)
    gl, gh = random_like([yl])[0], random_like(yh)
    signal = size if spec.ndim == 2 else size[0]
    xa = t.adjoint()(gl, gh, signal_size=signal)
    assert_adjoint([yl, *yh], [gl, *gh], [x], [xa], ("analysis", spec, size))

    s = t.inverse()
    xr = s(yl, yh)
    r = torch.randn_like(xr)
    cl, ch = s.adjoint()(r)
    assert_adjoint([xr], [r], [yl, *yh], [cl, *ch], ("synthesis", spec, size))


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("wavelet", ["db3", "bior2.2", "coif1"])
def test_dot_product_2d(mode, wavelet):
    for size in [(5, 7), (33, 30), (2, 9)]:
        if mode in ("reflect", "antireflect") and min(size) < 4:
            continue            # a level would reach one sample, which these modes reject
        dot_test(wavegen.Spec("dwt2d", wavelet, 2, mode), size)


@pytest.mark.parametrize("mode", MODES)
def test_dot_product_1d_all_short_sizes(mode):
    """Every length from 2 to 24 with a 10-tap filter: many are shorter than the filter."""
    for n in range(2, 25):
        if mode in ("reflect", "antireflect") and n < 4:
            continue
        dot_test(wavegen.Spec("dwt1d", "db5", 2, mode), (n,))


@pytest.mark.parametrize("mode", ["symmetric", "periodization", "smooth", "antireflect"])
def test_gradcheck_forward_and_inverse(mode):
    t = wavegen.build(wavegen.Spec("dwt2d", "db2", 2, mode))
    x = torch.randn(1, 2, 9, 8, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda x: (t(x)[0], *t(x)[1]), (x,))
    yl, yh = t(x.detach())
    coeffs = [c.requires_grad_() for c in (yl, *yh)]
    inv = t.inverse()
    assert torch.autograd.gradcheck(lambda yl, *yh: inv(yl, list(yh)), tuple(coeffs))


def test_double_backward():
    t = wavegen.build(wavegen.Spec("dwt2d", "sym3", 2, "reflect"))
    x = torch.randn(1, 1, 11, 10, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradgradcheck(lambda x: (t(x)[0], *t(x)[1]), (x,))
    t1 = wavegen.build(wavegen.Spec("dwt1d", "db2", 3, "antisymmetric"))
    x1 = torch.randn(2, 1, 21, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradgradcheck(lambda x: (t1(x)[0], *t1(x)[1]), (x1,))


def test_gradient_is_the_adjoint_in_every_mode():
    """pytorch_wavelets' backward is wrong for symmetric/reflect/periodic (contract 3.2);
    ours is the adjoint, which the dense Jacobian confirms."""
    for mode in MODES:
        t = wavegen.build(wavegen.Spec("dwt1d", "db2", 1, mode))
        x = torch.randn(1, 1, 7, dtype=torch.float64)
        jac = torch.autograd.functional.jacobian(lambda x: torch.cat([t(x)[0], t(x)[1][0]], -1),
                                                 x).reshape(-1, 7)
        yl, yh = t(x)
        y = torch.randn(yl.numel() + yh[0].numel(), dtype=torch.float64)
        grad = t.adjoint()(y[:yl.numel()].reshape(yl.shape),
                           [y[yl.numel():].reshape(yh[0].shape)], signal_size=7)
        assert torch.allclose(grad.reshape(-1), jac.T @ y, rtol=1e-12, atol=1e-12), mode


def test_backward_saves_no_tensors():
    """Forward and inverse are linear: their backward is the generated adjoint, which needs
    no saved activations."""
    saved = []
    t = wavegen.build(wavegen.Spec("dwt2d", "db4", 2, "symmetric"))
    x = torch.randn(2, 3, 20, 20, requires_grad=True)
    with torch.autograd.graph.saved_tensors_hooks(lambda t: saved.append(t) or t, lambda t: t):
        yl, yh = t(x)
        xr = t.inverse()(yl, yh)
        xr.sum().backward()
    assert saved == []
    assert x.grad is not None and torch.isfinite(x.grad).all()


def test_unused_outputs_get_zero_gradient():
    t = wavegen.build(wavegen.Spec("dwt2d", "db2", 2, "zero"))
    x = torch.randn(1, 1, 12, 12, dtype=torch.float64, requires_grad=True)
    yl, yh = t(x)
    yh[1].sum().backward()                # yl and yh[0] receive no gradient
    expected = t.adjoint()(torch.zeros_like(yl), [torch.zeros_like(yh[0]),
                                                  torch.ones_like(yh[1])], signal_size=(12, 12))
    assert torch.allclose(x.grad, expected)


@pytest.mark.parametrize("kind", ["dwt2d", "idwt1d"])
def test_opcheck(kind):
    t = wavegen.build(wavegen.Spec(kind, "db2", 2, "periodization"))
    if kind == "dwt2d":
        inputs = [torch.randn(2, 3, 13, 10, dtype=torch.float64)]
        geom = t.plan.geometry_for_inputs([(13, 10)])
    else:
        fwd = t.inverse()
        yl, yh = fwd(torch.randn(2, 3, 17, dtype=torch.float64))
        inputs = [yl, *yh]
        geom = t.plan.geometry_for_inputs([tuple(c.shape[-1:]) for c in inputs])
    torch.library.opcheck(torch.ops.wavegen.run.default,
                          (inputs, t.spec.to_json(), geom.flat(), "cpu"))


def test_torch_compile_fullgraph():
    dwt = wavegen.nn.DWTForward(J=2, wave="db2", mode="symmetric")
    idwt = wavegen.nn.DWTInverse(wave="db2", mode="symmetric")

    class Model(torch.nn.Module):
        def forward(self, x):
            yl, yh = dwt(x)
            x_back = idwt((yl * 2, [h.tanh() for h in yh]))
            return yl.square().sum() + sum(h.abs().sum() for h in yh) + x_back.sin().sum()

    compiled = torch.compile(Model(), fullgraph=True)
    x = torch.randn(2, 3, 16, 18, requires_grad=True)
    out = compiled(x)
    out.backward()
    x2 = x.detach().clone().requires_grad_()
    ref = Model()(x2)
    ref.backward()
    assert torch.allclose(out, ref, rtol=1e-5)
    assert torch.allclose(x.grad, x2.grad, rtol=1e-5, atol=1e-6)
