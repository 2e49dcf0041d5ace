"""The torch op behind every transform, with its fake (meta) kernel and autograd.

One op, ``wavegen::run(inputs, spec, geometry, target)``, serves every linear spec: the
spec is its canonical JSON and the geometry a flat list of sizes (plan.Geometry). Its
backward is the same op on ``spec.adjoint()``: gradients are generated kernels too, save no
tensors (the transforms are linear), and are themselves differentiable.

The scattering network is not linear: ``wavegen::scatter`` saves its input x, and
``wavegen::scatter_backward`` recomputes what it needs from x (nothing else is kept), then
runs the generated backward kernels. ``wavegen::magnitude`` is the biased magnitude alone.
``composed_scatter`` is the same network built from differentiable ops (the DTCWT op, the
magnitude op, pooling): it runs the colour-combined network, and the backward's own
gradient (double backward) differentiates it.
"""
from __future__ import annotations

import functools
import json

import torch

from . import artifact, runner
from .plan import from_json
from .spec import Spec

DTYPE_NAMES = {torch.float32: "float32", torch.float64: "float64", torch.float16: "float16",
               torch.bfloat16: "bfloat16"}


@functools.lru_cache(maxsize=None)
def _adjoint_json(spec_json: str) -> str:
    return Spec.from_json(spec_json).adjoint().to_json()


def _shapes(plan, geometry: list[int], lead) -> tuple[list, list]:
    return plan.io_shapes(plan.Geometry.unflat(geometry, plan.ndim), lead)


def _execute(inputs, spec: str, geometry: list[int], target: str, backward: bool = False):
    """Run the plan's program (or, for the scattering network, its backward program) for
    this call on the artifact of its target, dtype and device."""
    plan = from_json(spec)
    module = artifact.get(plan, target, DTYPE_NAMES[inputs[0].dtype], inputs[0].device)
    geom = plan.Geometry.unflat(geometry, plan.ndim)
    build = plan.backward_program if backward else plan.program
    return runner.execute(module, (backward, tuple(geometry)),
                          lambda layouts: build(geom, layouts), inputs,
                          poison=target == "cuda_emulated")


_LIB = torch.library.Library("wavegen", "DEF")


def _define(schema: str, kernel, fake):
    """An operator of the wavegen library: ``kernel`` runs it on CPU and CUDA tensors,
    ``fake`` gives its outputs' shapes (meta and fake tensors, torch.compile). The kernel
    is registered as it is: eager calls then skip the torch._dynamo import that
    torch.library.custom_op's wrappers make on a process's first call (1-2 s)."""
    name = schema.split("(")[0]
    _LIB.define(schema)
    torch.library.impl(f"wavegen::{name}", ("cpu", "cuda"), kernel, lib=_LIB)
    torch.library.register_fake(f"wavegen::{name}", fake, lib=_LIB)
    return getattr(torch.ops.wavegen, name).default


def _run_fake(inputs, spec, geometry, target):
    _, outs = _shapes(from_json(spec), geometry, inputs[0].shape[:2])
    return [inputs[0].new_empty(shape) for shape in outs]


run = _define("run(Tensor[] inputs, str spec, int[] geometry, str target) -> Tensor[]",
              _execute, _run_fake)


def _below_autograd(keyset, inputs, spec, geometry, target):
    with torch._C._AutoDispatchBelowAutograd():
        return run.redispatch(keyset & torch._C._after_autograd_keyset, inputs, spec,
                              geometry, target)


class _RunFunction(torch.autograd.Function):
    """The autograd of ``wavegen::run``: the backward is the op on the adjoint spec. The
    inputs are separate arguments: torch.library.register_autograd supports a Tensor[]
    argument by flattening every argument with pytree, the geometry's ints too, which cost
    40 us a call, more than a small transform's launches."""

    @staticmethod
    def forward(ctx, keyset, spec, geometry, target, *inputs):
        ctx.spec, ctx.geometry, ctx.target = spec, geometry, target
        return tuple(_below_autograd(keyset, list(inputs), spec, geometry, target))

    @staticmethod
    def backward(ctx, *grads):
        plan = from_json(ctx.spec)
        present = next(g for g in grads if g is not None)
        _, outs = _shapes(plan, ctx.geometry, present.shape[:2])
        grads = [g if g is not None else present.new_zeros(shape)
                 for g, shape in zip(grads, outs)]
        return (None, None, None, None,
                *run(grads, _adjoint_json(ctx.spec), ctx.geometry, ctx.target))


def _run_autograd(keyset, inputs, spec, geometry, target):
    if torch.is_grad_enabled() and any(t.requires_grad for t in inputs):
        return list(_RunFunction.apply(keyset, spec, geometry, target, *inputs))
    return _below_autograd(keyset, inputs, spec, geometry, target)


_LIB.impl("run", _run_autograd, "Autograd", with_keyset=True)


def _register_autocast(name: str):
    """Autocast for op ``name``, whose first argument is a tensor or a tensor list, as for
    PyTorch's convolutions: floating tensors other than float64 are cast to the autocast
    dtype (the cast is differentiable), then the op runs with autocast off."""
    op = getattr(torch.ops.wavegen, name).default
    for device_type, key in (("cpu", "AutocastCPU"), ("cuda", "AutocastCUDA")):
        excluded = torch._C.DispatchKeySet(getattr(torch._C.DispatchKey, key))

        def kernel(tensors, *args, device_type=device_type, excluded=excluded):
            dtype = torch.get_autocast_dtype(device_type)

            def cast(t):
                return t.to(dtype) if t.is_floating_point() and t.dtype != torch.float64 \
                    else t
            tensors = [cast(t) for t in tensors] if isinstance(tensors, list) else cast(tensors)
            with torch._C._ExcludeDispatchKeyGuard(excluded):
                return op(tensors, *args)
        _LIB.impl(name, kernel, key)


_register_autocast("run")


def _scatter_fake(x, spec, geometry, target):
    return x.new_empty(_shapes(from_json(spec), geometry, x.shape[:2])[1][0])


scatter = _define("scatter(Tensor x, str spec, int[] geometry, str target) -> Tensor",
                  lambda x, spec, geometry, target: _execute([x], spec, geometry, target)[0],
                  _scatter_fake)
scatter_backward = _define("scatter_backward(Tensor x, Tensor grad, str spec, int[] geometry, "
                           "str target) -> Tensor",
                           lambda x, grad, spec, geometry, target:
                           _execute([x, grad], spec, geometry, target, backward=True)[0],
                           lambda x, grad, spec, geometry, target: torch.empty_like(x))


def _scatter_setup_context(ctx, inputs, output):
    x, ctx.spec, ctx.geometry, ctx.target = inputs
    ctx.save_for_backward(x)


def _scatter_backward(ctx, grad):
    x, = ctx.saved_tensors
    return scatter_backward(x, grad, ctx.spec, ctx.geometry, ctx.target), None, None, None


torch.library.register_autograd("wavegen::scatter", _scatter_backward,
                                setup_context=_scatter_setup_context, lib=_LIB)
_register_autocast("scatter")


def _scatter_backward_setup_context(ctx, inputs, output):
    x, grad, ctx.spec, ctx.geometry, ctx.target = inputs
    ctx.save_for_backward(x, grad)


def _scatter_double_backward(ctx, grad_of_grad):
    """The backward's gradient, from the composed network: the gradient of <J(x)^T g, v>
    with respect to x and g, where J(x)^T g is what the generated backward computes."""
    x, grad = ctx.saved_tensors
    with torch.enable_grad():
        x, grad = x.detach().requires_grad_(), grad.detach().requires_grad_()
        out = composed_scatter(x, ctx.spec, ctx.geometry, ctx.target)
        gx, = torch.autograd.grad(out, x, grad, create_graph=True)
        dx, dg = torch.autograd.grad(gx, (x, grad), grad_of_grad, allow_unused=True)
    return dx, dg, None, None, None


torch.library.register_autograd("wavegen::scatter_backward", _scatter_double_backward,
                                setup_context=_scatter_backward_setup_context, lib=_LIB)


def composed_scatter(x: torch.Tensor, spec: str, geometry: list[int],
                     target: str) -> torch.Tensor:
    """The scatter2d network of ``spec`` from differentiable ops, path by path as
    plan_scatter defines it: the DTCWT of x for the lowpass chain, a level-1 DTCWT of every
    node (all of a scale's nodes in one call), 2x2 average pooling and biased magnitudes;
    the colour-combined first order takes the magnitude over the channels. The block
    padding of the pytorch_wavelets size rule is an explicit index (the fused kernels read
    through it instead)."""
    plan = from_json(spec)
    spec = plan.spec
    geom = plan.Geometry.unflat(geometry)
    if plan.block_multiple > 1:
        rows, cols = (torch.tensor(i, device=x.device) for i in plan.padding_indices(geom))
        x = x.index_select(2, rows).index_select(3, cols)
    J, b = spec.levels, spec.magbias

    def dtcwt(levels, signal):
        """(yl, [yh_1 .. yh_levels]) of signal."""
        level_json = Spec("dtcwt2d", levels=levels, mode=spec.mode, biort=spec.biort,
                          qshift=spec.qshift or "qshift_a").json
        level_geom = from_json(level_json).geometry_from_signal(tuple(signal.shape[2:]))
        out = run([signal], level_json, level_geom.flat(), target)
        return out[0], out[1:]

    def magnitudes(band, combine):
        """The 6 orientations' magnitudes of (N, C, 6, h, w, 2) bands: (N, C, h, w) each,
        or (N, 1, h, w) combined over C."""
        if combine:
            m = magnitude(band[..., 0], band[..., 1], b, dim=1)
            return [m[:, o:o + 1] for o in range(6)]
        m = magnitude(band[..., 0], band[..., 1], b)
        return [m[:, :, o] for o in range(6)]

    chain = spec.qshift is not None
    nodes = {} if chain else {(): x}
    if chain:
        yl, yh = dtcwt(J, x)
    for s in range(J):
        grown = {}
        if nodes:
            paths = list(nodes)
            low, bands = dtcwt(1, torch.cat([nodes[p] for p in paths], 1))
            low = torch.nn.functional.avg_pool2d(low, 2)
            first = 0
            for p in paths:
                width = nodes[p].shape[1]
                grown[p] = low[:, first:first + width]
                if len(p) < spec.order:
                    band = bands[0][:, first:first + width]
                    for o, m in enumerate(magnitudes(band, spec.combine_colour and not p)):
                        grown[p + ((s + 1, o),)] = m
                first += width
        if chain:
            for o, m in enumerate(magnitudes(yh[s], spec.combine_colour)):
                grown[((s + 1, o),)] = m
            if s + 1 == J:
                grown[()] = torch.nn.functional.avg_pool2d(yl, 2)
        nodes = grown
    return torch.cat([nodes[p] for p in plan.paths], 1)


def _biased_norm(re, im, bias: float, dim: int | None) -> torch.Tensor:
    """sqrt(|z|^2 + bias^2), |z| summed over ``dim`` when given."""
    energy = re * re + im * im
    return torch.sqrt((energy if dim is None else energy.sum(dim)) + bias * bias)


_magnitude = _define("magnitude(Tensor re, Tensor im, float bias, int? dim) -> Tensor",
                     lambda re, im, bias, dim: _biased_norm(re, im, bias, dim) - bias,
                     lambda re, im, bias, dim: torch.empty_like(re if dim is None
                                                                else re.sum(dim)))


def _magnitude_setup_context(ctx, inputs, output):
    re, im, ctx.bias, ctx.dim = inputs
    ctx.save_for_backward(re, im)


def _magnitude_backward(ctx, grad):
    re, im = ctx.saved_tensors
    m = _biased_norm(re, im, ctx.bias, ctx.dim)
    # The phase z / m, with the subgradient 0 where m = 0 (the origin with bias 0).
    scale = torch.where(m > 0, grad / torch.where(m > 0, m, 1), 0)
    scale = scale if ctx.dim is None else scale.unsqueeze(ctx.dim)
    return re * scale, im * scale, None, None


torch.library.register_autograd("wavegen::magnitude", _magnitude_backward,
                                setup_context=_magnitude_setup_context, lib=_LIB)


def magnitude(re: torch.Tensor, im: torch.Tensor, bias: float = 0.0,
              dim: int | None = None) -> torch.Tensor:
    """The biased magnitude ``sqrt(re^2 + im^2 + bias^2) - bias`` (bias >= 0; 0 is the
    plain magnitude |z|); with ``dim``, of the vector along that dimension,
    ``sqrt(sum(re^2 + im^2, dim) + bias^2) - bias``, which ``dim`` leaves. Its gradient is
    ``(re, im) / sqrt(... + bias^2)``, the phase; at the origin with bias 0, where |z| has
    no gradient, it is 0 (the smallest subgradient), so training never sees a NaN."""
    bias = float(bias)
    if not bias >= 0 or bias == float("inf"):
        raise ValueError(f"the magnitude bias must be a finite number >= 0; got {bias!r}")
    if not isinstance(re, torch.Tensor) or not isinstance(im, torch.Tensor) or \
            re.shape != im.shape or re.dtype != im.dtype:
        raise ValueError("magnitude takes real and imaginary tensors of one shape and dtype")
    if dim is not None and not -re.dim() <= dim < re.dim():
        raise ValueError(f"magnitude dim {dim} is out of range for a {re.dim()}-d tensor")
    return _magnitude(re, im, bias, None if dim is None else dim % re.dim())


# -- passes with run-time taps (plan_taps; taps.py composes them) ---------------------------
@functools.lru_cache(maxsize=None)
def _sibling(spec: str, operation: str) -> str:
    """The spec of the pass ``operation`` with the same mode, length and offset."""
    return json.dumps({**json.loads(spec), "operation": operation}, sort_keys=True)


def _pass_fake(x, taps, spec, geometry, target):
    plan = from_json(spec)
    return x.new_empty(plan.output_shape(plan.Geometry.unflat(geometry), [tuple(x.shape)]))


taps_pass = _define("taps_pass(Tensor x, Tensor taps, str spec, int[] geometry, str target) "
                    "-> Tensor",
                    lambda x, taps, spec, geometry, target:
                    _execute([x.contiguous(), taps], spec, geometry, target)[0], _pass_fake)
tap_gradient = _define(
    "tap_gradient(Tensor x, Tensor c, str spec, int[] geometry, str target) -> Tensor",
    lambda x, c, spec, geometry, target:
    _execute([x.contiguous(), c.contiguous()], spec, geometry, target)[0].sum(0),
    lambda x, c, spec, geometry, target:
    x.new_empty((2, json.loads(spec)["length"]), dtype=torch.float64))


def _pass_setup_context(ctx, inputs, output):
    x, taps, ctx.spec, ctx.geometry, ctx.target = inputs
    ctx.save_for_backward(x, taps)


def _pass_backward(ctx, grad):
    """Analysis y = A(taps) x: x's gradient is the adjoint pass of the output's, the taps'
    is the tap gradient of (x, grad). The adjoint pass x = A(taps)^T c: c's gradient is
    the analysis of x's, the taps' the tap gradient of (grad, c)."""
    x, taps = ctx.saved_tensors
    analysis = json.loads(ctx.spec)["operation"] == "analysis"
    other = _sibling(ctx.spec, "adjoint" if analysis else "analysis")
    grad_x = taps_pass(grad, taps, other, ctx.geometry, ctx.target) \
        if ctx.needs_input_grad[0] else None
    grad_taps = None
    if ctx.needs_input_grad[1]:
        signal, coefficients = (x, grad) if analysis else (grad, x)
        grad_taps = tap_gradient(signal, coefficients, _sibling(ctx.spec, "tapgrad"),
                                 ctx.geometry, ctx.target)
    return grad_x, grad_taps, None, None, None


torch.library.register_autograd("wavegen::taps_pass", _pass_backward,
                                setup_context=_pass_setup_context, lib=_LIB)
_register_autocast("taps_pass")


def _tap_gradient_setup_context(ctx, inputs, output):
    x, c, ctx.spec, ctx.geometry, ctx.target = inputs
    ctx.save_for_backward(x, c)


def _tap_gradient_backward(ctx, grad):
    """tap_gradient(x, c) = d<c, A(taps) x>/d taps is bilinear: against weights v it is
    <c, A(v) x>, whose gradients are A(v)^T c (for x) and A(v) x (for c)."""
    x, c = ctx.saved_tensors
    grad = grad.contiguous()
    grad_x = taps_pass(c, grad, _sibling(ctx.spec, "adjoint"), ctx.geometry, ctx.target) \
        if ctx.needs_input_grad[0] else None
    grad_c = taps_pass(x, grad, _sibling(ctx.spec, "analysis"), ctx.geometry, ctx.target) \
        if ctx.needs_input_grad[1] else None
    return grad_x, grad_c, None, None, None


torch.library.register_autograd("wavegen::tap_gradient", _tap_gradient_backward,
                                setup_context=_tap_gradient_setup_context, lib=_LIB)
