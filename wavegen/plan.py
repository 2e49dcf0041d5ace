"""Stage 2: the plan, everything decided before code exists. Pure Python data.

Every DWT-family transform is a schedule of 1-D *passes* over strided views of
``(planes, rows, cols)`` buffers. A pass filters one axis ('h': rows index, 'w': cols index)
and comes in two directions that are each other's exact transpose:

* analysis:  ``c_b[k] = sum_i taps_b[i] * xe[2k + offset + i]``  for the bands b = lo, hi,
  where ``xe`` is the boundary extension of the signal (``wg_ext`` in the templates);
* adjoint:   upsample, correlate, fold:  ``x = E^T g`` with
  ``g[n] = sum_{b,k,i: 2k + offset + i = n} taps_b[i] * c_b[k]``.

``pywt.idwt`` is the adjoint of zero-mode (or periodization) analysis with the taps
``rec`` (contract.md 2.1), so forward, inverse and both of their adjoints are rendered by
the same two kernel templates. The plan of ``spec.adjoint()`` is the transposed schedule.
"""
from __future__ import annotations

import dataclasses
import functools
import json
import os
import sys
import warnings
from typing import Sequence

from .program import (BLOCK, Kernel, Param, Program, bank_padded, fitting_layout, grid_1d,
                      view_params)
from .spec import Spec

_PACKAGE_DIR = os.path.dirname(os.path.abspath(__file__))


def warn_at_caller(message: str, category=UserWarning) -> None:
    """``warnings.warn`` attributed to the first frame outside wavegen: the line of the
    caller's code that asked for the transform."""
    frame, level = sys._getframe(), 1
    while frame is not None and os.path.abspath(frame.f_code.co_filename).startswith(
            _PACKAGE_DIR + os.sep):
        frame, level = frame.f_back, level + 1
    warnings.warn(message, category, stacklevel=level)


# Number of (index, weight) terms the extension of one sample needs, per mode.
EXT_TERMS = {"zero": 1, "constant": 1, "symmetric": 1, "reflect": 1, "periodic": 1,
             "smooth": 2, "antisymmetric": 1, "antireflect": 3, "periodization": 1}


@dataclasses.dataclass(frozen=True)
class PassKernel(Kernel):
    """One generated kernel: a 1-D pass along ``axis`` in ``direction``. The mode is
    compiled in: each mode's extension is other code (smooth and antireflect sum several
    terms per sample)."""
    direction: str                  # 'analysis' | 'adjoint'
    axis: str                       # 'h' | 'w'
    lo: tuple[float, ...]           # taps aligned for correlation with the extended signal
    hi: tuple[float, ...]
    mode: str
    offset: int                     # extended index of tap 0 at output k = 0
    # Filters that change (learnable): the filter length, the taps (lo then hi, in
    # correlation order, float64) a run-time parameter; lo and hi are then empty.
    runtime_taps: int = 0

    @property
    def name(self) -> str:
        return f"wg_{self.direction}_{self.axis}" + ("_taps" if self.runtime_taps else "")

    @property
    def params(self) -> tuple[Param, ...]:
        """Input views, output views (pointer, plane stride, row stride; unit stride along
        the row), then the planes P, lines per plane M, signal length N and coefficient
        length K."""
        ins, outs = (("in0",), ("out0", "out1")) if self.direction == "analysis" else \
            (("in0", "in1"), ("out0",))
        views = [p for name in ins for p in view_params(name, "in", ("sp", "sr"))]
        views += [p for name in outs for p in view_params(name, "out", ("sp", "sr"))]
        taps = (Param("taps", "taps"),) if self.runtime_taps else ()
        return tuple(views) + tuple(Param(n, "int") for n in ("P", "M", "N", "K")) + taps

    @property
    def length(self) -> int:
        return self.runtime_taps or len(self.lo)

    @property
    def ext_terms(self) -> int:
        return EXT_TERMS[self.mode]

    # Below this many output samples a CPU pass runs on one thread: forking threads costs
    # more than the work, and spinning OpenMP threads starve other processes.
    parallel_min_outputs = 1 << 15

    @property
    def fold_reach(self) -> int:
        """Every extended sample outside [0, N) folds onto an index < reach or >= N - reach.

        The halo is at most L-1 wide on either side; smooth also touches x[1] and x[N-2].
        """
        return self.length + 1

    @property
    def resources_note(self) -> str | None:
        """wavegen.resources: measured on sm_90 (NVRTC 12.9) over db8-db38, coif5, sym20,
        dmey, bior/rbio6.8 and every mode, only filters longer than 60 taps in float64 pass
        64 registers (50% occupancy at 256 threads)."""
        if self.length <= 60:
            return None
        return ("filters longer than 60 taps (db38, dmey) in float64: the unrolled taps and "
                "the extension's terms take 65-80 registers per thread (38% occupancy)")

    @property
    def cuda_tile(self) -> tuple[int, int] | None:
        """(output rows, lines) a CUDA block of a height pass covers: a warp takes 32
        adjacent lines (coalesced) and the block BLOCK // 32 adjacent outputs, whose taps
        overlap, so that the block reads each input row once rather than once per output
        (the traffic model's finding: a block of one output row read L rows for it). A
        width pass's block is a run of outputs along one line (None)."""
        return (BLOCK // 32, 32) if self.axis == "h" else None

    def grid(self, planes: int, lines: int, outputs: int) -> tuple[int, int]:
        """(blocks, threads per block) for ``outputs`` per line of ``lines`` lines of
        ``planes`` planes."""
        if self.cuda_tile is None:
            return grid_1d(planes * lines * outputs)
        rows, cols = self.cuda_tile
        return planes * -(-outputs // rows) * -(-lines // cols), rows * cols

    def transposed(self) -> "PassKernel":
        return dataclasses.replace(
            self, direction="adjoint" if self.direction == "analysis" else "analysis")


def tap_offset(length: int, mode: str) -> int:
    """The extended index of tap 0 at k = 0 of the analysis ``c[k] = sum_j f[j]
    xe[2k + phase - j]`` (contract.md 1.3), taps in correlation order."""
    phase = length // 2 if mode == "periodization" else 1
    return phase - (length - 1)


def synthesis_mode(mode: str) -> str:
    """The mode of the analysis whose adjoint is pywt.idwt in ``mode`` (contract.md 2.1)."""
    return "periodization" if mode == "periodization" else "zero"


def analysis_kernel(axis: str, lo_filter, hi_filter, mode: str) -> PassKernel:
    """The pass computing ``c[k] = sum_j f[j] xe[2k + phase - j]`` (contract.md 1.3)."""
    return PassKernel("analysis", axis, tuple(reversed(lo_filter)), tuple(reversed(hi_filter)),
                      mode, tap_offset(len(lo_filter), mode))


@dataclasses.dataclass(frozen=True)
class FusedLevelKernel(Kernel):
    """One level of a 2-D DWT in one kernel: the height pass ``h`` and the width pass ``w``
    (both analysis, or both adjoint). A CUDA block takes a tile of outputs, up to 32 rows x
    64 columns (``cuda_tile``), and keeps the first pass's rows in shared memory, in the
    accumulator type:

    * analysis (x -> cA, cH, cV, cD): the height pass of the tile's rows over the window of
      extended columns its width taps read, then the width pass from there;
    * adjoint (cA, cH, cV, cD -> x): the width adjoint of the coefficient rows the tile's
      height adjoint reads (its taps' rows, and in blocks within the fold's reach of an end
      the rows next to both ends, which the extension's halo folds back from), then the
      height adjoint from there.

    So each level reads its input once and writes its output once, where the three passes
    also write and reread the l/h temporaries. The CPU shell runs the passes in turn over
    chunks of planes, whose temporaries stay in cache."""
    h: PassKernel
    w: PassKernel

    @property
    def direction(self) -> str:
        return self.h.direction

    @property
    def name(self) -> str:
        return f"wg_{self.direction}_hw"

    @property
    def params(self) -> tuple[Param, ...]:
        """The views of x and of cA, band 0 (cH: hi rows, lo columns), band 1 (cV) and band
        2 (cD), inputs first; planes P, signal rows NH and columns NW, coefficient rows KH
        and columns KW."""
        if self.direction == "analysis":
            ins, outs = ("in0",), ("out0", "out1", "out2", "out3")
        else:
            ins, outs = ("in0", "in1", "in2", "in3"), ("out0",)
        views = tuple(p for name in ins for p in view_params(name, "in", ("sp", "sr")))
        views += tuple(p for name in outs for p in view_params(name, "out", ("sp", "sr")))
        return views + tuple(Param(n, "int") for n in ("P", "NH", "NW", "KH", "KW"))

    # Static shared memory a block may take: 4 blocks of 256 threads (50% occupancy) fit
    # an sm_80 SM's 164 KB with their 1 KB reserve each.
    SHARED_BYTES = 40 * 1024
    threads_per_block = BLOCK
    # Tiles of (output rows, output columns), largest first: a block takes the first whose
    # float64 tile fits SHARED_BYTES. Each tile also reads or recomputes a halo of its
    # first pass's rows (analysis: 2R + L_h - 2 rows of x and 2C + L_w - 2 columns, for
    # db4 and 16 x 64 outputs 1.19 x 1.05 reads per sample; adjoint: R/2 + pairs
    # coefficient rows and C/2 + pairs columns for R/2 and C/2), so larger tiles read
    # less twice. A warp's lanes are 32 adjacent output columns.
    TILES = ((32, 64), (16, 64), (16, 32), (8, 32))

    @property
    def pairs(self) -> int:
        """Adjoint: the height taps' pairs, the coefficient rows one output row reads."""
        return (self.h.length + 1) // 2

    @property
    def edge_rows(self) -> tuple[int, int]:
        """Adjoint: the coefficient rows next to the top and the bottom end that the fold's
        halo rows read (extended rows e < 0 read rows c <= (-1 - offset) // 2; e >= NH
        rows c >= KH - pairs; test_plan enumerates them)."""
        return (-1 - self.h.offset) // 2 + 1, self.pairs

    def _shared_shape(self, tile: tuple[int, int], padded: bool) -> tuple[int, ...]:
        """For a tile of (rows, cols) outputs. Analysis: (lo/hi, rows, parity, extended
        column // 2) over the 2 (cols - 1) + L_w extended columns the width taps read;
        window column j is at [j % 2][j // 2], so that the width taps of one parity read
        adjacent words in adjacent lanes, and ``padded`` rows (program.bank_padded) let the
        lanes storing adjacent columns write both parities without bank conflicts.
        Adjoint: (l/h, coefficient rows: the taps' rows, then the top and bottom edge rows,
        column)."""
        rows, cols = tile
        if self.direction == "analysis":
            half = (2 * (cols - 1) + self.w.length + 1) // 2
            return (2, rows, 2, bank_padded(half, 2) if padded else half)
        return (2, rows // 2 + self.pairs + sum(self.edge_rows), cols)

    def _layout(self) -> tuple[tuple[int, int], bool] | None:
        return fitting_layout(self.TILES, self._shared_shape, self.SHARED_BYTES)

    @property
    def cuda_tile(self) -> tuple[int, int]:
        """(output rows, output columns) of a CUDA block."""
        return self._layout()[0]

    @property
    def span(self) -> int:
        """Analysis: extended columns of x a tile's width pass reads."""
        return 2 * (self.cuda_tile[1] - 1) + self.w.length

    @property
    def shared_shape(self) -> tuple[int, ...]:
        return self._shared_shape(*self._layout())

    @property
    def fuses(self) -> bool:
        """Whether a level runs as this kernel: where both axes' extensions take one term
        and the tile fits. Smooth and antireflect (2 and 3 terms) inside the analysis tile
        loop took 90-190 registers per thread (db4, db20; sm_90), against 30-48 in their
        passes, so those levels run the three passes; so do adjoints of filters over 50
        taps (db26 and longer), whose edge rows do not fit."""
        return EXT_TERMS[self.h.mode] == EXT_TERMS[self.w.mode] == 1 and \
            self._layout() is not None

    def transposed(self) -> "FusedLevelKernel":
        return FusedLevelKernel(self.h.transposed(), self.w.transposed())

    @property
    def resources_note(self) -> str | None:
        """wavegen.resources, measured on sm_80 and sm_90 (NVRTC 12.9) in every mode that
        fuses. Analysis (db2-db38, coif5-coif17, sym20, bior6.8, dmey; float32, float64,
        bfloat16): 30-64 registers, but dmey in float64 on sm_90 in constant and periodic
        mode. Adjoint (haar-db24, sym8, sym20, coif3-coif8, bior2.2, bior6.8, rbio3.9, as
        the gradient and as the inverse): at most 64 in float32; from 18 taps up to 66 in
        float64 and 65 in bfloat16 (db25, periodization)."""
        length = max(self.h.length, self.w.length)
        if self.direction == "analysis" and length > 60 and \
                {self.h.mode, self.w.mode} & {"constant", "periodic"}:
            return ("filters longer than 60 taps (dmey) in float64, constant or periodic "
                    "mode: 72-85 registers per thread on sm_90 (38% and 25% occupancy)")
        if self.direction == "adjoint" and length >= 18:
            return ("filters of 18 taps or more in float64 or bfloat16: the width adjoint's "
                    "fold and the height adjoint's take up to 66 registers per thread on "
                    "sm_90 (38% occupancy: db22-db25 and coif8, bior6.8's inverse in "
                    "periodization); bounded to 64 (50%) they spill up to 8 bytes on sm_80")
        return None

    parallel_min_outputs = PassKernel.parallel_min_outputs
    # Samples per l/h temporary of one chunk of planes on the CPU (4 MB in float32: as fast
    # as the unfused passes on 32x3x256x256, db4; 2^18 was 15% slower, the whole tensor 80%).
    cpu_chunk = 1 << 20

    def grid(self, planes: int, rows: int, cols: int) -> tuple[int, int]:
        """(blocks, threads per block) for outputs of ``rows`` x ``cols`` per plane (and
        band)."""
        tile_rows, tile_cols = self.cuda_tile
        return planes * -(-rows // tile_rows) * -(-cols // tile_cols), self.threads_per_block


@dataclasses.dataclass(frozen=True)
class TapGradKernel(Kernel):
    """The gradient of an analysis pass with respect to its taps, per line: for the signal
    x and coefficients c_b of one line, ``grad_b[i] = sum_k c_b[k] * xe[2k + offset + i]``
    (the analysis pass's correlation, with the coefficients in place of the taps). Each
    line writes its 2L sums (float64) to its own row of ``grad``; summing the rows is the
    second, deterministic stage."""
    axis: str
    mode: str
    offset: int
    length: int

    # wavegen.resources: in float64 the 2L sums take two registers each.
    resources_note = ("one thread per line keeps its 2L sums in registers: for L = 8 in "
                      "float64, 80 registers per thread (38% occupancy, sm_80 and sm_90)")

    @property
    def name(self) -> str:
        return f"wg_tapgrad_{self.axis}"

    @property
    def params(self) -> tuple[Param, ...]:
        return (view_params("in0", "in", ("sp", "sr")) + view_params("in1", "in", ("sp", "sr"))
                + view_params("in2", "in", ("sp", "sr")) + (Param("grad", "tap_grad"),)
                + tuple(Param(n, "int") for n in ("P", "M", "N", "K")))

    @property
    def ext_terms(self) -> int:
        return EXT_TERMS[self.mode]

    parallel_min_outputs = PassKernel.parallel_min_outputs


def max_level(n: int, length: int) -> int:
    """``pywt.dwt_max_level``: the largest J with (L - 1) * 2^J <= n (pure Python, so that
    torch.compile traces it)."""
    level = 0
    while length > 1 and (length - 1) << (level + 1) <= n:
        level += 1
    return level


def output_length(n: int, length: int, mode: str) -> int:
    """``pywt.dwt_coeff_len``."""
    return (n + 1) // 2 if mode == "periodization" else (n + length - 1) // 2


def synthesis_length(k: int, length: int, mode: str) -> int:
    """Length ``pywt.idwt`` returns for ``k`` coefficients."""
    return 2 * k if mode == "periodization" else 2 * k - length + 2


# ------------------------------------------------------------------------------------------
# Geometry: every spatial size a call involves, as a flat list of ints (torch op argument).

@dataclasses.dataclass(frozen=True)
class Geometry:
    signal: tuple[int, ...]                 # size of x (per axis)
    details: tuple[tuple[int, ...], ...]    # size of the detail bands, level 1 (finest) first
    approx: tuple[int, ...]                 # size of the coarsest approximation (yl)

    def flat(self) -> list[int]:
        return [*self.signal, *(s for d in self.details for s in d), *self.approx]

    @staticmethod
    def unflat(values: Sequence[int], ndim: int) -> "Geometry":
        values = [int(v) for v in values]
        groups = [tuple(values[i:i + ndim]) for i in range(0, len(values), ndim)]
        return Geometry(groups[0], tuple(groups[1:-1]), groups[-1])


# ------------------------------------------------------------------------------------------
# Schedules

@dataclasses.dataclass(frozen=True)
class Buffer:
    name: str
    shape: tuple[int, int]      # (rows, cols) of one plane of one band
    bands: int = 1


@dataclasses.dataclass(frozen=True)
class View:
    buffer: str
    band: int = 0


@dataclasses.dataclass(frozen=True)
class Step:
    kernel: PassKernel
    inputs: tuple[View, ...]    # analysis: (x,), adjoint: (lo, hi)
    outputs: tuple[View, ...]   # analysis: (lo, hi), adjoint: (x,)
    lines: int                  # M: number of 1-D lines per plane
    n: int                      # signal length along the axis
    k: int                      # coefficient length along the axis

    def transposed(self) -> "Step":
        return dataclasses.replace(self, kernel=self.kernel.transposed(),
                                   inputs=self.outputs, outputs=self.inputs)

    def written(self) -> tuple[int, int]:
        """(rows, cols) region each output view receives."""
        along = self.k if self.kernel.direction == "analysis" else self.n
        return (along, self.lines) if self.kernel.axis == "h" else (self.lines, along)

    def grid(self, planes: int) -> tuple[int, int]:
        along = self.k if self.kernel.direction == "analysis" else self.n
        return self.kernel.grid(planes, self.lines, along)

    def sizes(self, planes: int) -> dict[str, int]:
        return dict(P=planes, M=self.lines, N=self.n, K=self.k)


@dataclasses.dataclass(frozen=True)
class LevelStep:
    """One level of a 2-D DWT in one launch (FusedLevelKernel): analysis x -> (cA, cH, cV,
    cD), adjoint (cA, cH, cV, cD) -> x."""
    kernel: FusedLevelKernel
    inputs: tuple[View, ...]
    outputs: tuple[View, ...]
    signal: tuple[int, int]     # (rows, cols) of x
    coefficients: tuple[int, int]
    level: int

    def written(self) -> tuple[int, int]:
        return self.coefficients if self.kernel.direction == "analysis" else self.signal

    def passes(self) -> tuple[tuple[Step, ...], tuple[Buffer, ...]]:
        """The same level as its three passes, with the l/h temporaries between them."""
        (n_rows, n_cols), (k_rows, k_cols) = self.signal, self.coefficients
        tl, th = (Buffer(f"{t}{self.level}", (k_rows, n_cols)) for t in "lh")
        l, h = View(tl.name), View(th.name)
        if self.kernel.direction == "analysis":
            (x,), (lo, cH, cV, cD) = self.inputs, self.outputs
            steps = (Step(self.kernel.h, (x,), (l, h), n_cols, n_rows, k_rows),
                     Step(self.kernel.w, (l,), (lo, cV), k_rows, n_cols, k_cols),
                     Step(self.kernel.w, (h,), (cH, cD), k_rows, n_cols, k_cols))
        else:
            (lo, cH, cV, cD), (x,) = self.inputs, self.outputs
            steps = (Step(self.kernel.w, (lo, cV), (l,), k_rows, n_cols, k_cols),
                     Step(self.kernel.w, (cH, cD), (h,), k_rows, n_cols, k_cols),
                     Step(self.kernel.h, (l, h), (x,), n_cols, n_rows, k_rows))
        return steps, (tl, th)

    def transposed(self) -> tuple[tuple["LevelStep | Step", ...], tuple[Buffer, ...]]:
        """The transposed level: one launch where the transposed kernel fuses, else the
        passes transposed (in reverse order), with their temporaries."""
        kernel = self.kernel.transposed()
        if kernel.fuses:
            return (dataclasses.replace(self, kernel=kernel, inputs=self.outputs,
                                        outputs=self.inputs),), ()
        steps, temporaries = self.passes()
        return tuple(s.transposed() for s in reversed(steps)), temporaries

    def grid(self, planes: int) -> tuple[int, int]:
        return self.kernel.grid(planes, *self.written())

    def sizes(self, planes: int) -> dict[str, int]:
        (n_rows, n_cols), (k_rows, k_cols) = self.signal, self.coefficients
        return dict(P=planes, NH=n_rows, NW=n_cols, KH=k_rows, KW=k_cols)


@dataclasses.dataclass(frozen=True)
class Schedule:
    buffers: dict[str, Buffer]
    inputs: tuple[str, ...]
    outputs: tuple[str, ...]
    steps: tuple[Step | LevelStep, ...]

    def transposed(self) -> "Schedule":
        """The adjoint schedule: the steps transposed, in reverse order."""
        buffers, steps = dict(self.buffers), []
        for step in reversed(self.steps):
            if isinstance(step, LevelStep):
                transposed, added = step.transposed()
                steps += transposed
                buffers.update((b.name, b) for b in added)
            else:
                steps.append(step.transposed())
        return Schedule(buffers, self.outputs, self.inputs, tuple(steps))

    @functools.cached_property
    def zero_filled(self) -> frozenset[str]:
        """Buffers some of whose elements no step writes (cropped regions, adjoint of a crop)."""
        covered: dict[str, set[int]] = {}
        writes: set[tuple[str, int]] = set()
        for step in self.steps:
            for v in step.outputs:
                if (v.buffer, v.band) in writes:
                    raise AssertionError("a buffer is written twice; its transpose would need "
                                         "accumulation")
                writes.add((v.buffer, v.band))
                if step.written() == self.buffers[v.buffer].shape:
                    covered.setdefault(v.buffer, set()).add(v.band)
        return frozenset(name for name, b in self.buffers.items() if name not in self.inputs
                         and covered.get(name, set()) != set(range(b.bands)))


def tensor_shape(lead, bands: int, size) -> tuple[int, ...]:
    """User-facing shape of a buffer: (N, C[, 3], *size)."""
    return (*lead, *((bands,) if bands > 1 else ()), *size)


class Plan:
    """The plan of one spec: its kernels and, per geometry, its schedule."""
    family = "dwt"
    kernel_templates = "dwt"     # the templates that render its kernels (render.py)
    Geometry = Geometry

    def __init__(self, spec: Spec):
        self.spec = spec
        self.ndim = spec.ndim
        self.axes = ("h", "w") if spec.ndim == 2 else ("w",)
        # The kernels of the untransposed schedule, per axis; a transposed spec compiles
        # their transposes (the steps of its schedule are transposed the same way).
        if spec.is_inverse:
            # idwt = adjoint of analysis with taps rec (zero mode unless periodization).
            self.axis_kernels = {a: analysis_kernel(a, b.rec_lo[::-1], b.rec_hi[::-1],
                                                    synthesis_mode(m)).transposed()
                                 for a, b, m in zip(self.axes, spec.banks, spec.modes)}
        else:
            self.axis_kernels = {a: analysis_kernel(a, b.dec_lo, b.dec_hi, m)
                                 for a, b, m in zip(self.axes, spec.banks, spec.modes)}
        # A 2-D level runs as one launch where its kernel fuses, in the untransposed
        # schedule and again in the transposed one (LevelStep.transposed); else the passes.
        level = FusedLevelKernel(self.axis_kernels["h"], self.axis_kernels["w"]) \
            if spec.ndim == 2 else None
        self.fused_levels = level is not None and level.fuses
        if self.fused_levels and spec.transposed:
            level = level.transposed()
        self.level_kernel = level if level is not None and level.fuses and \
            self.fused_levels else None
        if self.level_kernel is not None:
            self.kernels = {self.level_kernel.name: self.level_kernel}
        else:
            self.kernels = {k.name: k for k in (k.transposed() if spec.transposed else k
                                                for k in self.axis_kernels.values())}
        # The kernels the spec's source lists (render) and its precompile builds, and the
        # name of their cache entries.
        self.library_kernels = self.kernels
        self.library_json, self.library_name = spec.to_json(), spec.readable_name()
        self._schedules: dict[Geometry, Schedule] = {}
        self.lengths = tuple(b.length for b in spec.banks)

    # -- geometry ------------------------------------------------------------------------
    @property
    def takes_signal(self) -> bool:
        """Whether the op's input is the signal x (analysis, or the adjoint of synthesis)."""
        return self.spec.is_inverse == self.spec.transposed

    def geometry_from_signal(self, signal: Sequence[int], level_warning: bool = True
                             ) -> Geometry:
        if self.spec.levels is None:
            raise ValueError(f"{self.spec.kind} with levels=None cannot size its coefficients "
                             "from a signal; give the spec a number of levels")
        signal = tuple(int(s) for s in signal)
        details = []
        sizes = signal
        for level in range(1, self.spec.levels + 1):
            for axis, n, mode in zip(self.axes, sizes, self.spec.modes):
                if n < 1:
                    raise ValueError(f"cannot transform an empty axis ({axis}: size {n})")
                if n == 1 and mode in ("reflect", "antireflect"):
                    raise ValueError(self._too_short(signal, level, mode))
            sizes = self.analysis_size(sizes)
            details.append(sizes)
        allowed = min(max_level(n, L) for n, L in zip(signal, self.lengths))
        if self.spec.levels > allowed and level_warning:
            warn_at_caller(f"Level value of {self.spec.levels} is too high: all coefficients "
                           "will experience boundary effects.")
        return Geometry(signal, tuple(details), details[-1])

    def _too_short(self, signal, level, mode) -> str:
        allowed = min(max_level(n, L) for n, L in zip(signal, self.lengths))
        return (f"a signal of size {tuple(signal)} is too short for {self.spec.levels} levels "
                f"in {mode} mode: level {level} would extend a single sample, which "
                f"{mode} cannot do (PyWavelets raises too). PyWavelets' "
                f"dwt_max_level for this size and filter is {allowed}")

    def geometry_from_coefficients(self, approx: Sequence[int],
                                   details: Sequence[Sequence[int]]) -> Geometry:
        """Sizes of a synthesis call, checked as ``pywt.waverec2`` checks them."""
        approx = tuple(int(s) for s in approx)
        details = tuple(tuple(int(s) for s in d) for d in details)
        levels = len(details)
        if self.spec.levels is not None and levels != self.spec.levels:
            raise ValueError(f"expected detail coefficients for {self.spec.levels} levels, "
                             f"got {levels}")
        if levels == 0:
            raise ValueError("synthesis needs detail coefficients for at least one level")
        upper = approx
        for level in range(levels, 0, -1):
            d = details[level - 1]
            if any(s < 1 for s in d):
                raise ValueError(f"level {level}: detail coefficients have empty size {d}")
            if not all(u in (s, s + 1) for u, s in zip(upper, d)):
                what = "the lowpass (yl)" if level == levels else \
                    f"the reconstruction of level {level + 1}"
                raise ValueError(f"coefficient shapes do not fit together at level {level}: "
                                 f"{what} has size {upper}, the details have size {d}; the "
                                 "approximation must equal the detail size or exceed it by one")
            upper = self.synthesis_size(d)
            if any(u < 1 for u in upper):
                raise ValueError(f"level {level}: detail size {d} is too small for a filter "
                                 f"of length {self.lengths}; the reconstruction would be empty")
        return Geometry(upper, details, approx)

    def analysis_size(self, signal: Sequence[int]) -> tuple[int, ...]:
        """The coefficients' size one level of analysis makes from a signal of that size."""
        return tuple(output_length(n, L, m) for n, L, m in
                     zip(signal, self.lengths, self.spec.modes))

    def synthesis_size(self, detail: Sequence[int]) -> tuple[int, ...]:
        """The size one level of synthesis makes from details of size ``detail``."""
        return tuple(synthesis_length(k, L, m) for k, L, m in
                     zip(detail, self.lengths, self.spec.modes))

    def coefficient_shapes(self, geom: Geometry) -> list[tuple[int, tuple[int, ...]]]:
        """(bands, spatial size) of [yl, yh_1, ..., yh_J]."""
        bands = 3 if self.ndim == 2 else 1
        return [(1, geom.approx)] + [(bands, d) for d in geom.details]

    # -- schedule ------------------------------------------------------------------------
    def schedule(self, geom: Geometry) -> Schedule:
        """The steps for ``geom`` (memoized: a training loop meets few geometries)."""
        sched = self._schedules.get(geom)
        if sched is None:
            analysis = self.spec.adjoint() if self.spec.transposed else self.spec
            sched = self._analysis_schedule(geom) if not analysis.is_inverse \
                else self._synthesis_schedule(geom)
            sched = self._schedules.setdefault(
                geom, sched.transposed() if self.spec.transposed else sched)
        return sched

    def _shape(self, size) -> tuple[int, int]:
        return (1, size[0]) if self.ndim == 1 else tuple(size)

    def _analysis_schedule(self, geom: Geometry) -> Schedule:
        J = len(geom.details)
        if geom.approx != geom.details[-1]:
            raise ValueError(f"the lowpass has size {geom.approx} but the coarsest details "
                             f"have size {geom.details[-1]}; analysis produces equal sizes")
        buffers = {"x": Buffer("x", self._shape(geom.signal)),
                   "yl": Buffer("yl", self._shape(geom.approx))}
        steps = []
        src, src_size = "x", geom.signal
        for level in range(1, J + 1):
            d = geom.details[level - 1]
            band = f"yh{level}"
            lo = "yl" if level == J else f"a{level}"
            buffers[band] = Buffer(band, self._shape(d), 3 if self.ndim == 2 else 1)
            buffers[lo] = Buffer(lo, self._shape(d))
            if self.ndim == 1:
                steps.append(Step(self.axis_kernels["w"], (View(src),), (View(lo), View(band)),
                                  1, src_size[0], d[0]))
            else:
                # pywt bands: cH = hi(h) lo(w) -> 0, cV = lo(h) hi(w) -> 1, cD = hi hi -> 2.
                self._level(steps, buffers, (View(src),),
                            (View(lo), View(band, 0), View(band, 1), View(band, 2)),
                            src_size, d, level)
            src, src_size = lo, d
        return Schedule(buffers, ("x",), ("yl",) + tuple(f"yh{j}" for j in range(1, J + 1)),
                        tuple(steps))

    def _level(self, steps: list, buffers: dict, inputs, outputs, signal, coefficients,
               level: int) -> None:
        """Add one 2-D level of the untransposed schedule: a LevelStep, or its passes and
        their temporaries where its kernel does not fuse."""
        step = LevelStep(FusedLevelKernel(self.axis_kernels["h"], self.axis_kernels["w"]),
                         inputs, outputs, tuple(signal), tuple(coefficients), level)
        if self.fused_levels:
            steps.append(step)
            return
        passes, temporaries = step.passes()
        steps += passes
        buffers.update((b.name, b) for b in temporaries)

    def _synthesis_schedule(self, geom: Geometry) -> Schedule:
        J = len(geom.details)
        buffers = {"yl": Buffer("yl", self._shape(geom.approx)),
                   "x": Buffer("x", self._shape(geom.signal))}
        steps = []
        approx = "yl"
        for level in range(J, 0, -1):
            d = geom.details[level - 1]
            r = self.synthesis_size(d)
            band = f"yh{level}"
            dest = "x" if level == 1 else f"r{level}"
            buffers[band] = Buffer(band, self._shape(d), 3 if self.ndim == 2 else 1)
            buffers[dest] = Buffer(dest, self._shape(r))
            if self.ndim == 1:
                steps.append(Step(self.axis_kernels["w"], (View(approx), View(band)),
                                  (View(dest),), 1, r[0], d[0]))
            else:
                self._level(steps, buffers, (View(approx), View(band, 0), View(band, 1),
                                             View(band, 2)), (View(dest),), r, d, level)
            approx = dest
        return Schedule(buffers, ("yl",) + tuple(f"yh{j}" for j in range(1, J + 1)), ("x",),
                        tuple(steps))

    # -- op signature --------------------------------------------------------------------
    def geometry_for_inputs(self, shapes: Sequence[tuple[int, ...]],
                            level_warning: bool = True) -> Geometry:
        """Geometry of a call from the spatial shapes of its inputs (when autograd gives none)."""
        if self.takes_signal:
            geom = self.geometry_from_signal(shapes[0], level_warning)
            if self.spec.transposed:        # adjoint of synthesis: x must be a synthesis size
                recon = self.geometry_from_coefficients(geom.approx, geom.details).signal
                if recon != geom.signal:
                    raise ValueError(f"size {geom.signal} is not an output size of the "
                                     f"inverse transform; the nearest is {recon}")
            return geom
        return self.geometry_from_coefficients(shapes[0], shapes[1:])

    def io_shapes(self, geom: Geometry, lead) -> tuple[list, list]:
        """(shapes of the inputs, shapes of the outputs) of a call on (N, C) = lead."""
        signal = [(1, geom.signal)]
        coeffs = self.coefficient_shapes(geom)
        ins, outs = (signal, coeffs) if self.takes_signal else (coeffs, signal)
        return ([tensor_shape(lead, b, s) for b, s in ins],
                [tensor_shape(lead, b, s) for b, s in outs])

    def program(self, geom: Geometry, layouts) -> Program:
        """A call's program: the schedule's passes over strided (planes, rows, cols) views of
        its buffers, for inputs of these layouts."""
        lead = tuple(layouts[0][0][:2])          # (N, C): every input and output has them
        planes = lead[0] * lead[1]
        sched = self.schedule(geom)
        program = Program(layouts)
        refs = {}
        for position, name in enumerate(sched.inputs):
            b = sched.buffers[name]
            refs[name] = program.input(position, (planes, b.bands, *b.shape))
        for name, b in sched.buffers.items():
            if name not in refs:
                refs[name] = program.buffer(name, (planes, b.bands, *b.shape),
                                            zero=name in sched.zero_filled)
        for step in sched.steps:
            views = {}
            for name, view in zip(step.kernel.views, step.inputs + step.outputs):
                b = sched.buffers[view.buffer]
                plane = b.shape[0] * b.shape[1]
                views[name] = refs[view.buffer].at(view.band * plane, sp=b.bands * plane,
                                                   sr=b.shape[1])
            program.launch(step.kernel, *step.grid(planes), **views, **step.sizes(planes))
        for name in sched.outputs:
            b = sched.buffers[name]
            program.output(refs[name],
                           tensor_shape(lead, b.bands, b.shape[1:] if self.ndim == 1 else b.shape))
        return program


_PLANS: dict[str, object] = {}


def from_json(spec_json: str):
    """The plan of a spec given as its canonical JSON, made once per process (its
    schedules are memoized for the geometries calls meet)."""
    found = _PLANS.get(spec_json)
    if found is None:
        data = json.loads(spec_json)
        if "operation" in data:            # one pass with run-time taps (plan_taps)
            from .plan_taps import PassPlan, PassSpec
            made = PassPlan(PassSpec(**data))
        else:
            made = plan(Spec.from_json(spec_json))
        found = _PLANS.setdefault(spec_json, made)
    return found


def plan(spec: Spec):
    if spec.is_scatter:
        from .plan_scatter import ScatterPlan
        return ScatterPlan(spec)
    if spec.is_dtcwt:
        from .plan_dtcwt import DtcwtPlan
        return DtcwtPlan(spec)
    return Plan(spec)
