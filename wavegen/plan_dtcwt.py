"""The plan of the 2-D DTCWT (contract.md 4): one fused kernel per level.

Every building block of dtcwt (colfilter at level 1, coldfilt at levels >= 2) is the same
*two-phase pass*: output sample ``2o + p`` of filter f is

    Y_f[2o + p] = sum_i taps_f[p][i] * xe[A*o + base_f[p] + C*i]

with (A, C) = (2, 1) for colfilter and (4, 2) for coldfilt, where the two phases are the two
trees (contract 4.2). A level filters both axes this way and evaluates everything on the grid
of 2x2 *quads*: quad (r, c) of the product (f on rows, g on columns) holds
``Y_fg[2r + pr, 2c + pc]``. The lowpass product is written as it is (its quads are the next
level's samples); each band pair goes through q2c into two of the six orientations.

The size padding of dtcwt (odd sizes: repeat the last row; sides not a multiple of 4 at
levels >= 2: repeat the first and last), and the block-copy padding of pytorch_wavelets'
ScatLayerj2 at level 1 (``Geometry.pad``), are folded into the extension: the kernel reads
the stored signal through ``index(e) = pad(extend(e))``, where the padding copies the
first ``lead`` and the last ``Np - N - lead`` samples, and never materialises a padded copy.

The adjoint kernel runs the same level backwards (c2q, transposed filtering, fold). Because
colfilter with Kingsbury's symmetric odd filters is self-adjoint and ``coldfilt(., ha, hb)^T
== colifilt(., rev ha, rev hb)`` when hb = rev(ha) (kingsbury._validate checks both), dtcwt's
inverse level is exactly the adjoint of the analysis level with the synthesis filters, where
the padding rows are *embedded* (the inverse crops them) instead of duplicated.
"""
from __future__ import annotations

import dataclasses
import functools
import json
from typing import Sequence

from .program import (Kernel, Param, Program, Ref, View, bank_padded, fitting_layout,
                      view_params)
from .spec import Spec

# Orientations of each product's (z0, z1) after q2c, by (row filter, column filter) role.
BAND_PAIRS = {("hi", "lo"): (0, 5), ("lo", "hi"): (2, 3), ("diag", "diag"): (1, 4)}


@dataclasses.dataclass(frozen=True)
class PhaseFilter:
    """One filter along one axis with its two output phases."""
    taps: tuple[tuple[float, ...], tuple[float, ...]]   # per phase, in correlation order
    base: tuple[int, int]                               # extended index of tap 0 at o = 0
    stride: int                                         # C: extended samples between taps

    @property
    def reach(self) -> tuple[int, int]:
        """(first, last) extended offset read relative to A*o."""
        return (min(self.base),
                max(b + self.stride * (len(t) - 1) for b, t in zip(self.base, self.taps)))


def colfilter(h: Sequence[float]) -> PhaseFilter:
    """dtcwt's colfilter (no decimation): Y[q] = sum_k h[k] X~[q + (m-1) - m//2 - k]."""
    m = len(h)
    taps = tuple(reversed(h))
    return PhaseFilter((taps, taps), (-(m // 2), 1 - m // 2), 1)


def coldfilt(ha: Sequence[float], hb: Sequence[float]) -> PhaseFilter:
    """dtcwt's coldfilt: Ya[i] = sum_j ha[j] X~[4i + m - 2j], Yb likewise at 4i + m + 1 - 2j;
    outputs (Ya, Yb) interleaved, or (Yb, Ya) when sum(ha * hb) < 0."""
    m = len(ha)
    a, b = (tuple(reversed(ha)), 2 - m), (tuple(reversed(hb)), 3 - m)
    if sum(x * y for x, y in zip(ha, hb)) < 0:
        a, b = b, a
    return PhaseFilter((a[0], b[0]), (a[1], b[1]), 2)


@dataclasses.dataclass(frozen=True)
class LevelKernel(Kernel):
    """One generated kernel: a whole DTCWT level in ``direction``."""
    direction: str                  # 'analysis' | 'adjoint'
    stage: str                      # 'biort' (level 1) | 'qshift' (levels >= 2)
    decimation: int                 # A
    stride: int                     # C
    lo: PhaseFilter
    hi: PhaseFilter
    diag: PhaseFilter               # hi, or the bandpass filter of the _bp sets
    highpass: bool                  # False: the level's bands are skipped (lowpass only)
    edge: str                       # 'copy' (analysis padding) | 'embed' (inverse crop)
    # How the lowpass is written (analysis) or read (adjoint): 'full' (its quads as they
    # are), 'pooled' (the mean of each quad: 2x2 average pooling) or 'none'.
    lowpass: str = "full"
    # How the bands are written: 'complex' (q2c), 'magnitude' (|z|_b, scattering) or
    # 'magnitude_grad' (reads the gradient g of |z|_b, writes g z / sqrt(|z|^2 + b^2)).
    bands: str = "complex"

    @property
    def params(self) -> tuple[Param, ...]:
        """The one parameter list of every level kernel, in both directions: the level's
        input signal x (batch, channel and row strides; stored size R x W; padding samples
        prepended, lead_r/lead_c), its lowpass (batch, channel and row strides), its bands
        (batch, channel, orientation, real/imaginary, row and column strides: any layout),
        the gradient of the band magnitudes (read by the magnitude_grad kernels only), then
        the planes P = N * Cch, the quad grid Rq x Cq, zero (1: zero extension, 0:
        symmetric) and the magnitude bias mb."""
        x, y = ("in", "out") if self.direction == "analysis" else ("out", "in")
        return (view_params("x", x, ("n", "c", "sr"))
                + tuple(Param(n, "int") for n in ("R", "W", "lead_r", "lead_c"))
                + view_params("lo", y, ("n", "c", "sr"))
                + view_params("band", y, ("n", "c", "o", "ri", "r", "w"), prefix="b")
                + view_params("gm", "in", ("n", "c", "o", "r", "w"), prefix="g")
                + tuple(Param(n, "int") for n in ("P", "Cch", "Rq", "Cq", "zero"))
                + (Param("mb", "real"),))

    @property
    def name(self) -> str:
        variant = "".join(f"_{v}" for v, plain in ((self.lowpass, "full"),
                                                   (self.bands, "complex")) if v != plain)
        return f"wg_dtcwt_{self.direction}_{self.stage}" \
            f"{'' if self.highpass else '_lowpass'}{variant}"

    # Below this many quads a CPU level runs on one thread (see plan.PassKernel).
    parallel_min_outputs = 1 << 13

    @property
    def products(self) -> tuple[tuple[str, str, tuple[int, int] | None], ...]:
        """(row filter, column filter, orientations of (z0, z1) or None for the lowpass)."""
        diag = "diag" if self.diag != self.hi else "hi"
        bands = tuple((diag if f == "diag" else f, diag if g == "diag" else g, o)
                      for (f, g), o in BAND_PAIRS.items()) if self.highpass else ()
        return ((("lo", "lo", None),) if self.lowpass != "none" else ()) + bands

    def filter(self, role: str) -> PhaseFilter:
        return getattr(self, role)

    @property
    def window(self) -> tuple[int, int]:
        """(e0, span): the extended samples the filters read for output o lie in
        [A*o + e0, A*o + e0 + span), with e0 a multiple of A."""
        roles = {r for p in self.products for r in p[:2]}
        first = min(self.filter(r).reach[0] for r in roles)
        last = max(self.filter(r).reach[1] for r in roles)
        e0 = self.decimation * (first // self.decimation)
        return e0, last - e0 + 1

    # CUDA tiles, sized for float64 within SHARED_BYTES. Analysis: a block computes
    # tile_rows x tile_cols quads; it filters the rows of every line into shared memory (the
    # tile's extended columns), then the columns from there. Adjoint: a block computes
    # tile_rows x tile_cols stored samples; it gathers the columns of every line into shared
    # memory for the quad rows those samples read, then the rows from there.
    tile_cols = 32
    SHARED_BYTES = 40 * 1024
    ADJOINT_THREADS = 256

    @property
    def tile_width(self) -> int:
        """The extended columns an analysis tile's quads read, rounded up to a multiple of
        A: the shared tile's fill loop then starts every row, and so every warp's run of
        columns, at a multiple of A (program.bank_padded's conflict-free case)."""
        A = self.decimation
        return A * -(-(A * (self.tile_cols - 1) + self.window[1]) // A)

    def _shared_shape(self, rows: int, padded: bool) -> tuple[int, ...]:
        """The shared tile for a tile of ``rows`` rows. Analysis: (lines, rows, A, columns
        / A), the columns split by residue mod A, so that a warp's lanes (consecutive
        quads, A columns apart) read consecutive words: no bank conflicts; ``padded`` rows
        (program.bank_padded) keep the lanes that store consecutive columns off each
        other's banks too. Adjoint: (lines, quad rows, columns)."""
        lines = 2 * len({p[0] for p in self.products})
        A, span = self.decimation, self.window[1]
        if self.direction == "analysis":
            cols = -(-self.tile_width // A)
            return lines, rows, A, bank_padded(cols, A) if padded else cols
        return lines, (rows + span - 2) // A + 1, self.tile_cols

    def _layout(self) -> tuple[int, bool]:
        """(tile rows, padded): program.fitting_layout's, or the last option where none
        fits."""
        options = (8, 4, 2, 1) if self.direction == "analysis" else \
            tuple(t for t in (32, 16, 8) if t * self.tile_cols % self.ADJOINT_THREADS == 0)
        return fitting_layout(options, self._shared_shape, self.SHARED_BYTES) or \
            (options[-1], False)

    @property
    def tile_rows(self) -> int:
        return self._layout()[0]

    @property
    def shared_shape(self) -> tuple[int, ...]:
        return self._shared_shape(*self._layout())

    @property
    def resources_note(self) -> str:
        """Why these kernels run below program.MIN_OCCUPANCY (wavegen.resources): measured
        with NVRTC 12.9 for sm_90, bounding their registers with __launch_bounds__ to
        reach it spills hundreds of bytes per thread."""
        if self.direction == "adjoint":
            return ("the adjoint's gather (every line's columns, then its rows, over three "
                    "segments of extended rows) takes 65-79 registers per thread on sm_90 "
                    "(38% occupancy) and 89-125 on sm_80 (25%) in float32 and 2-byte "
                    "storage, 96-128 and 98-133 (25%) in float64; bounded to 64 (50%) it "
                    "spills 16-48 bytes per thread in float32 and 88-172 in float64, which "
                    "only a GPU's timing can weigh against the occupancy")
        return ("in float64 the analysis holds every product's four quads in double "
                "registers, 70-190 per thread (12-38% occupancy); at 64 registers it spills "
                "up to 1.7 KB per thread. float32 and 2-byte storage keep 50%")

    @property
    def threads_per_block(self) -> int:
        """A thread per quad of the analysis tile; the adjoint's fixed block."""
        return self.tile_rows * self.tile_cols if self.direction == "analysis" else \
            self.ADJOINT_THREADS

    def launch_shape(self, quads: Sequence[int], stored: Sequence[int]) -> tuple[int, int]:
        """(blocks per plane, threads per block): analysis tiles the quad grid, the adjoint
        the stored samples it writes."""
        rows, cols = quads if self.direction == "analysis" else stored
        tiles = -(-rows // self.tile_rows) * -(-cols // self.tile_cols)
        return tiles, self.threads_per_block

    def launch(self, program: Program, quads: Sequence[int], stored: Sequence[int],
               lead: Sequence[int], planes: int, channels: int, x: View, lo: View | None,
               band: View | None, gm: View | None = None, zero: int = 0,
               mb: float = 0.0) -> None:
        """A level over ``planes`` planes (``channels`` per batch entry) whose signal has
        ``stored`` samples (``lead`` of them padding prepended) and quad grid ``quads``."""
        tiles, threads = self.launch_shape(quads, stored)
        program.launch(self, planes * tiles, threads, x=x, R=stored[0], W=stored[1],
                       lead_r=lead[0], lead_c=lead[1], lo=lo, band=band, gm=gm, P=planes,
                       Cch=channels, Rq=quads[0], Cq=quads[1], zero=zero, mb=mb)

    def transposed(self) -> "LevelKernel":
        return dataclasses.replace(
            self, direction="adjoint" if self.direction == "analysis" else "analysis")


# ------------------------------------------------------------------------------------------

@dataclasses.dataclass(frozen=True)
class Geometry:
    """Sizes of one call: the signal, the quad grid (= band size) of every level, which
    levels' bands are skipped, and the rows and columns a block-copy padding prepends to
    the signal before level 1 (``block_padding``; the level's quad grid covers the padded
    size, and the samples appended are the rest)."""
    signal: tuple[int, int]
    bands: tuple[tuple[int, int], ...]
    skipped: tuple[bool, ...]
    pad: tuple[int, int] = (0, 0)

    def flat(self) -> list[int]:
        return [*self.signal, len(self.bands), *(s for b in self.bands for s in b),
                *(int(s) for s in self.skipped), *self.pad]

    @staticmethod
    def unflat(values: Sequence[int], ndim: int = 2) -> "Geometry":
        v = [int(x) for x in values]
        J = v[2]
        bands = tuple((v[3 + 2 * j], v[4 + 2 * j]) for j in range(J))
        skipped = tuple(bool(s) for s in v[3 + 2 * J:3 + 3 * J])
        return Geometry((v[0], v[1]), bands, skipped, tuple(v[3 + 3 * J:]))

    def level_input(self, level: int) -> tuple[int, int]:
        """Stored size of the signal level ``level`` (1-based) filters."""
        return self.signal if level == 1 else tuple(2 * s for s in self.bands[level - 2])

    def lowpass(self, level: int) -> tuple[int, int]:
        return tuple(2 * s for s in self.bands[level - 1])

    def lead(self, level: int) -> tuple[int, int]:
        """Samples prepended by the padding: the block-copy padding at level 1; at q-shift
        levels, 1 where a side was not a multiple of 4."""
        if level == 1:
            return self.pad
        return tuple((4 * q - n) // 2 for q, n in zip(self.bands[level - 1],
                                                       self.level_input(level)))


def block_padding(side: int, multiple: int) -> tuple[int, int]:
    """(before, after): pytorch_wavelets' ScatLayerj2 pads a side to a multiple of 8 by
    prepending copies of its first (8 - r) // 2 samples and appending copies of its last
    (9 - r) // 2, r = side % 8; here for any ``multiple``."""
    rem = side % multiple
    if rem == 0:
        return 0, 0
    return (multiple - rem) // 2, (multiple + 1 - rem) // 2


@dataclasses.dataclass(frozen=True)
class LevelStep:
    kernel: LevelKernel
    level: int


class DtcwtPlan:
    """The plan of a dtcwt2d / idtcwt2d spec: its level kernels and their order."""
    ndim = 2
    family = "dtcwt"
    kernel_templates = "dtcwt"
    Geometry = Geometry

    def __init__(self, spec: Spec):
        self.spec = spec
        synthesis = spec.is_inverse
        self.kernels_by_stage = {}
        for stage in ("biort", "qshift"):
            for highpass in (True, False):
                k = self._level_kernel(stage, highpass, synthesis)
                self.kernels_by_stage[stage, highpass] = k.transposed() if spec.transposed \
                    else k
        used = self._used_kernels()
        # The kernels of both directions (training needs both), each compiled apart and
        # shared with the adjoint (artifact.py); the mode is a run-time flag of the
        # extension and layouts are run-time strides, so they serve every mode and layout.
        self.library_kernels = {k.name: k for k in used + [k.transposed() for k in used]}
        self.kernels = {k.name: k for k in used}
        kind = "dtcwt2d" if not spec.is_inverse else "idtcwt2d"
        self.library_json = json.dumps({"kind": kind, "biort": spec.biort.taps,
                                        "qshift": spec.qshift.taps,
                                        "kernels": sorted(self.library_kernels)},
                                       sort_keys=True)
        self.library_name = f"{kind}_{spec.biort.name}-{spec.qshift.name}_" + \
            "-".join(sorted({"hp" if k.highpass else "lp" for k in used}))

    def _level_kernel(self, stage: str, highpass: bool, synthesis: bool) -> LevelKernel:
        fs = self.spec.biort if stage == "biort" else self.spec.qshift
        h = "g" if synthesis else "h"
        if stage == "biort":
            make = lambda i: colfilter(fs[f"{h}{i}o"])                     # noqa: E731
            has_bp = fs.has(f"{h}2o")
            A, C = 2, 1
        else:
            # Analysis: coldfilt(., h?b, h?a). Synthesis: colifilt(., g?b, g?a) is the
            # transpose of coldfilt(., g?a, g?b).
            pair = (lambda i: (fs[f"h{i}b"], fs[f"h{i}a"])) if not synthesis else \
                (lambda i: (fs[f"g{i}a"], fs[f"g{i}b"]))
            make = lambda i: coldfilt(*pair(i))                            # noqa: E731
            has_bp = fs.has(f"{h}2a")
            A, C = 4, 2
        lo, hi = make(0), make(1)
        return LevelKernel("adjoint" if synthesis else "analysis", stage, A, C, lo, hi,
                           make(2) if has_bp else hi, highpass,
                           "embed" if synthesis else "copy")

    def _used_kernels(self):
        if self.spec.skip_hps is None or not self.spec.skip_hps:   # decided per call
            return list(self.kernels_by_stage.values())
        used = {("biort" if j == 0 else "qshift", not s)
                for j, s in enumerate(self.spec.skip_hps)}
        return [k for key, k in self.kernels_by_stage.items() if key in used]

    @property
    def takes_signal(self) -> bool:
        return self.spec.is_inverse == self.spec.transposed

    # -- geometry --------------------------------------------------------------------------
    def skipped(self, levels: int, given: Sequence[bool] | None = None) -> tuple[bool, ...]:
        if self.spec.skip_hps:
            return self.spec.skip_hps
        return tuple(given) if given is not None else (False,) * levels

    def geometry_from_signal(self, signal: Sequence[int], skipped=None, what: str = "DTCWT",
                             unit: str = "level", multiple: int = 1) -> Geometry:
        """The sizes of every level for ``signal``; with ``multiple`` > 1, each side is
        first block-padded to a multiple of it (block_padding)."""
        J = self.spec.levels
        if J is None:
            raise ValueError("idtcwt2d with levels=None cannot size its coefficients from a "
                             "signal; give the spec a number of levels")
        signal = tuple(int(s) for s in signal)
        minimum = (1 << (J - 1)) + 1 if J > 1 else 1
        if any(s < minimum for s in signal):
            most = max(1, min(s - 1 for s in signal).bit_length()) if min(signal) > 1 else 1
            raise ValueError(f"an image of size {signal} is too small for a {J}-{unit} "
                             f"{what}: each side must be at least {minimum} (2^{J - 1} + 1) "
                             f"so that every {unit} halves it; this size allows at most "
                             f"{most} {unit}(s)")
        pads = [block_padding(s, multiple) for s in signal]
        if any(max(p) > s for p, s in zip(pads, signal)):
            smallest = next(n for n in range(minimum, multiple + 1)
                            if all(max(block_padding(m, multiple)) <= m
                                   for m in range(n, multiple + 1)))
            raise ValueError(f"an image of size {signal} is too small for the {what}'s "
                             f"block padding to a multiple of {multiple} (pytorch_wavelets' "
                             f"size rule copies up to {multiple // 2} rows or columns from "
                             f"each end): each side must be at least {smallest}; "
                             "size_rule='dtcwt' pads nothing and takes sides down to "
                             f"{minimum}")
        bands, size = [], tuple(s + sum(p) for s, p in zip(signal, pads))
        for _ in range(J):
            size = tuple((s + 1) // 2 for s in size)
            bands.append(size)
        return Geometry(signal, tuple(bands), self.skipped(J, skipped),
                        tuple(p[0] for p in pads))

    def geometry_from_coefficients(self, lowpass: Sequence[int],
                                   bands: Sequence[Sequence[int]], skipped=None) -> Geometry:
        """Sizes of a synthesis call, checked as dtcwt's inverse checks them."""
        bands = tuple(tuple(int(s) for s in b) for b in bands)
        J = len(bands)
        if J == 0:
            raise ValueError("the inverse DTCWT needs the bands of at least one level")
        if self.spec.levels is not None and J != self.spec.levels:
            raise ValueError(f"expected bands for {self.spec.levels} levels, got {J}")
        lowpass = tuple(int(s) for s in lowpass)
        if lowpass != tuple(2 * s for s in bands[-1]):
            raise ValueError(f"the lowpass has size {lowpass} but the coarsest bands (level "
                             f"{J}) have size {bands[-1]}; the lowpass must be twice the band "
                             f"size, {tuple(2 * s for s in bands[-1])}")
        for j in range(1, J):
            finer, coarser = bands[j - 1], bands[j]
            if not all(4 * c - 2 * f in (0, 2) for f, c in zip(finer, coarser)):
                raise ValueError(
                    f"band sizes do not fit together: level {j + 1} has {coarser} and level "
                    f"{j} has {finer}; level {j} must be twice level {j + 1}'s size or one "
                    f"less, i.e. {tuple(2 * c for c in coarser)} or "
                    f"{tuple(2 * c - 1 for c in coarser)}")
            if any(f < 1 for f in finer):
                raise ValueError(f"level {j} has empty bands of size {finer}")
        return Geometry(tuple(2 * s for s in bands[0]), bands, self.skipped(J, skipped))

    # -- schedule --------------------------------------------------------------------------
    def steps(self, geom: Geometry) -> list[LevelStep]:
        """Levels in execution order: finest first for analysis, coarsest first otherwise."""
        steps = [LevelStep(self.kernels_by_stage["biort" if j == 1 else "qshift",
                                                 not geom.skipped[j - 1]], j)
                 for j in range(1, len(geom.bands) + 1)]
        return steps if self.direction == "analysis" else steps[::-1]

    @functools.cached_property
    def direction(self) -> str:
        return next(iter(self.kernels_by_stage.values())).direction

    # -- op signature ----------------------------------------------------------------------
    def band_shape(self, lead, size) -> tuple[int, ...]:
        """(N, C, 6, h, w, 2) with the 6 and the 2 moved to o_dim and ri_dim."""
        shape = [None] * 6
        shape[self.spec.o_dim], shape[self.spec.ri_dim] = 6, 2
        rest = iter((*lead, *size))
        return tuple(s if s is not None else next(rest) for s in shape)

    def coefficient_shapes(self, geom: Geometry, lead) -> list[tuple[int, ...]]:
        """Shapes of [yl, yh_1 .. yh_J, the requested scales of levels < J]; a skipped band
        is an empty tensor of shape (0,)."""
        J = len(geom.bands)
        shapes = [(*lead, *geom.lowpass(J))]
        shapes += [(0,) if s else self.band_shape(lead, b)
                   for b, s in zip(geom.bands, geom.skipped)]
        scales = self.spec.include_scale or (False,) * J
        shapes += [(*lead, *geom.lowpass(j)) for j in range(1, J) if scales[j - 1]]
        return shapes

    def io_shapes(self, geom: Geometry, lead) -> tuple[list, list]:
        signal = [(*lead, *geom.signal)]
        coeffs = self.coefficient_shapes(geom, lead)
        return (signal, coeffs) if self.takes_signal else (coeffs, signal)

    def program(self, geom: Geometry, layouts) -> Program:
        """A call's program: one level kernel per level. Band tensors are read and written
        through their strides, in whatever layout o_dim/ri_dim (or the caller) give them."""
        lead = tuple(layouts[0][0][:2])
        planes, channels = lead[0] * lead[1], lead[1]
        J = len(geom.bands)
        scales = self.spec.include_scale or (False,) * J
        o, ri = self.spec.o_dim, self.spec.ri_dim
        ndim, cdim, hdim, wdim = self.band_dims()
        program = Program(layouts)

        def planar(t: Ref) -> View:          # a (planes, h, w) tensor
            return t.at(n=channels * t.strides[0], c=t.strides[0], sr=t.strides[1])

        def launch(step, x: Ref, size, low: Ref, band: Ref | None):
            s = band.strides if band is not None else None
            step.kernel.launch(
                program, geom.bands[step.level - 1], size, geom.lead(step.level), planes,
                channels, x=planar(x), lo=planar(low),
                band=band and band.at(n=s[ndim], c=s[cdim], o=s[o], ri=s[ri], r=s[hdim],
                                      w=s[wdim]),
                zero=int(self.spec.mode == "zero"))

        _, shapes_out = self.io_shapes(geom, lead)
        if self.takes_signal:
            outputs = [program.buffer(f"output{i}", s) for i, s in enumerate(shapes_out)]
            for ref in outputs:
                program.output(ref, ref.shape)
            yl, bands = outputs[0], outputs[1:J + 1]
            scale_out = iter(outputs[J + 1:])
            x, size = program.input(0, (planes, *geom.signal)), geom.signal
            for step in self.steps(geom):
                j = step.level
                low = yl if j == J else (next(scale_out) if scales[j - 1] else
                                         program.buffer(f"low{j}", (planes, *geom.lowpass(j))))
                low = low.view(planes, *low.shape[-2:])
                band = bands[j - 1]
                launch(step, x, size, low, band if len(band.shape) == 6 else None)
                x, size = low, geom.lowpass(j)
            return program
        bands = [program.input(1 + j) if len(layouts[1 + j][0]) == 6 else None
                 for j in range(J)]
        scaled = [j for j in range(1, J) if scales[j - 1]]
        scale_in = {j: program.input(J + 1 + i, (planes, *layouts[J + 1 + i][0][-2:]))
                    for i, j in enumerate(scaled)}
        low = program.input(0, (planes, *layouts[0][0][-2:]))
        for step in self.steps(geom):
            j = step.level
            if j in scale_in:                   # this lowpass was also an output
                low = program.add(f"sum{j}", low, scale_in[j])
            size = geom.level_input(j)
            x = program.buffer(f"signal{j}", (planes, *size))
            launch(step, x, size, low, bands[j - 1])
            low = x
        program.output(low, (*lead, *geom.signal))
        return program

    def band_dims(self) -> tuple[int, int, int, int]:
        """Dimensions of (N, C, h, w) in a band tensor: the ones o_dim and ri_dim leave."""
        return tuple(d for d in range(6) if d not in (self.spec.o_dim, self.spec.ri_dim))

    @staticmethod
    def fill_bands(lowpass, bands):
        """Sizes of the skipped (None) bands: half the lowpass at the coarsest level when the
        lowpass is given; else half the finer band, rounded up, where that is known; else
        the coarser band doubled."""
        bands = list(bands)
        if bands[-1] is None and lowpass is not None:
            bands[-1] = tuple(s // 2 for s in lowpass)
        for j in range(1, len(bands)):
            if bands[j] is None and bands[j - 1] is not None:
                bands[j] = tuple((s + 1) // 2 for s in bands[j - 1])
        for j in range(len(bands) - 2, -1, -1):
            if bands[j] is None:
                bands[j] = tuple(2 * s for s in bands[j + 1])
        return bands
