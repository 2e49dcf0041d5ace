"""Filters as tensors: the DWT with run-time taps, differentiable in the taps.

A transform whose filter bank is tensors is composed of single passes along one axis
(plan_taps, the ``wavegen::taps_pass`` op): a level of a 1-D DWT is one analysis pass, of a
2-D DWT one along the rows' axis and one along the columns'; synthesis runs the adjoint
passes in the reverse order. The taps are a run-time argument of the kernels (float64,
rounded once to the accumulator type in the kernel), so new tap values never recompile;
the filter length and the mode are compiled in. Gradients with respect to the taps come
from generated kernels (``wavegen::tap_gradient``: one row of sums per line, then their
sum, so the same inputs give the same bits), and every gradient is again a pass, so
double backward works. Autograd keeps each pass's input for the taps' gradient.
"""
from __future__ import annotations

from typing import NamedTuple

import torch

from . import ops
from .plan import output_length, synthesis_length, synthesis_mode, tap_offset
from .plan_taps import PassSpec
from .spec import FilterBank, Spec, filter_bank
from .transform import build, check_tensor

NAMES = ("dec_lo", "dec_hi", "rec_lo", "rec_hi")


class TensorFilterBank(NamedTuple):
    """A two-channel filter bank of 1-D tensors, in PyWavelets' order and orientation
    (``pywt.Wavelet.filter_bank``): analysis lowpass and highpass, synthesis lowpass and
    highpass, all of one length."""
    dec_lo: torch.Tensor
    dec_hi: torch.Tensor
    rec_lo: torch.Tensor
    rec_hi: torch.Tensor

    @staticmethod
    def from_wavelet(wavelet, dtype=torch.float32, device=None) -> "TensorFilterBank":
        """The filters of a wavelet (a name, a ``pywt.Wavelet``, a FilterBank or a tuple
        of filters) as tensors."""
        bank = filter_bank(wavelet)
        if not (bank.has_analysis and bank.has_synthesis):
            raise ValueError("a TensorFilterBank needs analysis and synthesis filters; "
                             f"{bank.name} has only one pair")
        return TensorFilterBank(*(torch.tensor(getattr(bank, n), dtype=dtype, device=device)
                                  for n in NAMES))

    @property
    def length(self) -> int:
        return self.dec_lo.shape[0]


def tensor_bank(wavelet) -> TensorFilterBank | None:
    """The bank as a TensorFilterBank when its filters are tensors (a TensorFilterBank or
    a 4-tuple of tensors); None for a wavelet whose taps are numbers."""
    if isinstance(wavelet, (tuple, list)) and len(wavelet) == 4 and \
            all(isinstance(f, torch.Tensor) for f in wavelet):
        return TensorFilterBank(*wavelet)
    if isinstance(wavelet, (tuple, list)) and len(wavelet) == 2 and \
            any(tensor_bank(w) is not None for w in wavelet):
        raise TypeError("a bank of tensors serves both axes; one bank per axis (a pair) is "
                        "taken for wavelets whose taps are numbers only")
    if isinstance(wavelet, (tuple, list)) and any(isinstance(f, torch.Tensor)
                                                   for f in wavelet):
        raise TypeError("a filter bank of tensors takes four 1-D tensors (dec_lo, dec_hi, "
                        f"rec_lo, rec_hi); got {len(wavelet)} filters, not all tensors")
    return None


def check_bank(bank: TensorFilterBank, like: torch.Tensor) -> None:
    """The errors a bank of tensors can have, named: shapes, lengths, dtype and device
    against the signal ``like``, non-finite taps (not checked while torch.compile traces:
    it would read the values)."""
    for name, f in zip(NAMES, bank):
        if f.dim() != 1 or f.shape[0] < 2:
            raise ValueError(f"filter {name} must be a 1-D tensor of at least 2 taps; got "
                             f"shape {tuple(f.shape)}")
    lengths = {name: f.shape[0] for name, f in zip(NAMES, bank)}
    if len(set(lengths.values())) != 1:
        raise ValueError(f"the filters of a bank must have one length (pad the shorter with "
                         f"zeros, as PyWavelets does); got {lengths}")
    for name, f in zip(NAMES, bank):
        if f.dtype != like.dtype or f.device != like.device:
            raise ValueError(f"filter {name} is {f.dtype} on {f.device} but the signal is "
                             f"{like.dtype} on {like.device}; the taps must have the "
                             "signal's dtype and device")
    if not torch.compiler.is_compiling() and not bool(torch.isfinite(torch.cat(bank)).all()):
        name, f = next((n, f) for n, f in zip(NAMES, bank) if not bool(torch.isfinite(f).all()))
        raise ValueError(f"filter {name} has non-finite taps: {f.tolist()}")


def _target(t: torch.Tensor, target: str | None) -> str:
    if target is not None:
        return target
    return "cuda" if t.device.type == "cuda" else "cpu"


class TapsTransform:
    """A DWT or inverse DWT (spec kind ``dwt1d``, ``dwt2d``, ``idwt1d``, ``idwt2d``) of
    filters of ``length`` taps given as tensors: called as the Transform of the same spec
    is ((N, C, *size) tensors; analysis returns (yl, [yh_1 .. yh_J]), synthesis takes
    them), with the bank given here or per call (``bank=``: a layer's parameters)."""

    def __init__(self, kind: str, length: int, levels: int, mode: str,
                 target: str | None = None, bank: TensorFilterBank | None = None):
        self.bank, self.target, self.length = bank, target, length
        # The sizes, level rules and their errors are the baked transform's (plan.Plan):
        # its plan of a bank of this length, whose tap values it never uses.
        zeros = (0.0,) * length
        self.spec = Spec(kind, FilterBank("tensors", zeros, zeros, zeros, zeros), levels, mode)
        self.checks = build(self.spec)        # its input checks (it compiles nothing)
        self.plan = self.checks.plan
        self.ndim = self.spec.ndim
        # The passes per axis (the modes may differ by axis).
        self.analysis = tuple(PassSpec("analysis", m, length, tap_offset(length, m)).json
                              for m in self.spec.modes)
        self.synthesis = tuple(PassSpec("adjoint", m, length, tap_offset(length, m)).json
                               for m in map(synthesis_mode, self.spec.modes))

    def __reduce__(self):          # pickle as its arguments (its plan is per process)
        return TapsTransform, (self.spec.kind, self.length, self.spec.levels, self.spec.mode,
                               self.target, self.bank)

    def _run(self, spec: str, x: torch.Tensor, taps: torch.Tensor, axis: int, n: int,
             k: int) -> torch.Tensor:
        return ops.taps_pass(x, taps, spec, [axis, n, k], _target(x, self.target))

    def __call__(self, *args, bank: TensorFilterBank | None = None,
                 level_warning: bool = True):
        bank = bank if bank is not None else self.bank
        if not self.spec.is_inverse:
            if len(args) != 1:
                raise TypeError(f"{self.spec.kind} takes one tensor x, got {len(args)} "
                                "arguments")
            x = check_tensor(args[0], "x", self.ndim + 2, self.ndim)
            self._check_bank(bank, x)
            geom = self.plan.geometry_from_signal(tuple(x.shape[2:]), level_warning)
            taps = torch.stack([bank.dec_lo.flip(0), bank.dec_hi.flip(0)]).double()
            return self._analysis(x, taps, geom)
        yl, yh = args if len(args) == 2 else args[0]
        yl, *yh = self.checks._check_coefficients(yl, yh)
        self._check_bank(bank, yl)
        geom = self.plan.geometry_for_inputs([tuple(yl.shape[2:])] +
                                             [tuple(d.shape[-self.ndim:]) for d in yh])
        taps = torch.stack([bank.rec_lo, bank.rec_hi]).double()
        return self._synthesis(yl, yh, taps, geom)

    def _check_bank(self, bank, like: torch.Tensor) -> None:
        check_bank(bank, like)
        if bank.length != self.length:
            raise ValueError(f"this transform takes filters of {self.length} taps; the bank "
                             f"has {bank.length}")

    def _analysis(self, x, taps, geom):
        details = []
        for _ in geom.details:
            # Axis i of the signal is dimension x.dim() - ndim + i, each pass putting its
            # two bands in front: (N, C, H, W) -> (2h, N, C, h, W) -> (2w, 2h, N, C, h, w).
            for i, mode in enumerate(self.spec.modes):
                axis = x.dim() - self.ndim + i
                n = x.shape[axis]
                x = self._run(self.analysis[i], x, taps, axis, n,
                              output_length(n, self.length, mode))
            if self.ndim == 1:
                low, band = x[0], x[1]
            else:                    # x[w band][h band]: cH = hi(h) lo(w), cV = lo(h) hi(w)
                low, band = x[0, 0], torch.stack([x[0, 1], x[1, 0], x[1, 1]], 2)
            details.append(band)
            x = low
        return x, details

    def _synthesis(self, yl, yh, taps, geom):
        low = yl
        for level in range(len(yh), 0, -1):
            d = yh[level - 1]
            size = geom.details[level - 1]
            # An approximation one longer than the details is cropped, as pywt.idwt does.
            low = low[(Ellipsis, *(slice(0, s) for s in size))]
            if self.ndim == 1:
                x = torch.stack([low, d])
            else:
                x = torch.stack([torch.stack([low, d[:, :, 0]]),
                                 torch.stack([d[:, :, 1], d[:, :, 2]])])
            for i in range(self.ndim - 1, -1, -1):     # the last axis first
                axis = x.dim() - 1 - self.ndim + i       # in the pass's output
                k = x.shape[axis + 1]
                n = synthesis_length(k, self.length, self.spec.modes[i])
                x = self._run(self.synthesis[i], x, taps, axis, n, k)
            low = x
        return low


# -- keeping a learned bank a wavelet -------------------------------------------------------
def _bank(bank) -> TensorFilterBank:
    found = tensor_bank(bank)
    if found is None:
        raise TypeError("expected a bank of tensors (a TensorFilterBank or four 1-D tensors "
                        f"dec_lo, dec_hi, rec_lo, rec_hi); got {type(bank).__name__}")
    return found


def _product(f: torch.Tensor, g: torch.Tensor) -> torch.Tensor:
    """The coefficients of F(z) G(z): the full convolution of f and g."""
    return torch.nn.functional.conv1d(f.view(1, 1, -1), g.flip(0).view(1, 1, -1),
                                      padding=g.shape[0] - 1).view(-1)


def reconstruction_error(bank) -> torch.Tensor:
    """How far the bank is from perfect reconstruction without aliasing: the squared
    distance of H0(z)G0(z) + H1(z)G1(z) from 2 z^-(L-1) (PyWavelets' delay for every
    wavelet it ships), plus the squared coefficients of H0(-z)G0(z) + H1(-z)G1(z) (the
    alias term, which must vanish). Zero, to rounding, for every PyWavelets wavelet but
    the FIR approximation dmey; differentiable in the taps."""
    bank = _bank(bank)
    length = bank.length
    sign = (-1.0) ** torch.arange(length, device=bank.dec_lo.device)
    distortion = _product(bank.dec_lo, bank.rec_lo) + _product(bank.dec_hi, bank.rec_hi)
    target = torch.zeros_like(distortion)
    target[length - 1] = 2
    alias = _product(bank.dec_lo * sign, bank.rec_lo) + \
        _product(bank.dec_hi * sign, bank.rec_hi)
    return ((distortion - target) ** 2).sum() + (alias ** 2).sum()


def orthogonality_error(bank) -> torch.Tensor:
    """How far the analysis filters are from an orthonormal wavelet: the squared deviation
    of sum_n h[n] h[n + 2k] from delta_k, of the same for the highpass, and of the lowpass
    and highpass cross-correlations at even shifts from 0; plus the synthesis filters'
    distance from the reversed analysis filters (an orthogonal bank's rec is its dec
    reversed). Zero, to rounding, for the orthogonal PyWavelets families (haar, db, sym,
    coif); positive for biorthogonal ones."""
    bank = _bank(bank)
    length = bank.length
    h, g = bank.dec_lo, bank.dec_hi

    def even_shifts(f, e):          # sum_n f[n] e[n + s] for the even shifts s
        return _product(f.flip(0), e)[(length - 1) % 2::2]
    delta = torch.zeros_like(even_shifts(h, h))
    delta[(length - 1) // 2] = 1
    return (((even_shifts(h, h) - delta) ** 2).sum() + ((even_shifts(g, g) - delta) ** 2).sum()
            + (even_shifts(h, g) ** 2).sum() + ((bank.rec_lo - h.flip(0)) ** 2).sum()
            + ((bank.rec_hi - g.flip(0)) ** 2).sum())
