"""The kernel interface and the program form every plan emits (pure data, part of the plan
stage).

A kernel's *declaration* is one list of named parameters, each compile-time or run-time:

* compile-time: the kernel record's fields (taps, mode, structure, tile shape). They are
  what the templates place and unroll, and all that the cache key holds of the kernel;
* run-time: ``params``, pointers to elements (``in``/``out``), 64-bit ints (``int``: sizes,
  strides, flags) and doubles (``real``). The template signatures, the host and CUDA
  argument structs and the runner's packing all read this list.

A call of a transform is a *program*: its inputs, the buffers it allocates, its steps
(launches of kernels, with every run-time argument given by name) and its outputs. Plans
build programs from a geometry and the inputs' layouts; ``runner.py`` packs each launch's
arguments once, from the declaration, and runs programs. A launch that names an argument
the kernel does not declare, or omits one it does, fails when the program is built.
"""
from __future__ import annotations

import dataclasses
import math
from typing import Sequence

BLOCK = 256          # CUDA threads per block of the flat one-thread-per-output kernels
# CUDA's launch limits: blocks along a grid's x (every launch uses x alone, so that any
# number of planes fits: y and z stop at 65,535) and threads per block. Kernels index in
# 64 bits (wg_int), so a launch may cover more than 2^31 outputs.
MAX_BLOCKS, MAX_THREADS = 2**31 - 1, 1024


@dataclasses.dataclass(frozen=True)
class Param:
    """One parameter of a generated kernel. Run-time kinds: 'in' (a pointer to elements it
    reads), 'out' (to elements it writes), 'taps' (to float64 taps it reads), 'tap_grad'
    (to float64 sums it writes), 'int' (a 64-bit size, stride or flag), 'real' (a double); a stride of a view names its pointer (``of``) and which stride it is
    (``stride``). Kind 'compiled': a value the source is generated for (``value``)."""
    name: str
    kind: str
    of: str | None = None
    stride: str | None = None
    value: object = None

    @property
    def compiled(self) -> bool:
        return self.kind == "compiled"


def view_params(name: str, kind: str, strides: Sequence[str], prefix: str | None = None
                ) -> tuple[Param, ...]:
    """A strided view: its pointer, then its strides, named ``<prefix>_<stride>`` (the
    prefix defaults to the view's name)."""
    return (Param(name, kind),) + tuple(Param(f"{prefix or name}_{s}", "int", of=name, stride=s)
                                        for s in strides)


class Kernel:
    """Base of the plans' kernel records (frozen dataclasses with a ``name`` and a run-time
    ``params`` tuple): their fields are the compile-time parameters."""

    @property
    def declaration(self) -> tuple[Param, ...]:
        return tuple(Param(f.name, "compiled", value=getattr(self, f.name))
                     for f in dataclasses.fields(self)) + self.params

    @property
    def compiled(self) -> dict:
        """The compile-time parameters' values as JSON data: a kernel's identity in source
        keys and cache keys (what is compiled in, and nothing else)."""
        return {p.name: dataclasses.asdict(p.value) if dataclasses.is_dataclass(p.value)
                else p.value for p in self.declaration if p.compiled}

    @property
    def views(self) -> tuple[str, ...]:
        """The names of its pointer parameters."""
        return tuple(p.name for p in self.params if p.kind in ("in", "out"))

    @property
    def threads_per_block(self) -> int:
        """The CUDA block size its launches use (flat one-thread-per-output kernels)."""
        return BLOCK

    # Why a kernel may run below MIN_OCCUPANCY on some architecture, or spill registers
    # (None: it must not; wavegen.resources checks every kernel against this).
    resources_note = None


# The fraction of an SM's warps a kernel's launch should keep resident: a memory-bound
# kernel needs that many warps in flight to cover DRAM latency.
MIN_OCCUPANCY = 0.5


def bank_padded(words: int, planes: int) -> int:
    """The row length, at least ``words``, of a shared array whose consecutive columns j
    lie in ``planes`` interleaved planes ([j % planes][j // planes]; planes a power of two
    up to 32): a warp storing 32 consecutive 4-byte columns from a multiple of ``planes``
    writes 32 // planes consecutive words of each plane, and rows of (32 // planes) x odd
    words put the planes on disjoint banks: no bank conflict (unpadded, up to
    ``planes``-way). From another start, or across the end of a row, a few banks still
    serve two words."""
    if planes == 1:
        return words
    step = 32 // planes
    return words + (step - words) % (2 * step)


def fitting_layout(options: Sequence, shared_shape, budget: int) -> tuple | None:
    """(option, padded): the first of ``options`` (tile shapes, largest first) whose
    float64 shared tile, ``shared_shape(option, padded)``, fits ``budget`` bytes, padded
    (bank_padded) where that fits too: a smaller tile would cost more global traffic than
    the bank conflicts the padding saves. None where no option fits."""
    for option in options:
        for padded in (True, False):
            if math.prod(shared_shape(option, padded)) * 8 <= budget:
                return option, padded
    return None


def grid_1d(threads: int) -> tuple[int, int]:
    """(blocks, threads per block) for one thread per output on a flat grid."""
    return (threads + BLOCK - 1) // BLOCK, BLOCK


@dataclasses.dataclass(frozen=True)
class View:
    """A view argument: ``offset`` elements into buffer ``buffer``, with its strides by the
    names the kernel declares for them."""
    buffer: str
    offset: int
    strides: tuple[tuple[str, int], ...]


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

    def view(self, *shape) -> "Ref":
        """Another shape of a contiguous tensor."""
        return Ref.contiguous(self.name, shape)

    def at(self, offset: int = 0, **strides: int) -> View:
        """The view argument ``offset`` elements in, with the given strides."""
        return View(self.name, offset, tuple(strides.items()))


@dataclasses.dataclass(frozen=True)
class Launch:
    """A kernel over a grid, with every run-time argument by name: a View (or None: a view
    the kernel does not touch in this launch, null with zero strides) per pointer, a
    number per scalar."""
    kernel: Kernel
    args: tuple[tuple[str, object], ...]
    blocks: int
    threads: int

    def values(self) -> dict:
        """The kernel's run-time arguments in declaration order, checked against it:
        pointers as their View (None when absent), scalars as numbers."""
        args, name, params = dict(self.args), self.kernel.name, self.kernel.params
        declared = {p.name for p in params if p.of is None}
        if set(args) != declared:
            raise AssertionError(f"{name}: the launch gives {sorted(set(args) - declared)} "
                                 f"which the kernel does not declare and lacks "
                                 f"{sorted(declared - set(args))}")
        strides = {}
        for p in params:
            if p.kind in ("in", "out") and args[p.name] is not None:
                given = dict(args[p.name].strides)
                wanted = {q.stride: q.name for q in params if q.of == p.name}
                if set(given) != set(wanted):
                    raise AssertionError(f"{name}: view {p.name} has strides "
                                         f"{sorted(given)}; the kernel declares "
                                         f"{sorted(wanted)}")
                strides.update({wanted[s]: v for s, v in given.items()})
        return {p.name: args[p.name] if p.of is None else strides.get(p.name, 0)
                for p in params}


@dataclasses.dataclass(frozen=True)
class Sum:
    """A step that is not a kernel: ``name`` = a + b (two contiguous tensors of a's shape)."""
    name: str
    a: Ref
    b: Ref


class Program:
    """A call's inputs, allocations, steps and outputs, by name: what a plan builds for one
    geometry and input layout."""

    def __init__(self, layouts: Sequence[tuple[tuple[int, ...], tuple[int, ...]]]):
        self.layouts = list(layouts)     # (shape, strides) of each input as given
        self.inputs = []          # (position, name, shape: None keeps the given layout)
        self.allocations = []     # (name, shape, zero-filled, dtype or None)
        self.steps = []           # Launch | Sum, in order
        self.outputs = []         # (name, shape)

    def input(self, position: int, shape=None) -> Ref:
        """Input ``position``: made contiguous and viewed as ``shape``, or as given."""
        name = f"input{position}"
        self.inputs.append((position, name, None if shape is None else tuple(shape)))
        if shape is None:
            return Ref(name, *map(tuple, self.layouts[position]))
        return Ref.contiguous(name, shape)

    def buffer(self, name: str, shape, zero: bool = False, dtype: str | None = None) -> Ref:
        """A tensor the call allocates, in the inputs' dtype or in ``dtype`` ('float64':
        tap gradient sums); offsets into it are counted in elements of the inputs."""
        self.allocations.append((name, tuple(shape), zero, dtype))
        return Ref.contiguous(name, shape)

    def launch(self, kernel: Kernel, blocks: int, threads: int, **args) -> None:
        """Launch ``kernel`` with these run-time arguments; a launch of no blocks (an empty
        batch) is left out."""
        launch = Launch(kernel, tuple(args.items()), blocks, threads)
        launch.values()                   # a mismatch with the declaration fails here
        if blocks > MAX_BLOCKS or not 0 < threads <= MAX_THREADS:
            raise ValueError(f"{kernel.name}: a launch of {blocks} blocks of {threads} "
                             f"threads exceeds CUDA's limits ({MAX_BLOCKS} blocks, "
                             f"{MAX_THREADS} threads per block); split the batch")
        if blocks > 0:
            self.steps.append(launch)

    def add(self, name: str, a: Ref, b: Ref) -> Ref:
        self.steps.append(Sum(name, a, b))
        return Ref.contiguous(name, a.shape)

    def output(self, ref: Ref, shape) -> None:
        self.outputs.append((ref.name, tuple(shape)))

    @property
    def kernels(self) -> list[Kernel]:
        return [s.kernel for s in self.steps if isinstance(s, Launch)]
