"""Generated adjoints: dot-product tests, gradcheck, nothing saved, double backward,
opcheck and torch.compile."""
import warnings

import numpy as np
import pytest
import torch

import wavegen
from wavegen.spec import MODES
from bounds import DwtBounds, gamma, inner_product_bound
from test_reference import wavelet_mode_pairs

warnings.filterwarnings("ignore", message="Level value")
ONE_F64 = [(torch.float64, 1)]


def inner(a, b):
    return sum((u * v).sum() for u, v in zip(a, b))


def assert_adjoint(ax, y, x, aty, bound, what):
    """<Ax, y> = <x, A^T y> within its derived bound (bounds.inner_product_bound)."""
    lhs, rhs = inner(ax, y), inner(x, aty)
    assert abs(lhs - rhs) <= bound, (what, float(abs(lhs - rhs)), bound)


def random_like(tensors):
    return [torch.randn_like(t) for t in tensors]


def dot_test(spec, size):
    """<A x, y> = <x, A^T y> for the spec's analysis A and its synthesis S, in float64,
    within the bound the elementwise error bounds of both sides give."""
    t = wavegen.build(spec)
    x = torch.randn(2, 2, *size, dtype=torch.float64)
    yl, yh = t(x)
    gl, gh = random_like([yl])[0], random_like(yh)
    signal = size if spec.ndim == 2 else size[0]
    xa = t.adjoint()(gl, gh, signal_size=signal)
    ops = DwtBounds(x.numpy(), spec.wavelet.name, spec.mode, spec.levels, x.dtype, spec.ndim)
    low, details = ops.forward(ONE_F64)
    adjoint = ops.adjoint(gl.numpy(), [g.numpy() for g in gh], ONE_F64)
    bound = inner_product_bound(x.dtype, [yl, *yh], [gl, *gh], [low, *details], [x], [xa],
                                [adjoint])
    assert_adjoint([yl, *yh], [gl, *gh], [x], [xa], bound, ("analysis", spec, size))

    s = t.inverse()
    xr = s(yl, yh)
    r = torch.randn_like(xr)
    cl, ch = s.adjoint()(r)
    low, details = ops.synthesis_adjoint(r.numpy(), ONE_F64)
    bound = inner_product_bound(x.dtype, [xr], [r], [ops.synthesis_of(yl, yh, ONE_F64)],
                                [yl, *yh], [cl, *ch], [low, *details])
    assert_adjoint([xr], [r], [yl, *yh], [cl, *ch], bound, ("synthesis", spec, size))


def gradcheck_atol(value_bound: float, eps: float = 1e-6) -> float:
    """The tolerance of torch.autograd.gradcheck's central differences of a linear map:
    (f(x + eps) - f(x - eps)) / 2 eps is exact but for the rounding of the two evaluations,
    at most ``value_bound`` each; the backward's own rounding is far smaller."""
    return 2 * value_bound / eps


@pytest.mark.parametrize("wavelet,mode", wavelet_mode_pairs(["db3", "bior2.2", "coif1"], 3))
def test_dot_product_2d(wavelet, mode):
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
    # Perturbed inputs stay within eps of x: the bound for x's magnitudes plus eps.
    ops = DwtBounds(x.detach().abs().numpy() + 1e-6, "db2", mode, 2, x.dtype, 2)
    low, details = ops.forward(ONE_F64)
    largest = max(float(b.max()) for b in [low, *details])
    assert torch.autograd.gradcheck(lambda x: (t(x)[0], *t(x)[1]), (x,), rtol=0,
                                    atol=gradcheck_atol(largest))
    yl, yh = t(x.detach())
    coeffs = [c.requires_grad_() for c in (yl, *yh)]
    inv = t.inverse()
    largest = float(ops.inverse(ONE_F64).max())
    assert torch.autograd.gradcheck(lambda yl, *yh: inv(yl, list(yh)), tuple(coeffs), rtol=0,
                                    atol=gradcheck_atol(largest))


@pytest.mark.parametrize("kind,wavelet,mode,levels,size", [
    ("dwt2d", "sym3", "reflect", 2, (11, 10)), ("dwt1d", "db2", "antisymmetric", 3, (21,))])
def test_double_backward(kind, wavelet, mode, levels, size):
    """The backward of a linear map is linear in the output gradients: gradgradcheck's
    differences of it are exact but for the rounding of the adjoint's evaluations."""
    t = wavegen.build(wavegen.Spec(kind, wavelet, levels, mode))
    x = torch.randn(2, 1, *size, dtype=torch.float64, requires_grad=True)
    yl, yh = t(x.detach())
    grads = [torch.randn_like(yl)] + [torch.randn_like(h) for h in yh]
    ops = DwtBounds(x.detach().numpy(), wavelet, mode, levels, x.dtype, len(size))
    value = ops.adjoint(grads[0].abs().numpy() + 1e-6,
                        [g.abs().numpy() + 1e-6 for g in grads[1:]], ONE_F64)
    assert torch.autograd.gradgradcheck(lambda x: (t(x)[0], *t(x)[1]), (x,), grads, rtol=0,
                                        atol=gradcheck_atol(float(value.max())))


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
        # Both sides are the adjoint applied to y (the Jacobian's rows are adjoints of unit
        # vectors, then summed against y): two evaluations' rounding, and the matrix
        # product's own.
        ops = DwtBounds(x.numpy(), "db2", mode, 1, x.dtype, 1)
        parts = (y[:yl.numel()].reshape(yl.shape), y[yl.numel():].reshape(yh[0].shape))
        bound = ops.adjoint(parts[0].abs().numpy(), [parts[1].abs().numpy()],
                            [(torch.float64, 2)]).reshape(-1) + \
            gamma(y.numel(), x.dtype) * (jac.abs().T @ y.abs()).numpy()
        assert np.all((grad.reshape(-1) - jac.T @ y).abs().numpy() <= bound), mode


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
    assert torch.equal(x.grad, expected)             # the same kernels on the same inputs


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
    """The compiled graph runs the same kernels on the same inputs as eager mode; the torch
    ops between them scale by powers of two, which round nothing, so forward and backward
    agree bit for bit."""
    dwt = wavegen.nn.DWTForward(J=2, wave="db2", mode="symmetric")
    idwt = wavegen.nn.DWTInverse(wave="db2", mode="symmetric")

    class Model(torch.nn.Module):
        def forward(self, x):
            yl, yh = dwt(x)
            return yl, idwt((yl * 2, [h * 0.5 for h in yh]))

    compiled = torch.compile(Model(), fullgraph=True)
    x = torch.randn(2, 3, 16, 18, requires_grad=True)
    outputs = compiled(x)
    grads = [torch.randn_like(o) for o in outputs]
    torch.autograd.backward(outputs, grads)
    x2 = x.detach().clone().requires_grad_()
    expected = Model()(x2)
    torch.autograd.backward(expected, grads)
    assert all(torch.equal(a, b) for a, b in zip(outputs, expected))
    assert torch.equal(x.grad, x2.grad)
