"""The plan of one pass with run-time taps: filters that change (learnable filter banks).

A transform whose taps are tensors is composed of single passes along one axis of a
tensor of any rank (taps.py composes levels and axes; autograd chains them), each a torch
op that runs one of three kernels with the taps as a run-time parameter, so that new tap
values never recompile:

* 'analysis': x (..., N, ...) -> (2, ..., K, ...), the lowpass and highpass coefficients
  of the axis stacked in front (plan.PassKernel);
* 'adjoint': (2, ..., K, ...) -> (..., N, ...), its exact transpose (synthesis is the
  adjoint of zero-mode or periodization analysis with the synthesis taps, as in plan.py);
* 'tapgrad': x and coefficient gradients -> the taps' gradient (plan.TapGradKernel), in
  two stages: one row of sums per line, then their sum.

The filter length and the mode are compiled in (they shape the code); the axis position
and the sizes are run-time. The op's axis is the tensor's dimension ``axis``: the last one
runs the row kernels ('w'), any other the column kernels ('h') over (before, N, after).
"""
from __future__ import annotations

import dataclasses
import json
import math
from typing import Sequence

from .plan import PassKernel, TapGradKernel
from .program import Program, grid_1d

OPERATIONS = ("analysis", "adjoint", "tapgrad")


@dataclasses.dataclass(frozen=True)
class PassSpec:
    """What a pass op runs; its JSON is the ops' spec string."""
    operation: str
    mode: str
    length: int
    offset: int

    @property
    def json(self) -> str:
        return json.dumps(dataclasses.asdict(self), sort_keys=True)

    def readable_name(self) -> str:
        return f"{self.operation}_{self.mode}_L{self.length}"


@dataclasses.dataclass(frozen=True)
class PassGeometry:
    """The axis a pass runs along, its signal length N and coefficient length K."""
    axis: int
    n: int
    k: int

    def flat(self) -> list[int]:
        return [self.axis, self.n, self.k]

    @staticmethod
    def unflat(values: Sequence[int], ndim: int = 1) -> "PassGeometry":
        return PassGeometry(*(int(v) for v in values))


class PassPlan:
    family = "pass"
    kernel_templates = "dwt"
    ndim = 1
    Geometry = PassGeometry

    def __init__(self, spec: PassSpec):
        self.spec = spec

        def kernel(axis):
            if spec.operation == "tapgrad":
                return TapGradKernel(axis, spec.mode, spec.offset, spec.length)
            return PassKernel(spec.operation, axis, (), (), spec.mode, spec.offset,
                              runtime_taps=spec.length)
        self.axis_kernels = {axis: kernel(axis) for axis in ("h", "w")}
        self.library_kernels = self.kernels = {k.name: k for k in self.axis_kernels.values()}
        self.library_json, self.library_name = spec.json, spec.readable_name()

    @staticmethod
    def split(shape, axis: int) -> tuple[int, int]:
        """(planes before the axis, lines after it) of a tensor's shape."""
        return math.prod(shape[:axis]), math.prod(shape[axis + 1:])

    def output_shape(self, geom: PassGeometry, shapes) -> tuple[int, ...]:
        """The shape of an analysis or adjoint pass's output for inputs of these shapes."""
        a = geom.axis
        if self.spec.operation == "analysis":
            s = shapes[0]
            return (2, *s[:a], geom.k, *s[a + 1:])
        s = shapes[0][1:]
        return (*s[:a], geom.n, *s[a + 1:])

    def program(self, geom: PassGeometry, layouts) -> Program:
        """Inputs: [x, taps] (analysis), [coefficients, taps] (adjoint) or [x,
        coefficients] (tapgrad), read contiguous."""
        program = Program(layouts)
        op, n, k = self.spec.operation, geom.n, geom.k
        signal_shape = self.output_shape(geom, [layouts[0][0]]) if op == "adjoint" \
            else layouts[0][0]
        planes, lines = self.split(signal_shape, geom.axis)
        kernel = self.axis_kernels["h" if lines > 1 else "w"]

        def view(ref, length, band=0):
            """Band ``band`` of a (bands, planes, length, lines) tensor, as a kernel view."""
            return ref.at(band * planes * length * lines, sp=length * lines,
                          sr=lines if lines > 1 else length)
        sizes = dict(P=planes, M=lines, N=n, K=k)
        if op == "adjoint":
            coefficients, taps = program.input(0, (2 * planes * k * lines,)), program.input(1)
            out = program.buffer("out", (planes * n * lines,))
            program.launch(kernel, *kernel.grid(planes, lines, n), in0=view(coefficients, k),
                           in1=view(coefficients, k, 1), out0=view(out, n), taps=taps.at(),
                           **sizes)
        elif op == "analysis":
            signal, taps = program.input(0, (planes * n * lines,)), program.input(1)
            out = program.buffer("out", (2 * planes * k * lines,))
            program.launch(kernel, *kernel.grid(planes, lines, k), in0=view(signal, n),
                           out0=view(out, k), out1=view(out, k, 1), taps=taps.at(), **sizes)
        else:
            signal = program.input(0, (planes * n * lines,))
            coefficients = program.input(1, (2 * planes * k * lines,))
            out = program.buffer("grad", (planes * lines, 2, self.spec.length),
                                 dtype="float64")
            program.launch(kernel, *grid_1d(planes * lines), in0=view(signal, n),
                           in1=view(coefficients, k), in2=view(coefficients, k, 1),
                           grad=out.at(), **sizes)
            program.output(out, out.shape)
            return program
        program.output(out, self.output_shape(geom, [layouts[0][0]]))
        return program
