"""``wavegen.build(spec)``: a compiled, differentiable transform."""
from __future__ import annotations

import dataclasses

import torch

from . import artifact, render
from .ops import DTYPE_NAMES, composed_scatter, run, scatter
from .plan import Geometry, from_json
from .spec import Spec

TARGETS = ("cpu", "cuda_emulated")


class Transform:
    """A compiled transform: call it on tensors, read its generated source, take its
    adjoint or inverse. Kernels compile lazily per target, dtype and device, through the
    disk cache."""

    def __init__(self, spec: Spec, target: str | None = None):
        if target is not None and target not in TARGETS:
            raise ValueError(f"unknown target {target!r}; build() accepts None (CPU tensors on "
                             f"the CPU target, CUDA tensors on CUDA) or one of {TARGETS}")
        self.spec = spec
        self.plan = from_json(spec.json)
        self.target = target
        self._json = spec.json

    def __reduce__(self):          # pickle as the spec; compiled modules are per process
        return build, (self.spec, self.target)

    def __repr__(self):
        return f"Transform({self.spec.readable_name()}, target={self.target or 'auto'})"

    # -- generated code --------------------------------------------------------------------
    def source(self, target: str = "cuda", dtype: str = "float32") -> str:
        """The generated source for ``target`` ('cuda', 'cpu' or 'cuda_emulated')."""
        return render.render(self.plan, target, dtype)

    def adjoint(self) -> "Transform":
        return build(self.spec.adjoint(), self.target)

    def inverse(self) -> "Transform":
        return build(self.spec.inverse(), self.target)

    def module(self, target: str, dtype: str, device: torch.device):
        """The artifact of this transform's kernels for a target, dtype and device (its
        kernels compile or load when a call first needs them)."""
        return artifact.get(self.plan, target, dtype, device)

    # -- calling ---------------------------------------------------------------------------
    def __call__(self, *args, signal_size=None, level_warning: bool = True):
        """Analysis: ``t(x) -> (yl, [yh_1 .. yh_J])``. Synthesis: ``t(yl, yh)`` or
        ``t((yl, yh)) -> x``. Transposed specs swap the two; ``signal_size`` picks the
        signal size of an analysis adjoint (default: the size the inverse would produce).
        A DWT with more levels than ``pywt.dwt_max_level`` allows warns as PyWavelets
        does, unless ``level_warning`` is False."""
        if self.plan.family == "dtcwt":
            return self._call_dtcwt(args, signal_size)
        if self.plan.family == "scatter":
            if len(args) != 1:
                raise TypeError(f"scatter2d takes one tensor x, got {len(args)} arguments")
            x = check_tensor(args[0], "x", 4, 2)
            if self.spec.combine_colour and x.shape[1] != 3:
                raise ValueError(f"combine_colour=True combines 3 colour channels: it takes "
                                 f"(N, 3, H, W) input; got {tuple(x.shape)}. Use "
                                 "combine_colour=False for other channel counts")
            geom = self.plan.geometry_from_signal(tuple(x.shape[2:]))
            # The fused kernels compute per-channel magnitudes; combined ones are composed.
            network = composed_scatter if self.spec.combine_colour else scatter
            return network(x, self._json, geom.flat(), self._target_for(x))
        if self.plan.takes_signal:
            if len(args) != 1:
                raise TypeError(f"{self.spec.kind} takes one tensor x, got {len(args)} "
                                "arguments")
            inputs = [check_tensor(args[0], "x", self.spec.ndim + 2, self.spec.ndim)]
            geom = self.plan.geometry_for_inputs([tuple(inputs[0].shape[2:])], level_warning)
        else:
            yl, yh = _split_coefficients(args)
            inputs = self._check_coefficients(yl, yh)
            geom = self.plan.geometry_for_inputs([tuple(t.shape[-self.spec.ndim:])
                                                  for t in inputs])
            if signal_size is not None:
                signal = tuple(signal_size) if self.spec.ndim == 2 else (int(signal_size),)
                geom = self._resized(geom, signal)
        target = self._target_for(inputs[0])
        outputs = run(inputs, self._json, geom.flat(), target)
        if self.plan.takes_signal:
            return outputs[0], list(outputs[1:])
        return outputs[0]

    def _call_dtcwt(self, args, signal_size):
        """pytorch_wavelets' conventions: forward ``x -> (yl, yh)`` (``(scales, yh)`` with
        include_scale; skipped bands are 0-d zeros); inverse ``(yl, yh) -> x``, where a
        band (or the lowpass) may be None, 0-d or empty to mean zeros."""
        spec, plan = self.spec, self.plan
        J = spec.levels
        scales = spec.include_scale or ()
        if plan.takes_signal:
            if len(args) != 1:
                raise TypeError(f"{spec.kind} takes one tensor x, got {len(args)} arguments")
            x = check_tensor(args[0], "x", 4, 2)
            geom = plan.geometry_from_signal(tuple(x.shape[2:]))
            out = run([x], self._json, geom.flat(), self._target_for(x))
            yh = [b if b.dim() == 6 else b.new_zeros(()) for b in out[1:J + 1]]
            if not any(scales):
                return out[0], yh
            extra = iter(out[J + 1:])
            lows = [next(extra) if s else out[0].new_zeros(()) for s in scales[:-1]]
            return lows + [out[0] if scales[-1] else out[0].new_zeros(())], yh
        yl, yh = _split_coefficients(args)
        if any(scales):         # the adjoint of a forward with include_scale takes its scales
            lows = list(yl)
            yl = lows[-1]
        inputs, geom = self._dtcwt_coefficients(yl, yh)
        if any(scales):
            inputs += [check_tensor(lows[j], f"scales[{j}]", 4, 2)
                       for j in range(J - 1) if scales[j]]
        if signal_size is not None:
            candidate = plan.geometry_from_signal(tuple(signal_size))
            if candidate.bands != geom.bands:
                raise ValueError(f"signal_size {tuple(signal_size)} does not produce bands "
                                 f"of the given sizes {geom.bands}")
            geom = dataclasses.replace(geom, signal=tuple(signal_size))
        return run(inputs, self._json, geom.flat(), self._target_for(inputs[0]))[0]

    def _dtcwt_coefficients(self, yl, yh):
        spec, plan = self.spec, self.plan
        if not isinstance(yh, (list, tuple)):
            raise TypeError("yh must be a list of band tensors, finest level first; got "
                            f"{type(yh).__name__}")
        if spec.levels is not None and len(yh) != spec.levels:
            raise ValueError(f"yh has {len(yh)} levels but the transform has {spec.levels}")
        layout = "(" + ", ".join(map(str, plan.band_shape(("N", "C"), ("h", "w")))) + ")"
        given = [b is not None and b.dim() > 0 and b.numel() > 0 for b in yh]
        ref = yl if yl is not None and yl.dim() > 0 and yl.numel() > 0 else \
            next((b for b, g in zip(yh, given) if g), None)
        if ref is None:
            raise ValueError("the inverse DTCWT needs the lowpass or at least one band")
        ndim, cdim, hdim, wdim = plan.band_dims()
        lead = tuple(ref.shape[:2]) if ref is yl else (ref.shape[ndim], ref.shape[cdim])
        bands = []
        for j, (band, g) in enumerate(zip(yh, given)):
            if not g:
                bands.append(None)
                continue
            band = check_tensor(band, f"yh[{j}]", 6, 2)
            if band.shape[spec.o_dim] != 6 or band.shape[spec.ri_dim] != 2 or \
                    (band.shape[ndim], band.shape[cdim]) != lead:
                raise ValueError(f"yh[{j}] (level {j + 1}) has shape {tuple(band.shape)}; "
                                 f"bands must have shape {layout} with 6 orientations "
                                 f"(o_dim={spec.o_dim}), real/imaginary (ri_dim={spec.ri_dim}) "
                                 f"and (N, C) = {lead}")
            if band.dtype != ref.dtype or band.device != ref.device:
                raise ValueError(f"yh[{j}] is {band.dtype} on {band.device}; expected "
                                 f"{ref.dtype} on {ref.device} like the other coefficients")
            bands.append((band.shape[hdim], band.shape[wdim]))
        low_size = tuple(yl.shape[2:]) if ref is yl else None
        bands = plan.fill_bands(low_size, bands)
        if low_size is None:
            low_size = tuple(2 * s for s in bands[-1])
            yl = ref.new_zeros((*lead, *low_size))
        yl = check_tensor(yl, "yl", 4, 2)
        if tuple(yl.shape[:2]) != lead:
            raise ValueError(f"yl has (N, C) = {tuple(yl.shape[:2])} but the bands have {lead}")
        geom = plan.geometry_from_coefficients(low_size, bands, [not g for g in given])
        inputs = [yl] + [b if g else yl.new_empty((0,)) for b, g in zip(yh, given)]
        return inputs, geom

    def _resized(self, geom: Geometry, signal) -> Geometry:
        candidate = self.plan.geometry_from_signal(signal)
        if candidate.details != geom.details:
            raise ValueError(f"signal_size {signal} does not produce coefficients of the "
                             f"given sizes {geom.details}")
        return Geometry(tuple(signal), geom.details, geom.approx)

    def _target_for(self, tensor: torch.Tensor) -> str:
        if tensor.device.type == "cuda":
            if self.target is not None:
                raise ValueError(f"target {self.target!r} runs on CPU tensors; got a tensor on "
                                 f"{tensor.device}")
            from .backends.cuda import cupy
            cupy()
            return "cuda"
        if tensor.device.type != "cpu":
            raise ValueError(f"unsupported device {tensor.device}; wavegen runs on CPU and "
                             "CUDA tensors")
        return self.target or "cpu"

    def _check_coefficients(self, yl, yh) -> list[torch.Tensor]:
        nd = self.spec.ndim
        layout = "(N, C, H, W)" if nd == 2 else "(N, C, L)"
        yl = check_tensor(yl, "yl", nd + 2, nd)
        if not isinstance(yh, (list, tuple)):
            raise TypeError("yh must be a list of detail tensors, finest level first; got "
                            f"{type(yh).__name__}")
        if self.spec.levels is not None and len(yh) != self.spec.levels:
            raise ValueError(f"yh has {len(yh)} levels but the transform has "
                             f"{self.spec.levels}")
        band_layout = "(N, C, 3, h, w)" if nd == 2 else "(N, C, L)"
        tensors = [yl]
        for j, band in enumerate(yh, 1):
            band = check_tensor(band, f"yh[{j - 1}]", nd + 2 + (nd == 2), nd)
            if nd == 2 and band.shape[2] != 3:
                raise ValueError(f"yh[{j - 1}] must have shape {band_layout} with 3 bands "
                                 f"(cH, cV, cD) in dimension 2; got {tuple(band.shape)}")
            if band.shape[:2] != yl.shape[:2] or band.dtype != yl.dtype or \
                    band.device != yl.device:
                raise ValueError(f"yh[{j - 1}] has batch/channels {tuple(band.shape[:2])}, "
                                 f"{band.dtype} on {band.device}; yl has "
                                 f"{tuple(yl.shape[:2])}, {yl.dtype} on {yl.device}; "
                                 f"they must agree (yl is {layout})")
            tensors.append(band)
        return tensors


def _split_coefficients(args):
    if len(args) == 1 and isinstance(args[0], (tuple, list)) and len(args[0]) == 2:
        args = tuple(args[0])
    if len(args) != 2:
        got = f"one tensor of shape {tuple(args[0].shape)}" if len(args) == 1 and \
            isinstance(args[0], torch.Tensor) else f"{len(args)} arguments"
        raise TypeError("synthesis takes (yl, yh) or a tuple (yl, yh), where yh is a list of "
                        f"detail tensors, finest level first; got {got}")
    return args


def check_tensor(t, what: str, ndim: int, spatial: int) -> torch.Tensor:
    if not isinstance(t, torch.Tensor):
        raise TypeError(f"{what} must be a torch.Tensor, got {type(t).__name__}")
    if t.dtype not in DTYPE_NAMES:
        raise TypeError(f"{what} has dtype {t.dtype}; wavegen accepts torch.float32, "
                        "torch.float64, torch.float16 and torch.bfloat16 (convert integer or "
                        "complex data first)")
    if t.dim() != ndim:
        names = {4: "(N, C, H, W)", 3: "(N, C, L)", 5: "(N, C, 3, h, w)",
                 6: "(N, C, 6, h, w, 2) (or as o_dim/ri_dim place 6 and 2)"}
        raise ValueError(f"{what} must be a {ndim}-D tensor {names[ndim]}; got shape "
                         f"{tuple(t.shape)}")
    return t


_BUILT: dict[tuple[str, str | None], Transform] = {}


def build_from_json(spec_json: str, target: str | None = None) -> Transform:
    transform = _BUILT.get((spec_json, target))
    if transform is None:
        transform = _BUILT.setdefault((spec_json, target),
                                      Transform(Spec.from_json(spec_json), target))
    return transform


def precompile(specs, dtypes=("float32",), targets=("cpu",)) -> int:
    """Build ahead of time (a Docker build, before a DDP job) every kernel the specs'
    transforms and their gradients use, for each dtype and target ('cpu', 'cuda' on the
    current device, 'cuda_emulated'), into the disk cache. Returns the number of kernels
    compiled or found."""
    count = 0
    for spec in specs:
        transforms = [build(spec)]
        if not spec.is_scatter and not spec.is_dtcwt:
            transforms.append(build(spec.adjoint()))        # the DWT's gradient kernels
        for t in transforms:
            for target in targets:
                device = torch.device("cuda") if target == "cuda" else torch.device("cpu")
                for dtype in dtypes:
                    artifact = t.module(target, dtype, device)
                    artifact.ensure_all()
                    count += len(t.plan.library_kernels)
    return count


def build(spec: Spec, target: str | None = None) -> Transform:
    """Compile ``spec`` (lazily, per dtype and device) into a callable ``Transform``."""
    if not isinstance(spec, Spec):
        raise TypeError(f"build() takes a wavegen.Spec, got {type(spec).__name__}")
    return build_from_json(spec.json, target)
