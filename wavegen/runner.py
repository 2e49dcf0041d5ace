"""Stage 5 (execution): run a plan's schedule with a compiled module on tensors."""
from __future__ import annotations

import math

import torch

from .plan import Geometry, Plan, tensor_shape


BLOCK = 256          # CUDA threads per block (the emulated target runs the same launch)


def grid_1d(threads: int) -> tuple[int, int]:
    """(blocks, threads per block) for one thread per output on a flat grid."""
    return (threads + BLOCK - 1) // BLOCK, BLOCK




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
        args = [x.data_ptr(), x.stride(0), x.stride(1), *x_size, *geom.lead(j),
                low.data_ptr(), low.stride(0), low.stride(1), *band_args(band),
                planes, lead[1], rq, cq, int(plan.spec.mode == "zero")]
        tiles, threads = k.launch_shape((rq, cq), x_size)
        if planes > 0:
            module.launch(k, args, planes * tiles, threads)

    _, shapes_out = plan.io_shapes(geom, lead)
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
