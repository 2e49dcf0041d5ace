"""The plan of the DTCWT scattering network (scatter2d): fused stages of DTCWT levels.

A scattering coefficient is a *path*: a tuple of (scale j, orientation o) pairs, one per
order (the empty path is order 0). Every stage is one DTCWT level kernel (plan_dtcwt) whose
bands leave as the biased magnitude |z|_b and whose lowpass leaves as it is or 2x2
average-pooled, written straight into the channels of the next stage's input or of the
output. Two kinds of stage take a signal from scale s to s + 1:

* the lowpass chain (``qshift`` given, pytorch_wavelets' ScatLayerj2): level s + 1 of the
  DTCWT of x (biorthogonal at level 1, q-shift after), keeping the full-resolution lowpass
  until the last scale, where it is pooled into the order-0 output; its magnitudes are the
  order-1 paths of scale s + 1;
* a node stage: the level-1 (biorthogonal) DTCWT of every path at scale s of order >= 1
  (and of the order-0 path too when ``qshift`` is None: stacked ScatLayers), whose pooled
  lowpass carries the path to scale s + 1 and whose magnitudes, below the maximum order,
  extend it by (s + 1, o).

Output channels are ``k * C + c`` with paths ordered by order, then by their pairs from
the last to the first (scale before orientation). For J = 2 this is ScatLayerj2's order:
0; (1, o) at 1 + o; (2, o) at 7 + o; ((1, o1), (2, o2)) at 13 + 6 o2 + o1.

Sizes follow one of two rules (``spec.size_rule``). 'pytorch_wavelets': with the lowpass
chain and J >= 2, the image is block-padded to a multiple of 2^(J+1), as ScatLayerj2 pads
to a multiple of 8 (plan_dtcwt.block_padding), so that no later stage pads; scale s has
sides ceil(side / 2^(J+1)) * 2^(J+1-s). 'dtcwt': dtcwt's rule at every stage (an odd side
repeats its last sample; a q-shift level whose input side is not a multiple of 4 repeats
both ends), so scale s has sides ceil(side / 2^s). Without the chain (stacked ScatLayers)
both rules repeat the last sample of an odd side at every stage. Either way the kernels
read the stored image through the padding (plan_dtcwt): no padded copy is made.

A launch runs one stage kernel over a run of source paths whose targets advance by one
path per source path (and by a fixed number of paths per orientation): the strides of the
kernel's lowpass and band views then place every output.
"""
from __future__ import annotations

import dataclasses
import functools
import json

from .plan_dtcwt import DtcwtPlan, Geometry, LevelKernel
from .program import Program, Ref, View
from .spec import Spec


def path_key(path) -> tuple:
    """Output order: by order, then the pairs from the last one back (scale, orientation)."""
    return len(path), tuple(v for pair in reversed(path) for v in pair)


@dataclasses.dataclass(frozen=True)
class Launch:
    """One stage kernel over source paths [first, first + count) of buffer ``source``;
    source path first + i writes its lowpass to path low[1] + i of buffer low[0] and band
    o to path band[1] + i + o * band[2] of buffer band[0] (band None: lowpass only)."""
    kernel: LevelKernel
    level: int                       # the DTCWT level whose sizes the stage has
    scale: int                       # the scale of the source
    source: str
    first: int
    count: int
    low: tuple[str, int]
    band: tuple[str, int, int] | None

    @property
    def reads_signal(self) -> bool:
        """Whether the source is x or the lowpass chain, whose levels carry the DTCWT's
        padding (node stages read magnitudes, which never need any)."""
        return self.source == "x" or self.source.startswith("L")


def backward_kernels(kernel: LevelKernel) -> tuple[LevelKernel | None, LevelKernel]:
    """(magnitude gradient kernel or None, adjoint kernel): a stage kernel's backward."""
    grad = dataclasses.replace(kernel, bands="magnitude_grad", lowpass="none") \
        if kernel.highpass else None
    return grad, dataclasses.replace(kernel.transposed(), bands="complex")


class ScatterPlan:
    """The plan of a scatter2d spec: its buffers (paths per scale) and launches."""
    ndim = 2
    family = "scatter"
    kernel_templates = "dtcwt"
    Geometry = Geometry

    def __init__(self, spec: Spec):
        self.spec = spec
        J, order, chain = spec.levels, spec.order, spec.qshift is not None
        self.paths = [()] + [p for k in range(1, order + 1) for p in self._paths(k, J)]
        self.paths.sort(key=path_key)
        # Buffers of paths: 'x' (the input), 'out', per scale s < J the node paths 'N{s}'
        # and, with the lowpass chain, its full-resolution lowpass 'L{s}'.
        self.buffers = {"x": [()], "out": self.paths}
        for s in range(1, J):
            self.buffers[f"N{s}"] = [p for p in self.paths if all(j <= s for j, _ in p)
                                     and (p or not chain)]
            if chain:
                self.buffers[f"L{s}"] = [()]
        self.launches = []
        for s in range(J):
            target = "out" if s + 1 == J else f"N{s + 1}"
            if chain:
                self._chain_stage(s, J)
            source = "x" if s == 0 else f"N{s}"
            if s > 0 or not chain:
                self._node_stage(source, s, target)
        # The stage kernels the launches run and their backward kernels (each compiles
        # apart, shared with every network that runs it: artifact.py).
        kernels = {}
        for launch in self.launches:
            for k in (launch.kernel, *backward_kernels(launch.kernel)):
                if k is not None:
                    kernels[k.name] = k
        # The backward recomputes only the stages that write an intermediate buffer: the
        # magnitude gradient kernels recompute each stage's bands themselves.
        self.recomputed = [k for k in self.launches
                           if k.low[0] != "out" or (k.band and k.band[0] != "out")]
        self.library_kernels = self.kernels = kernels
        self.library_json = json.dumps({"kind": spec.kind, "biort": spec.biort.taps,
                                        "qshift": spec.qshift and spec.qshift.taps,
                                        "kernels": sorted(kernels)}, sort_keys=True)
        self.library_name = f"{spec.kind}_{spec.biort.name}-" \
            f"{spec.qshift.name if chain else 'biort'}"

    @staticmethod
    def _paths(k: int, J: int):
        """Paths of order k: strictly increasing scales, any orientations."""
        if k == 0:
            return [()]
        return [p + ((j, o),) for p in ScatterPlan._paths(k - 1, J)
                for j in range((p[-1][0] if p else 0) + 1, J + 1) for o in range(6)]

    @functools.cached_property
    def _dtcwt(self) -> DtcwtPlan:
        """The DTCWT whose level kernels the stages use (without the lowpass chain, its
        q-shift set is a placeholder that no stage uses)."""
        return DtcwtPlan(dataclasses.replace(self.spec, kind="dtcwt2d", order=1,
                                             qshift=self.spec.qshift or "qshift_a"))

    def _kernel(self, stage: str, lowpass: str, highpass: bool) -> LevelKernel:
        k = self._dtcwt.kernels_by_stage[stage, highpass]
        return dataclasses.replace(k, lowpass=lowpass, bands="magnitude")

    def _position(self, buffer: str, path) -> int:
        return self.buffers[buffer].index(path)

    def _chain_stage(self, s: int, J: int):
        """Level s + 1 of the lowpass chain."""
        last = s + 1 == J
        target = "out" if last else f"N{s + 1}"
        low = ("out", self._position("out", ())) if last else (f"L{s + 1}", 0)
        band = (target, self._position(target, ((s + 1, 0),)), 1)
        self.launches.append(Launch(self._kernel("biort" if s == 0 else "qshift",
                                                 "pooled" if last else "full", True),
                                    s + 1, s, "x" if s == 0 else f"L{s}", 0, 1, low, band))

    def _node_stage(self, source: str, s: int, target: str):
        """The level-1 DTCWT of every path of ``source``, in runs of affine targets."""
        for m, path in enumerate(self.buffers[source]):
            low = (target, self._position(target, path))
            band = None
            if len(path) < self.spec.order:
                ends = [self._position(target, path + ((s + 1, o),)) for o in range(6)]
                band = (target, ends[0], ends[1] - ends[0])
            last = self.launches[-1] if self.launches else None
            if last is not None and last.source == source and last.scale == s and \
                    last.low == (target, low[1] - m + last.first) and \
                    (last.band is None) == (band is None) and \
                    (band is None or last.band == (target, band[1] - m + last.first, band[2])):
                self.launches[-1] = dataclasses.replace(last, count=last.count + 1)
                continue
            kernel = self._kernel("biort", "pooled", band is not None)
            self.launches.append(Launch(kernel, 1, s, source, m, 1, low, band))

    # -- geometry and shapes -----------------------------------------------------------------
    @property
    def block_multiple(self) -> int:
        """The multiple the pytorch_wavelets size rule block-pads the image to: 2^(J+1) with
        the lowpass chain and J >= 2 (every q-shift level's input is then a multiple of 4),
        else 1 (ScatLayer repeats the last sample of an odd side, which is dtcwt's rule)."""
        J = self.spec.levels
        chain = self.spec.qshift is not None and J >= 2
        return 1 << (J + 1) if chain and self.spec.size_rule == "pytorch_wavelets" else 1

    def geometry_from_signal(self, signal) -> Geometry:
        return self._dtcwt.geometry_from_signal(signal, what="scattering network",
                                                unit="scale", multiple=self.block_multiple)

    def padding_indices(self, geom: Geometry) -> tuple[list[int], list[int]]:
        """The stored rows and columns the block-padded image consists of (what the kernels
        read through their index functions), for the composed network (ops)."""
        out = []
        for n, before, quads in zip(geom.signal, geom.pad, geom.bands[0]):
            after = 2 * quads - n - before if self.block_multiple > 1 else 0
            out.append(list(range(before)) + list(range(n)) + list(range(n - after, n)))
        return out[0], out[1]

    @staticmethod
    def size(geom: Geometry, scale: int) -> tuple[int, int]:
        return geom.signal if scale == 0 else geom.bands[scale - 1]

    def buffer_shape(self, name: str, geom: Geometry, lead) -> tuple[int, ...]:
        """(N, paths, C, h, w) of a buffer."""
        if name == "x":
            return (lead[0], 1, lead[1], *geom.signal)
        if name.startswith("L"):
            return (lead[0], 1, lead[1], *geom.lowpass(int(name[1:])))
        scale = len(geom.bands) if name == "out" else int(name[1:])
        return (lead[0], len(self.buffers[name]), lead[1], *self.size(geom, scale))

    def io_shapes(self, geom: Geometry, lead) -> tuple[list, list]:
        """With combine_colour, every path but the lowpass has one channel."""
        n, paths, c, h, w = self.buffer_shape("out", geom, lead)
        channels = c + paths - 1 if self.spec.combine_colour else paths * c
        return [(*lead, *geom.signal)], [(n, channels, h, w)]

    # -- programs ----------------------------------------------------------------------------
    def program(self, geom: Geometry, layouts) -> Program:
        """scatter2d: [x] -> [the scattering coefficients (N, paths * C, h, w)]."""
        lead = tuple(layouts[0][0][:2])
        stages = _Stages(self, geom, Program(layouts), lead)
        out = stages.forward(stages.program.input(0, self.buffer_shape("x", geom, lead)))
        n, paths, c, h, w = out["out"].shape
        stages.program.output(out["out"], (n, paths * c, h, w))
        return stages.program

    def backward_program(self, geom: Geometry, layouts) -> Program:
        """[x, the output's gradient] -> [x's gradient], recomputing from x."""
        lead = tuple(layouts[0][0][:2])
        stages = _Stages(self, geom, Program(layouts), lead)
        program = stages.program
        grad_x = stages.backward(program.input(0, self.buffer_shape("x", geom, lead)),
                                 program.input(1, self.buffer_shape("out", geom, lead)))
        program.output(grad_x, layouts[0][0])
        return program


class _Stages:
    """The launches of one scatter2d program, forward or backward. Buffers are contiguous
    (N, paths, C, h, w) tensors, so a run of paths is a view with batch stride
    paths * C * h * w and channel stride h * w."""

    def __init__(self, plan: ScatterPlan, geom: Geometry, program: Program, lead):
        self.plan, self.geom, self.program, self.lead = plan, geom, program, lead

    def new(self, name: str, prefix: str = "") -> Ref:
        return self.program.buffer(prefix + name,
                                   self.plan.buffer_shape(name, self.geom, self.lead))

    @staticmethod
    def planes(t: Ref, path: int) -> View:
        """Buffer t from path ``path`` on, as the x and lowpass views of a level kernel."""
        _, paths, c, h, w = t.shape
        return t.at(path * c * h * w, n=paths * c * h * w, c=h * w, sr=w)

    @staticmethod
    def oriented(t: Ref, path: int, o_paths: int, **extra: int) -> View:
        """Buffer t from path ``path`` on, an orientation advancing ``o_paths`` paths."""
        _, paths, c, h, w = t.shape
        plane = h * w
        return t.at(path * c * plane, n=paths * c * plane, c=plane, o=o_paths * c * plane,
                    r=w, w=1, **extra)

    def forward(self, x: Ref, launches=None) -> dict[str, Ref]:
        """x and the buffers ``launches`` (default: all, so the output too) write."""
        buffers = {"x": x}
        for launch in self.plan.launches if launches is None else launches:
            for name in (launch.low[0], launch.band and launch.band[0]):
                if name and name not in buffers:
                    buffers[name] = self.new(name)
            self.launch(launch, launch.kernel, buffers, buffers)
        return buffers

    def launch(self, launch: Launch, kernel: LevelKernel, source: dict, targets: dict,
               complex_band: Ref | None = None, gradient: dict | None = None) -> None:
        """``kernel`` for ``launch``: x from ``source``, lowpass and magnitudes from or to
        ``targets``; the backward kernels also take the complex band gradients
        ``complex_band`` (N, count * C, 6, 2, h, w) and the magnitude gradients
        (``gradient``)."""
        n, c = self.lead
        src = source[launch.source]
        if kernel.bands == "magnitude" and launch.band is not None:
            name, path, o_paths = launch.band
            band = self.oriented(targets[name], path, o_paths, ri=0)
        elif complex_band is not None:
            band = complex_band.at(**dict(zip(("n", "c", "o", "ri", "r", "w"),
                                              complex_band.strides)))
        else:
            band = None
        kernel.launch(
            self.program, self.geom.bands[launch.scale], src.shape[-2:],
            self.geom.lead(launch.level) if launch.reads_signal else (0, 0),
            n * launch.count * c, launch.count * c, x=self.planes(src, launch.first),
            lo=self.planes(targets[launch.low[0]], launch.low[1])
            if kernel.lowpass != "none" else None,
            band=band,
            gm=self.oriented(gradient[launch.band[0]], *launch.band[1:])
            if kernel.bands == "magnitude_grad" else None,
            zero=int(self.plan.spec.mode == "zero"), mb=float(self.plan.spec.magbias))

    def backward(self, x: Ref, grad_out: Ref) -> Ref:
        """The gradient of x, recomputing the forward's buffers from x."""
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
