"""Stage 5 (execution): run a plan's schedule with a compiled module on tensors."""
from __future__ import annotations

import math

import torch

from .plan import Geometry, Plan


def tensor_shape(lead, bands: int, size) -> tuple[int, ...]:
    """User-facing shape of a buffer: (N, C[, 3], *size)."""
    return (*lead, *((bands,) if bands > 1 else ()), *size)


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
        if name in zero:
            tensors[name] = torch.zeros(shape, dtype=dtype, device=device)
        elif poison:
            tensors[name] = torch.full(shape, float("nan"), dtype=dtype, device=device)
        else:
            tensors[name] = torch.empty(shape, dtype=dtype, device=device)
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
            module.launch(step.kernel, args, planes * step.lines * along)
    outputs = []
    for name in sched.outputs:
        b = sched.buffers[name]
        size = b.shape[1:] if plan.ndim == 1 else b.shape
        outputs.append(tensors[name].reshape(tensor_shape(lead, b.bands, size)))
    return outputs
