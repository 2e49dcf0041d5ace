"""Layers with pytorch_wavelets' names, arguments and output layouts.

Migrating is changing the import. Differences (README): all nine PyWavelets modes, exact
gradients in every mode, float64 taps for float64 inputs, and the 4-tuple
``(h0_col, h1_col, h0_row, h1_row)`` filters the height axis with the ``*_col`` filters,
as the names say (pytorch_wavelets applies them to the width).

The modules hold a Spec and its Transform, which pickles as its spec and has no tensors,
so modules pickle, move across devices and replicate under DataParallel/DDP.
"""
from __future__ import annotations

import torch
from torch import nn

from .plan import output_length, synthesis_length
from .spec import Spec, make_bank
from .ops import magnitude
from .transform import build


def _wavelet(wave, synthesis: bool, ndim: int):
    """pytorch_wavelets' ``wave`` argument as a Spec wavelet."""
    if isinstance(wave, (tuple, list)) and len(wave) in (2, 4):
        pairs = [wave[:2], wave[2:]] if len(wave) == 4 else [wave]
        if len(wave) == 4 and ndim != 2:
            raise ValueError("a 4-tuple of filters (col, row) is for 2-D transforms only")
        banks = [make_bank("custom", *((None, None) + tuple(p) if synthesis else p))
                 for p in pairs]
        return tuple(banks) if len(banks) == 2 else banks[0]
    return wave


class _Layer(nn.Module):
    def __init__(self, kind: str, wave, levels: int, mode: str):
        super().__init__()
        self.spec = Spec(kind, _wavelet(wave, kind.startswith("i"), 2 if "2d" in kind else 1),
                         levels, mode)
        self.mode = self.spec.mode
        self.J = levels
        self.transform = build(self.spec)

    def extra_repr(self) -> str:
        names = "/".join(dict.fromkeys(b.name for b in self.spec.banks))
        levels = "" if self.J is None else f"J={self.J}, "
        return f"{levels}wave={names}, mode={self.mode!r}"


class DWTForward(_Layer):
    """2-D DWT: ``(N, C, H, W) -> (yl, [yh_1 .. yh_J])``, ``yh_j: (N, C, 3, h_j, w_j)`` in
    pywt band order (cH, cV, cD), finest level first."""

    def __init__(self, J: int = 1, wave="db1", mode: str = "zero"):
        super().__init__("dwt2d", wave, J, mode)

    def forward(self, x):
        return self.transform(x)


class DWT1DForward(_Layer):
    """1-D DWT: ``(N, C, L) -> (yl, [yh_1 .. yh_J])``, finest level first."""

    def __init__(self, J: int = 1, wave="db1", mode: str = "zero"):
        super().__init__("dwt1d", wave, J, mode)

    def forward(self, x):
        return self.transform(x)


class _Inverse(_Layer):
    """The number of levels is ``len(yh)``, as in pytorch_wavelets: a synthesis spec with
    levels=None, whose kernels serve every count. ``None`` bands are zeros (``_fill``)."""

    def __init__(self, kind: str, wave, mode: str):
        super().__init__(kind, wave, None, mode)

    def forward(self, coeffs):
        yl, yh = coeffs
        if not isinstance(yh, (list, tuple)) or len(yh) == 0:
            raise ValueError("coeffs must be (yl, yh) with yh a non-empty list of detail "
                             "tensors, finest level first")
        if any(h is None for h in yh):
            yh = self._fill(self.spec, yl, list(yh))
        return self.transform(yl, list(yh))

    def _fill(self, spec: Spec, yl, yh):
        """Zeros for the ``None`` bands, sized from the finer level when it is known (its
        analysis length), else from the approximation they meet (pytorch_wavelets' rule)."""
        if not isinstance(yl, torch.Tensor):
            raise TypeError(f"yl must be a torch.Tensor, got {type(yl).__name__}")
        sizes = [None if h is None else tuple(h.shape[-spec.ndim:]) for h in yh]
        for j in range(1, len(yh)):
            if sizes[j] is None and sizes[j - 1] is not None:
                sizes[j] = tuple(output_length(s, b.length, spec.mode)
                                 for s, b in zip(sizes[j - 1], spec.banks))
        size = tuple(yl.shape[2:])
        for j in range(len(yh) - 1, -1, -1):
            if yh[j] is None:
                sizes[j] = sizes[j] or size
                yh[j] = yl.new_zeros((*yl.shape[:2], *((3,) if spec.ndim == 2 else ()),
                                      *sizes[j]))
            size = tuple(synthesis_length(s, b.length, spec.mode)
                         for s, b in zip(sizes[j], spec.banks))
        return yh


class DWTInverse(_Inverse):
    """Inverse 2-D DWT: ``(yl, yh) -> x``, equal to ``pywt.waverec2``."""

    def __init__(self, wave="db1", mode: str = "zero"):
        super().__init__("idwt2d", wave, mode)


class DWT1DInverse(_Inverse):
    """Inverse 1-D DWT: ``(yl, yh) -> x``, equal to ``pywt.waverec``."""

    def __init__(self, wave="db1", mode: str = "zero"):
        super().__init__("idwt1d", wave, mode)


class DTCWTForward(nn.Module):
    """2-D DTCWT, pytorch_wavelets' ``DTCWTForward``: ``x -> (yl, yh)`` with ``yh[j]`` of
    shape ``(N, C, 6, h, w, 2)`` (6 and 2 moved to ``o_dim`` and ``ri_dim``), values equal
    to the dtcwt package's ``Transform2d``. ``mode='zero'`` extends with zeros at every
    level (pytorch_wavelets does so at level 1 only). ``near_sym_b_bp``/``qshift_b_bp``
    work. Each level is one generated kernel; skipped bands cost nothing."""

    def __init__(self, biort="near_sym_a", qshift="qshift_a", J: int = 3, skip_hps=False,
                 include_scale=False, o_dim: int = 2, ri_dim: int = -1,
                 mode: str = "symmetric"):
        super().__init__()
        self.spec = Spec("dtcwt2d", levels=J, mode=mode, biort=biort, qshift=qshift,
                         skip_hps=skip_hps, include_scale=include_scale, o_dim=o_dim,
                         ri_dim=ri_dim)
        self.J, self.mode, self.o_dim, self.ri_dim = J, mode, o_dim, ri_dim
        self.transform = build(self.spec)

    def extra_repr(self) -> str:
        return (f"J={self.J}, biort={self.spec.biort.name}, qshift={self.spec.qshift.name}, "
                f"mode={self.mode!r}")

    def forward(self, x):
        return self.transform(x)


class DTCWTInverse(nn.Module):
    """Inverse 2-D DTCWT, pytorch_wavelets' ``DTCWTInverse``: ``(yl, yh) -> x``, equal to
    the dtcwt package's ``Transform2d.inverse``. The number of levels is ``len(yh)``; a
    band (or the lowpass) given as None or an empty tensor is zero and costs nothing."""

    def __init__(self, biort="near_sym_a", qshift="qshift_a", o_dim: int = 2,
                 ri_dim: int = -1, mode: str = "symmetric"):
        super().__init__()
        self.spec = Spec("idtcwt2d", levels=None, mode=mode, biort=biort, qshift=qshift,
                         o_dim=o_dim, ri_dim=ri_dim)
        self.mode, self.o_dim, self.ri_dim = mode, o_dim, ri_dim
        self.transform = build(self.spec)

    def extra_repr(self) -> str:
        return f"biort={self.spec.biort.name}, qshift={self.spec.qshift.name}, mode={self.mode!r}"

    def forward(self, coeffs):
        yl, yh = coeffs
        return self.transform(yl, list(yh))


class _Scattering(nn.Module):
    """A J-scale scattering network of order J (scatter2d). With ``combine_colour`` the
    first-order magnitudes are those of the colour vector, ``sqrt(sum_c |z_c|^2 + b^2) - b``
    as in pytorch_wavelets: the layer takes 3 channels and gives 3 lowpass channels, then
    one channel per path. That mode runs as composed ops: the DTCWT of x, the combined
    magnitudes (wavegen.magnitude over the colour dimension), and for J=2 a one-scale
    scattering of the 6 combined images; its backward keeps the first DTCWT's bands."""

    def __init__(self, J: int, biort, qshift, mode: str, magbias: float, combine_colour: bool):
        super().__init__()
        self.spec = Spec("scatter2d", levels=J, order=J, biort=biort, qshift=qshift,
                         mode=mode, magbias=magbias)
        self.mode, self.magbias, self.combine_colour = mode, self.spec.magbias, combine_colour
        self.transform = build(self.spec)
        if combine_colour:
            self.dtcwt = build(Spec("dtcwt2d", levels=J, mode=mode, biort=biort,
                                    qshift=qshift or "qshift_a"))
            # Second order: one scale of the plain network on the combined images.
            self.inner = build(Spec("scatter2d", levels=1, order=1, biort=biort, mode=mode,
                                    magbias=magbias)) if J > 1 else None

    def extra_repr(self) -> str:
        q = f", qshift={self.spec.qshift.name}" if self.spec.qshift else ""
        return f"biort={self.spec.biort.name}{q}, mode={self.mode!r}, magbias={self.magbias}" \
            + (", combine_colour=True" if self.combine_colour else "")

    def forward(self, x):
        return self._combined(x) if self.combine_colour else self.transform(x)

    def _combined(self, x):
        if not isinstance(x, torch.Tensor) or x.dim() != 4 or x.shape[1] != 3:
            shape = tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
            raise ValueError(f"combine_colour=True combines 3 colour channels: it takes "
                             f"(N, 3, H, W) input; got {shape}. Use combine_colour=False "
                             "for other channel counts")
        self.transform.plan.geometry_from_signal(tuple(x.shape[-2:]))   # the size check
        yl, yh = self.dtcwt(x)
        low = torch.nn.functional.avg_pool2d(yl, 2)
        first = [magnitude(h[..., 0], h[..., 1], self.magbias, dim=1) for h in yh]
        if self.inner is None:
            return torch.cat([low, first[0]], 1)
        second = self.inner(first[0])        # 6 pooled lowpasses, then 36 magnitudes
        return torch.cat([low, second[:, :6], first[1], second[:, 6:]], 1)


class ScatLayer(_Scattering):
    """pytorch_wavelets' ``ScatLayer``: one scale of DTCWT scattering, ``(N, C, H, W) ->
    (N, 7C, ceil(H/2), ceil(W/2))`` with channel ``k * C + c``: k = 0 the 2x2-pooled
    lowpass, k = 1..6 the biased magnitudes ``sqrt(|z|^2 + magbias^2) - magbias`` of the
    six orientations. One fused kernel; its backward recomputes from x and saves nothing
    else."""

    def __init__(self, biort="near_sym_a", mode: str = "symmetric", magbias: float = 1e-2,
                 combine_colour: bool = False):
        super().__init__(1, biort, None, mode, magbias, combine_colour)


class ScatLayerj2(_Scattering):
    """pytorch_wavelets' ``ScatLayerj2``: two scales, orders 1 and 2, ``(N, C, H, W) ->
    (N, 49C, ceil(H/4), ceil(W/4))`` in pytorch_wavelets' channel order (plan_scatter).
    Equal to pytorch_wavelets where it needs no padding (H, W multiples of 8); other sizes
    follow dtcwt's size rule at every stage instead of a padded copy. ``mode='zero'``
    works (zero extension at every stage) and any biort/qshift pair may be combined."""

    def __init__(self, biort="near_sym_a", qshift="qshift_a", mode: str = "symmetric",
                 magbias: float = 1e-2, combine_colour: bool = False):
        super().__init__(2, biort, qshift, mode, magbias, combine_colour)
