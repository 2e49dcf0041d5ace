"""Stage 5 (execution): run the program a plan builds for a call (program.py) with an
artifact's compiled kernels, on tensors. One executor serves every family.

A program is built and packed once per artifact, geometry and input layout: each launch's
argument struct is filled from the kernel's declaration when the program is first met, so
a call only allocates, sets each struct's pointer fields from its tensors and launches."""
from __future__ import annotations

from typing import Callable

import torch

from .program import Launch, Program, View


def allocate(shape, dtype: torch.dtype, device, poison: bool) -> torch.Tensor:
    """An output or temporary the kernels overwrite: uninitialised, or NaN with ``poison``
    so that an element a kernel forgets to write shows up in comparisons."""
    if poison:
        return torch.full(shape, float("nan"), dtype=dtype, device=device)
    return torch.empty(shape, dtype=dtype, device=device)


class Record:
    """One launch with its argument struct packed: a call sets the pointer fields, on a
    copy (two threads may run one program), and launches."""
    __slots__ = ("function", "packed", "pointers", "blocks", "threads", "buffers")

    def __init__(self, module, launch: Launch, element_size: int):
        self.function, struct = module.entry(launch.kernel)
        values = launch.values()
        self.packed = struct(*(0 if isinstance(v, View) or v is None else v
                               for v in values.values()))
        self.pointers = [(name, v.buffer, v.offset * element_size)
                         for name, v in values.items() if isinstance(v, View)]
        self.blocks, self.threads = launch.blocks, launch.threads
        # The checked emulation bounds each parameter by the tensor it was given.
        self.buffers = [v.buffer if isinstance(v, View) else None for v in values.values()] \
            if getattr(self.function, "wants_extents", False) else None

    def __call__(self, tensors: dict) -> None:
        packed = type(self.packed).from_buffer_copy(self.packed)
        for field, buffer, offset in self.pointers:
            setattr(packed, field, tensors[buffer].data_ptr() + offset)
        if self.buffers is None:
            self.function(packed, self.blocks, self.threads)
        else:
            self.function(packed, self.blocks, self.threads,
                          [(0, 0) if b is None else (tensors[b].data_ptr(),
                                                     tensors[b].numel() * tensors[b].element_size())
                           for b in self.buffers])


class Executable:
    """A program bound to an artifact: its kernels loaded (compiled together, on every
    core, on first use) and its launches packed."""

    def __init__(self, module, program: Program, element_size: int):
        module.ensure(program.kernels)
        self.inputs, self.outputs = program.inputs, program.outputs
        self.allocations = program.allocations
        self.steps = [Record(module, s, element_size) if isinstance(s, Launch) else s
                      for s in program.steps]

    def __call__(self, inputs: list[torch.Tensor], poison: bool) -> list[torch.Tensor]:
        like = inputs[0]
        tensors = {name: inputs[p] if shape is None else inputs[p].contiguous().view(shape)
                   for p, name, shape in self.inputs}
        for name, shape, zero, dtype in self.allocations:
            dtype = getattr(torch, dtype) if dtype else like.dtype
            tensors[name] = torch.zeros(shape, dtype=dtype, device=like.device) \
                if zero else allocate(shape, dtype, like.device, poison)
        for step in self.steps:
            if isinstance(step, Record):
                step(tensors)
            else:                        # program.Sum
                tensors[step.name] = tensors[step.a.name].view(step.a.shape) + \
                    tensors[step.b.name].view(step.a.shape)
        return [tensors[name].view(shape) for name, shape in self.outputs]


def execute(module, key, build: Callable[[list], Program], inputs: list[torch.Tensor],
            poison: bool) -> list[torch.Tensor]:
    """The outputs of the program ``build(layouts)`` makes for these inputs, where ``key``
    (with the inputs' layouts) names what else determines it."""
    layouts = [(tuple(t.shape), t.stride()) for t in inputs]

    def make():
        return Executable(module, build(layouts), inputs[0].element_size())
    return module.programs.get((key, tuple(layouts)), make)(inputs, poison)
