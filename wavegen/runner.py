"""Stage 5 (execution): run a plan's schedule with a compiled module on tensors.

A call's work for one geometry and input layout is worked out once, as a *program*: the
buffers it allocates and its launches, each a *launch record* whose argument struct is
packed when the program is built. A call then allocates, sets each record's pointer fields
from its tensors and launches; programs are kept per artifact, so a training loop meets
the argument arithmetic once per input size."""
from __future__ import annotations

import dataclasses
import math

import torch

from .plan import Geometry, Plan, tensor_shape


BLOCK = 256          # CUDA threads per block (the emulated target runs the same launch)

# The magnitude-gradient view of a level kernel that reads none.
NO_GRADIENT = [0] * 6


def grid_1d(threads: int) -> tuple[int, int]:
    """(blocks, threads per block) for one thread per output on a flat grid."""
    return (threads + BLOCK - 1) // BLOCK, BLOCK


def allocate(shape, like: torch.Tensor, poison: bool) -> torch.Tensor:
    """An output or temporary the kernels overwrite: uninitialised, or NaN with ``poison``
    so that an element a kernel forgets to write shows up in comparisons."""
    if poison:
        return torch.full(shape, float("nan"), dtype=like.dtype, device=like.device)
    return torch.empty(shape, dtype=like.dtype, device=like.device)


@dataclasses.dataclass(frozen=True)
class Pointer:
    """A pointer argument: ``offset`` elements into the call's tensor ``buffer``."""
    buffer: str
    offset: int = 0


@dataclasses.dataclass(frozen=True)
class Ref:
    """A tensor of a call, by name, with the shape and strides it will have."""
    name: str
    shape: tuple[int, ...]
    strides: tuple[int, ...]

    @staticmethod
    def contiguous(name: str, shape) -> "Ref":
        shape = tuple(shape)
        strides = tuple(math.prod(shape[d + 1:]) for d in range(len(shape)))
        return Ref(name, shape, strides)

    def at(self, offset: int = 0) -> Pointer:
        return Pointer(self.name, offset)

    def view(self, *shape) -> "Ref":
        """Another shape of a contiguous tensor."""
        return Ref.contiguous(self.name, shape)


class Record:
    """One launch, its argument struct (laid out from the kernel's parameter declaration)
    packed once: a call sets the pointer fields, on a copy (two threads may run one
    program), and launches."""
    __slots__ = ("function", "packed", "pointers", "blocks", "threads")

    def __init__(self, module, kernel, args: list, blocks: int, threads: int,
                 element_size: int):
        if len(args) != len(kernel.params):
            raise AssertionError(f"{kernel.name} takes {len(kernel.params)} arguments, the "
                                 f"runner gave {len(args)}")
        self.function, struct = module.entry(kernel)
        self.packed = struct(*(0 if isinstance(a, Pointer) else a for a in args))
        self.pointers = [(p.name, a.buffer, a.offset * element_size)
                         for p, a in zip(kernel.params, args) if isinstance(a, Pointer)]
        self.blocks, self.threads = blocks, threads

    def __call__(self, tensors: dict) -> None:
        packed = type(self.packed).from_buffer_copy(self.packed)
        for field, buffer, offset in self.pointers:
            setattr(packed, field, tensors[buffer].data_ptr() + offset)
        self.function(packed, self.blocks, self.threads)


class Program:
    """A call's inputs, allocations, steps (launch records, and the odd torch step between
    them) and outputs, by name."""

    def __init__(self, module, element_size: int):
        self.module, self.element_size = module, element_size
        self.inputs = []          # (position, name, shape: None keeps the given layout)
        self.allocations = []     # (name, shape, zero-filled)
        self.steps = []           # callables on the call's tensors, in order
        self.outputs = []         # (name, shape)

    def input(self, position: int, tensor: torch.Tensor, shape=None) -> Ref:
        """Input ``position``: made contiguous and viewed as ``shape``, or as given."""
        name = f"input{position}"
        self.inputs.append((position, name, None if shape is None else tuple(shape)))
        if shape is None:
            return Ref(name, tuple(tensor.shape), tuple(tensor.stride()))
        return Ref.contiguous(name, shape)

    def buffer(self, name: str, shape, zero: bool = False) -> Ref:
        self.allocations.append((name, tuple(shape), zero))
        return Ref.contiguous(name, shape)

    def launch(self, kernel, args: list, blocks: int, threads: int) -> None:
        self.steps.append(Record(self.module, kernel, args, blocks, threads,
                                 self.element_size))

    def add(self, name: str, a: Ref, b: Ref) -> Ref:
        """``name`` = a + b, both contiguous of one shape."""
        def step(tensors):
            tensors[name] = tensors[a.name].view(a.shape) + tensors[b.name].view(a.shape)
        self.steps.append(step)
        return Ref.contiguous(name, a.shape)

    def output(self, ref: Ref, shape) -> None:
        self.outputs.append((ref.name, tuple(shape)))

    def __call__(self, inputs: list[torch.Tensor], poison: bool) -> list[torch.Tensor]:
        like = inputs[0]
        tensors = {name: inputs[p] if shape is None else inputs[p].contiguous().view(shape)
                   for p, name, shape in self.inputs}
        for name, shape, zero in self.allocations:
            tensors[name] = torch.zeros(shape, dtype=like.dtype, device=like.device) \
                if zero else allocate(shape, like, poison)
        for step in self.steps:
            step(tensors)
        return [tensors[name].view(shape) for name, shape in self.outputs]


def layout_key(inputs: list[torch.Tensor]) -> tuple:
    return tuple((tuple(t.shape), t.stride()) for t in inputs)


def run(module, build, key, inputs: list[torch.Tensor], poison: bool) -> list[torch.Tensor]:
    """The outputs of the program that ``build(program)`` writes for this call's ``key``."""
    def make():
        program = Program(module, inputs[0].element_size())
        build(program)
        return program
    return module.programs.get(key, make)(inputs, poison)


# -- the DWT ------------------------------------------------------------------------------
def execute(module, plan: Plan, geom: Geometry, inputs: list[torch.Tensor],
            poison: bool = False) -> list[torch.Tensor]:
    """Run a DWT plan's schedule: 1-D passes over strided (planes, rows, cols) views."""
    lead = tuple(inputs[0].shape[:2])          # (N, C): every input and output has them
    planes = math.prod(lead)

    def build(program: Program):
        sched = plan.schedule(geom)
        refs = {}
        for position, name in enumerate(sched.inputs):
            b = sched.buffers[name]
            refs[name] = program.input(position, inputs[position], (planes, b.bands, *b.shape))
        for name, b in sched.buffers.items():
            if name not in refs:
                refs[name] = program.buffer(name, (planes, b.bands, *b.shape),
                                            zero=name in sched.zero_filled)
        if planes > 0:
            module.ensure(step.kernel for step in sched.steps)
            for step in sched.steps:
                args = []
                for view in step.inputs + step.outputs:
                    b = sched.buffers[view.buffer]
                    plane = b.shape[0] * b.shape[1]
                    args += [refs[view.buffer].at(view.band * plane), b.bands * plane,
                             b.shape[1]]
                args += [planes, step.lines, step.n, step.k]
                along = step.k if step.kernel.direction == "analysis" else step.n
                program.launch(step.kernel, args, *grid_1d(planes * step.lines * along))
        for name in sched.outputs:
            b = sched.buffers[name]
            size = b.shape[1:] if plan.ndim == 1 else b.shape
            program.output(refs[name], tensor_shape(lead, b.bands, size))
    return run(module, build, (tuple(geom.flat()), layout_key(inputs)), inputs, poison)


# -- the DTCWT ----------------------------------------------------------------------------
def execute_dtcwt(module, plan, geom, inputs: list[torch.Tensor],
                  poison: bool = False) -> list[torch.Tensor]:
    """Run the level kernels of a DTCWT plan (plan_dtcwt). Band tensors are read and
    written through their strides, in whatever layout o_dim/ri_dim give them."""
    lead = tuple(inputs[0].shape[:2])
    planes = math.prod(lead)
    J = len(geom.bands)
    scales = plan.spec.include_scale or (False,) * J
    o, ri = plan.spec.o_dim, plan.spec.ri_dim
    ndim, cdim, hdim, wdim = plan.band_dims()

    def band_args(band: Ref | None):
        if band is None:                       # skipped band
            return [0] * 7
        s = band.strides
        return [band.at(), s[ndim], s[cdim], s[o], s[ri], s[hdim], s[wdim]]

    def build(program: Program):
        def launch(step, x: Ref, x_size, low: Ref, band: Ref | None):
            j, k = step.level, step.kernel
            rq, cq = geom.bands[j - 1]
            args = [x.at(), lead[1] * x.strides[0], x.strides[0], x.strides[1], *x_size,
                    *geom.lead(j),
                    low.at(), lead[1] * low.strides[0], low.strides[0], low.strides[1],
                    *band_args(band), *NO_GRADIENT, planes, lead[1], rq, cq,
                    int(plan.spec.mode == "zero"), 0.0]
            tiles, threads = k.launch_shape((rq, cq), x_size)
            if planes > 0:
                program.launch(k, args, planes * tiles, threads)

        if planes > 0:
            module.ensure(step.kernel for step in plan.steps(geom))
        _, shapes_out = plan.io_shapes(geom, lead)
        if plan.takes_signal:
            outputs = [program.buffer(f"output{i}", s) for i, s in enumerate(shapes_out)]
            for ref in outputs:
                program.output(ref, ref.shape)
            yl, bands = outputs[0], outputs[1:J + 1]
            scale_out = iter(outputs[J + 1:])
            x = program.input(0, inputs[0], (planes, *geom.signal))
            size = geom.signal
            for step in plan.steps(geom):
                j = step.level
                low = yl if j == J else (next(scale_out) if scales[j - 1] else
                                         program.buffer(f"low{j}", (planes, *geom.lowpass(j))))
                low = low.view(planes, *low.shape[-2:])
                band = bands[j - 1]
                launch(step, x, size, low, band if len(band.shape) == 6 else None)
                x, size = low, geom.lowpass(j)
            return
        bands = [program.input(1 + j, band) if band.dim() == 6 else None
                 for j, band in enumerate(inputs[1:J + 1])]
        scale_in = {j: program.input(J + 1 + i, t, (planes, *t.shape[-2:])) for i, (j, t) in
                    enumerate(zip([j for j in range(1, J) if scales[j - 1]], inputs[J + 1:]))}
        low = program.input(0, inputs[0], (planes, *inputs[0].shape[-2:]))
        for step in plan.steps(geom):
            j = step.level
            if j in scale_in:                   # this lowpass was also an output
                low = program.add(f"sum{j}", low, scale_in[j])
            size = geom.level_input(j)
            x = program.buffer(f"signal{j}", (planes, *size))
            launch(step, x, size, low, bands[j - 1])
            low = x
        program.output(low, (*lead, *geom.signal))
    return run(module, build, (tuple(geom.flat()), layout_key(inputs)), inputs, poison)


# -- the scattering network ---------------------------------------------------------------
class _ScatterCall:
    """The program of one scatter2d call (plan_scatter), forward or backward. Buffers are
    contiguous (N, paths, C, h, w) tensors, so a run of paths is a view with batch stride
    paths * C * h * w and channel stride h * w."""

    def __init__(self, program: Program, module, plan, geom, lead):
        self.program, self.module, self.plan, self.geom = program, module, plan, geom
        self.lead = lead
        self.zero = int(plan.spec.mode == "zero")

    def new(self, name: str, prefix: str = "") -> Ref:
        return self.program.buffer(prefix + name,
                                   self.plan.buffer_shape(name, self.geom, self.lead))

    def forward(self, x: Ref, launches=None) -> dict[str, Ref]:
        """x and the buffers ``launches`` (default: all, so the output too) write."""
        buffers = {"x": x}
        launches = self.plan.launches if launches is None else launches
        self.module.ensure(launch.kernel for launch in launches)
        for launch in launches:
            for name in (launch.low[0], launch.band and launch.band[0]):
                if name and name not in buffers:
                    buffers[name] = self.new(name)
            self.launch(launch, launch.kernel, buffers, buffers)
        return buffers

    @staticmethod
    def view(t: Ref, path: int, o_stride: int = 0) -> list:
        """(pointer, batch, channel[, orientation], row, column strides) of buffer t from
        path ``path`` on; an orientation advances ``o_stride`` paths."""
        _, paths, c, h, w = t.shape
        plane = h * w
        return [t.at(path * c * plane), paths * c * plane, plane] + \
            ([o_stride * c * plane] if o_stride else []) + [w, 1]

    def launch(self, launch, kernel, source: dict, targets: dict,
               complex_band: Ref | None = None, gradient: dict | None = None) -> None:
        """Launch ``kernel`` for ``launch``: x from ``source``, lowpass and magnitudes from
        or to ``targets``; the backward kernels also take the complex band gradients
        ``complex_band`` (N, count * C, 6, 2, h, w) and the magnitude gradients
        (``gradient``)."""
        geom, (n, c) = self.geom, self.lead
        src = source[launch.source]
        x_view = self.view(src, launch.first)
        size = src.shape[-2:]
        rq, cq = geom.bands[launch.scale]
        lead = geom.lead(launch.level) if launch.reads_signal else (0, 0)
        lo_view = self.view(targets[launch.low[0]], launch.low[1])[:4] \
            if kernel.lowpass != "none" else [0] * 4
        if kernel.bands == "magnitude" and launch.band is not None:
            p, o = launch.band[1:]
            pointer, bn, bc, bo, br, bw = self.view(targets[launch.band[0]], p, o)
            band_view = [pointer, bn, bc, bo, 0, br, bw]
        elif complex_band is not None:
            band_view = [complex_band.at(), *complex_band.strides]
        else:
            band_view = [0] * 7
        grad_view = self.view(gradient[launch.band[0]], *launch.band[1:]) \
            if kernel.bands == "magnitude_grad" else NO_GRADIENT
        args = [*x_view[:4], *size, *lead, *lo_view,
                *band_view, *grad_view, n * launch.count * c, launch.count * c, rq, cq,
                self.zero, float(self.plan.spec.magbias)]
        blocks, threads = kernel.launch_shape((rq, cq), size)
        if n * c > 0:
            self.program.launch(kernel, args, n * launch.count * c * blocks, threads)

    def backward(self, x: Ref, grad_out: Ref) -> Ref:
        """The gradient of x, recomputing the forward's buffers from x."""
        from .plan_scatter import backward_kernels
        # The recompute's kernels and the backward's, compiled together.
        self.module.ensure([launch.kernel for launch in self.plan.recomputed] +
                           [k for launch in self.plan.launches
                            for k in backward_kernels(launch.kernel) if k is not None])
        buffers = self.forward(x, self.plan.recomputed)
        grads = {name: self.new(name, "grad of ") for name in self.plan.buffers
                 if name != "out"}
        grads["out"] = grad_out
        n, c = self.lead
        for index, launch in enumerate(reversed(self.plan.launches)):
            magnitude_grad, adjoint = backward_kernels(launch.kernel)
            band = None
            if magnitude_grad is not None:
                # Real and imaginary planes apart, so that both kernels run unit-stride.
                band = self.program.buffer(f"complex band {index}",
                                           (n, launch.count * c, 6, 2,
                                            *self.geom.bands[launch.scale]))
                self.launch(launch, magnitude_grad, buffers, buffers, band, grads)
            self.launch(launch, adjoint, grads, grads, band)
        return grads["x"]


def execute_scatter(module, plan, geom, inputs: list[torch.Tensor],
                    poison: bool = False) -> list[torch.Tensor]:
    """scatter2d: [x] -> [the scattering coefficients (N, paths * C, h, w)]."""
    x = inputs[0]

    def build(program: Program):
        call = _ScatterCall(program, module, plan, geom, tuple(x.shape[:2]))
        out = call.forward(program.input(0, x, plan.buffer_shape("x", geom, x.shape[:2])))
        n, paths, c, h, w = out["out"].shape
        program.output(out["out"], (n, paths * c, h, w))
    return run(module, build, ("forward", tuple(geom.flat()), layout_key(inputs)), inputs,
               poison)


def scatter_backward(module, plan, geom, x: torch.Tensor, grad: torch.Tensor,
                     poison: bool = False) -> torch.Tensor:
    def build(program: Program):
        lead = tuple(x.shape[:2])
        call = _ScatterCall(program, module, plan, geom, lead)
        grad_x = call.backward(program.input(0, x, plan.buffer_shape("x", geom, lead)),
                               program.input(1, grad, plan.buffer_shape("out", geom, lead)))
        program.output(grad_x, x.shape)
    return run(module, build, ("backward", tuple(geom.flat()), layout_key([x, grad])),
               [x, grad], poison)[0]
