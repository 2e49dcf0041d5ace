"""Stage 5 (execution): run a plan's schedule with a compiled module on tensors."""
from __future__ import annotations

import math

import torch

from .plan import Geometry, Plan, tensor_shape


BLOCK = 256          # CUDA threads per block (the emulated target runs the same launch)


def grid_1d(threads: int) -> tuple[int, int]:
    """(blocks, threads per block) for one thread per output on a flat grid."""
    return (threads + BLOCK - 1) // BLOCK, BLOCK




# The magnitude-gradient view of a level kernel that reads none.
NO_GRADIENT = [0] * 6


def allocate(shape, like: torch.Tensor, poison: bool) -> torch.Tensor:
    """An output or temporary the kernels overwrite: uninitialised, or NaN with ``poison``
    so that an element a kernel forgets to write shows up in comparisons."""
    if poison:
        return torch.full(shape, float("nan"), dtype=like.dtype, device=like.device)
    return torch.empty(shape, dtype=like.dtype, device=like.device)


def execute(module, plan: Plan, geom: Geometry, inputs: list[torch.Tensor],
            poison: bool = False) -> list[torch.Tensor]:
    """Allocate outputs and temporaries, launch every step, return the outputs.

    ``poison`` fills what kernels should overwrite with NaN, so that an element a kernel
    forgets to write shows up in comparisons (used by the emulated target).
    """
    sched = plan.schedule(geom)
    lead = tuple(inputs[0].shape[:2])          # (N, C): every input and output has them
    planes = math.prod(lead)
    dtype, device = inputs[0].dtype, inputs[0].device
    tensors = {}
    for name, tensor in zip(sched.inputs, inputs):
        b = sched.buffers[name]
        tensors[name] = tensor.contiguous().reshape(planes, b.bands, *b.shape)
    zero = sched.zero_filled
    for name, b in sched.buffers.items():
        if name in tensors:
            continue
        shape = (planes, b.bands, *b.shape)
        tensors[name] = torch.zeros(shape, dtype=dtype, device=device) if name in zero \
            else allocate(shape, inputs[0], poison)
    if planes > 0:
        module.ensure(step.kernel for step in sched.steps)
        for step in sched.steps:
            args = []
            for view in step.inputs + step.outputs:
                tensor, b = tensors[view.buffer], sched.buffers[view.buffer]
                plane = b.shape[0] * b.shape[1]
                args += [tensor.data_ptr() + view.band * plane * tensor.element_size(),
                         b.bands * plane, b.shape[1]]
            args += [planes, step.lines, step.n, step.k]
            along = step.k if step.kernel.direction == "analysis" else step.n
            module.launch(step.kernel, args, *grid_1d(planes * step.lines * along))
    outputs = []
    for name in sched.outputs:
        b = sched.buffers[name]
        size = b.shape[1:] if plan.ndim == 1 else b.shape
        outputs.append(tensors[name].reshape(tensor_shape(lead, b.bands, size)))
    return outputs


def _plane_view(t: torch.Tensor, planes: int) -> torch.Tensor:
    return t.contiguous().reshape(planes, *t.shape[-2:])


def execute_dtcwt(module, plan, geom, inputs: list[torch.Tensor],
                  poison: bool = False) -> list[torch.Tensor]:
    """Run the level kernels of a DTCWT plan (plan_dtcwt). Band tensors are read and
    written through their strides, in whatever layout o_dim/ri_dim give them."""
    lead = tuple(inputs[0].shape[:2])
    planes = math.prod(lead)

    def new(shape):
        return allocate(shape, inputs[0], poison)

    J = len(geom.bands)
    scales = plan.spec.include_scale or (False,) * J
    o, ri = plan.spec.o_dim, plan.spec.ri_dim
    ndim, cdim, hdim, wdim = plan.band_dims()

    def band_args(t):
        if t.dim() != 6:                    # skipped band
            return [0] * 7
        s = t.stride()
        return [t.data_ptr(), s[ndim], s[cdim], s[o], s[ri], s[hdim], s[wdim]]

    def launch(step, x, x_size, low, band):
        j, k = step.level, step.kernel
        rq, cq = geom.bands[j - 1]
        args = [x.data_ptr(), lead[1] * x.stride(0), x.stride(0), x.stride(1), *x_size,
                *geom.lead(j),
                low.data_ptr(), lead[1] * low.stride(0), low.stride(0), low.stride(1),
                *band_args(band), *NO_GRADIENT, planes, lead[1], rq, cq,
                int(plan.spec.mode == "zero"), 0.0]
        tiles, threads = k.launch_shape((rq, cq), x_size)
        if planes > 0:
            module.launch(k, args, planes * tiles, threads)

    _, shapes_out = plan.io_shapes(geom, lead)
    if planes > 0:
        module.ensure(step.kernel for step in plan.steps(geom))
    if plan.takes_signal:
        outputs = [new(s) for s in shapes_out]
        yl, bands = outputs[0], outputs[1:J + 1]
        scale_out = iter(outputs[J + 1:])
        x, size = _plane_view(inputs[0], planes), geom.signal
        for step in plan.steps(geom):
            j = step.level
            low = yl if j == J else (next(scale_out) if scales[j - 1]
                                     else new((*lead, *geom.lowpass(j))))
            low = low.view(planes, *low.shape[-2:])
            launch(step, x, size, low, bands[j - 1])
            x, size = low, geom.lowpass(j)
        return outputs
    bands = inputs[1:J + 1]
    scale_in = {j: t for j, t in zip([j for j in range(1, J) if scales[j - 1]],
                                     inputs[J + 1:])}
    low = _plane_view(inputs[0], planes)
    for step in plan.steps(geom):
        j = step.level
        if j in scale_in:                   # this lowpass was also an output
            low = low + _plane_view(scale_in[j], planes)
        size = geom.level_input(j)
        x = new((planes, *size))
        launch(step, x, size, low, bands[j - 1])
        low = x
    return [low.reshape(*lead, *geom.signal)]


class _ScatterRun:
    """The buffers of one scatter2d call (plan_scatter) and the arguments of its launches.
    Buffers are contiguous (N, paths, C, h, w) tensors, so a run of paths is a view with
    batch stride paths * C * h * w and channel stride h * w."""

    def __init__(self, module, plan, geom, x: torch.Tensor, poison: bool):
        self.module, self.plan, self.geom, self.poison = module, plan, geom, poison
        self.lead = tuple(x.shape[:2])
        self.x = x
        self.zero = int(plan.spec.mode == "zero")

    def new(self, name: str) -> torch.Tensor:
        return allocate(self.plan.buffer_shape(name, self.geom, self.lead), self.x, self.poison)

    def forward(self, launches=None) -> dict[str, torch.Tensor]:
        """x and the buffers ``launches`` (default: all, so the output too) write."""
        buffers = {"x": self.x.contiguous().view(self.plan.buffer_shape("x", self.geom,
                                                                          self.lead))}
        launches = self.plan.launches if launches is None else launches
        self.module.ensure(launch.kernel for launch in launches)
        for launch in launches:
            for name in (launch.low[0], launch.band and launch.band[0]):
                if name and name not in buffers:
                    buffers[name] = self.new(name)
            self.launch(launch, launch.kernel, buffers, buffers)
        return buffers

    def view(self, t: torch.Tensor, path: int, o_stride: int = 0) -> list:
        """(pointer, batch, channel[, orientation], row, column strides) of buffer t from
        path ``path`` on; an orientation advances ``o_stride`` paths."""
        _, paths, c, h, w = t.shape
        plane = h * w
        ptr = t.data_ptr() + path * c * plane * t.element_size()
        return [ptr, paths * c * plane, plane] + ([o_stride * c * plane] if o_stride else []) \
            + [w, 1]

    def launch(self, launch, kernel, source: dict, targets: dict, complex_band=None,
               gradient: dict | None = None) -> None:
        """Run ``kernel`` for ``launch``: x from ``source``, lowpass and magnitudes from or
        to ``targets``; the backward kernels also take the complex band gradients
        ``complex_band`` (N, count * C, 6, 2, h, w) and the magnitude gradients
        (``gradient``)."""
        geom, n, c = self.geom, *self.lead
        src = source[launch.source]
        x_view = self.view(src, launch.first)
        size = tuple(src.shape[-2:])
        rq, cq = geom.bands[launch.scale]
        lead = geom.lead(launch.level) if launch.reads_signal else (0, 0)
        lo_view = self.view(targets[launch.low[0]], launch.low[1])[:4] \
            if kernel.lowpass != "none" else [0] * 4
        if kernel.bands == "magnitude" and launch.band is not None:
            p, o = launch.band[1:]
            pointer, bn, bc, bo, br, bw = self.view(targets[launch.band[0]], p, o)
            band_view = [pointer, bn, bc, bo, 0, br, bw]
        elif complex_band is not None:
            s = complex_band.stride()
            band_view = [complex_band.data_ptr(), *s]
        else:
            band_view = [0] * 7
        grad_view = self.view(gradient[launch.band[0]], *launch.band[1:]) \
            if kernel.bands == "magnitude_grad" else NO_GRADIENT
        args = [*x_view[:4], *size, *lead, *lo_view,
                *band_view, *grad_view, n * launch.count * c, launch.count * c, rq, cq,
                self.zero, float(self.plan.spec.magbias)]
        blocks, threads = kernel.launch_shape((rq, cq), size)
        if n * c > 0:
            self.module.launch(kernel, args, n * launch.count * c * blocks, threads)

    def backward(self, grad_out: torch.Tensor) -> torch.Tensor:
        """The gradient of x, recomputing the forward's buffers from x."""
        from .plan_scatter import backward_kernels
        # The recompute's kernels and the backward's, compiled together.
        self.module.ensure([launch.kernel for launch in self.plan.recomputed] +
                           [k for launch in self.plan.launches
                            for k in backward_kernels(launch.kernel) if k is not None])
        buffers = self.forward(self.plan.recomputed)
        grads = {name: self.new(name) for name in self.plan.buffers if name != "out"}
        grads["out"] = grad_out.contiguous().view(self.plan.buffer_shape("out", self.geom,
                                                                         self.lead))
        n, c = self.lead
        for launch in reversed(self.plan.launches):
            magnitude_grad, adjoint = backward_kernels(launch.kernel)
            band = None
            if magnitude_grad is not None:
                # Real and imaginary planes apart, so that both kernels run unit-stride.
                band = allocate((n, launch.count * c, 6, 2, *self.geom.bands[launch.scale]),
                                self.x, self.poison)
                self.launch(launch, magnitude_grad, buffers, buffers, band, grads)
            self.launch(launch, adjoint, grads, grads, band)
        return grads["x"].view(self.x.shape)


def execute_scatter(module, plan, geom, inputs: list[torch.Tensor],
                    poison: bool = False) -> list[torch.Tensor]:
    """scatter2d: [x] -> [the scattering coefficients (N, paths * C, h, w)]."""
    out = _ScatterRun(module, plan, geom, inputs[0], poison).forward()["out"]
    n, paths, c, h, w = out.shape
    return [out.view(n, paths * c, h, w)]


def scatter_backward(module, plan, geom, x: torch.Tensor, grad: torch.Tensor,
                     poison: bool = False) -> torch.Tensor:
    return _ScatterRun(module, plan, geom, x, poison).backward(grad)
