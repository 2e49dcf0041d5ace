"""Layers with pytorch_wavelets' names, arguments and output layouts.

Migrating is changing the import. Differences (README): all nine PyWavelets modes, exact
gradients in every mode, float64 taps for float64 inputs, and the 4-tuple
``(h0_col, h1_col, h0_row, h1_row)`` filters the height axis with the ``*_col`` filters,
as the names say (pytorch_wavelets applies them to the width).

The modules hold a Spec and its Transform, which pickles as its spec and has no tensors,
so modules pickle, move across devices and replicate under DataParallel/DDP. With
``learnable=True`` the DWT layers hold their filters as parameters instead (a
FilterBankModule, shareable between an analysis and a synthesis layer) and run them as
run-time taps (taps.py). A state dict
saved from the pytorch_wavelets layer of the same arguments loads (strictly): its filter
buffers and parameters are checked against the taps compiled in, then dropped. The layers
never warn about levels beyond ``pywt.dwt_max_level``, as pytorch_wavelets does not.
"""
from __future__ import annotations

import pywt
import torch
from torch import nn

from .spec import Spec, make_bank
from .taps import NAMES, TapsTransform, TensorFilterBank
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


def _levels(J) -> int:
    if isinstance(J, bool) or not isinstance(J, int) or J < 0:
        raise ValueError(f"J must be an integer >= 0 (0: the identity); got {J!r}")
    return J


def _stored_in_one_rounding(stored, taps) -> bool:
    """Whether a checkpoint tensor holds ``taps`` rounded once to some floating type (a
    pytorch_wavelets layer creates its filters in the default dtype; ``.double()`` or
    ``.half()`` may have converted them since)."""
    if not isinstance(stored, torch.Tensor) or not stored.is_floating_point() or \
            stored.numel() != len(taps):
        return False
    exact = torch.tensor(taps, dtype=torch.float64)
    values = stored.detach().cpu().flatten()
    return any(torch.equal(values, exact.to(d).to(values.dtype))
               for d in (values.dtype, torch.float32, torch.bfloat16, torch.float16))


class _PytorchWaveletsLayer(nn.Module):
    """A layer that loads the state dict of its pytorch_wavelets namesake: the filters that
    layer keeps as buffers or parameters are checked against ``checkpoint_filters()`` (name
    -> taps in the order pytorch_wavelets stores them) and dropped, since wavegen compiles
    its taps in; a filter that differs is a load error naming it."""

    def checkpoint_filters(self) -> dict[str, tuple[float, ...]]:
        raise NotImplementedError

    def _load_from_state_dict(self, state_dict, prefix, local_metadata, strict, missing_keys,
                              unexpected_keys, error_msgs):
        for name, taps in self.checkpoint_filters().items():
            key = prefix + name
            if key in state_dict:
                stored = state_dict.pop(key)
                if not _stored_in_one_rounding(stored, taps):
                    got = stored.flatten().tolist() if isinstance(stored, torch.Tensor) \
                        else stored
                    error_msgs.append(
                        f"{key}: the checkpoint's filter is not the one this {type(self).__name__} "
                        f"({self.extra_repr()}) computes with: expected {list(taps)} (in "
                        f"pytorch_wavelets' order), got {got}; was it saved from a layer "
                        "with other filter arguments?")
        super()._load_from_state_dict(state_dict, prefix, local_metadata, strict,
                                      missing_keys, unexpected_keys, error_msgs)


def _dwt_filters(wave, synthesis: bool, ndim: int) -> dict[str, tuple[float, ...]]:
    """The filters pytorch_wavelets' DWT layers keep for ``wave``: analysis filters
    reversed (h0, h1; 2-D: h0_col, h1_col, h0_row, h1_row), synthesis ones as they are
    (g0, g1, ...). Nothing for a ``wave`` pytorch_wavelets does not take."""
    if isinstance(wave, str) and wave in pywt.wavelist(kind="discrete"):
        wave = pywt.Wavelet(wave)
    if isinstance(wave, pywt.Wavelet):
        pair = (wave.rec_lo, wave.rec_hi) if synthesis else (wave.dec_lo, wave.dec_hi)
        pairs = [pair, pair]
    elif isinstance(wave, (tuple, list)) and len(wave) in (2, 4):
        pairs = [wave[:2], wave[2:]] if len(wave) == 4 else [wave[:2], wave[:2]]
    else:
        return {}
    letter, step = ("g", 1) if synthesis else ("h", -1)
    axes = ("_col", "_row") if ndim == 2 else ("",)
    return {f"{letter}{i}{axis}": tuple(float(v) for v in pair[i])[::step]
            for axis, pair in zip(axes, pairs) for i in (0, 1)}


class FilterBankModule(nn.Module):
    """A learnable two-channel filter bank: ``dec_lo``, ``dec_hi``, ``rec_lo`` and
    ``rec_hi`` as ``nn.Parameter``s (PyWavelets' order and orientation), initialised from
    ``wave`` (a wavelet name, a ``pywt.Wavelet`` or a 4-tuple of filters). Pass one to an
    analysis layer and its synthesis layer (``filters=``) to learn one bank for both; keep
    it a wavelet with ``wavegen.taps.reconstruction_error`` and ``orthogonality_error``."""

    def __init__(self, wave="db1", dtype=None, device=None):
        super().__init__()
        bank = TensorFilterBank.from_wavelet(wave, dtype=dtype or torch.get_default_dtype(),
                                             device=device)
        for name, taps in zip(NAMES, bank):
            setattr(self, name, nn.Parameter(taps))

    def bank(self) -> TensorFilterBank:
        return TensorFilterBank(self.dec_lo, self.dec_hi, self.rec_lo, self.rec_hi)

    def extra_repr(self) -> str:
        return f"length={self.dec_lo.shape[0]}"


class _Layer(_PytorchWaveletsLayer):
    def __init__(self, kind: str, wave, levels: int | None, mode: str,
                 learnable: bool = False, filters: "FilterBankModule | None" = None):
        super().__init__()
        ndim = 2 if "2d" in kind else 1
        # J = 0 is the identity; the spec (one level) still checks wave and mode.
        self.spec = Spec(kind, _wavelet(wave, kind.startswith("i"), ndim),
                         None if levels is None else max(levels, 1), mode)
        self.mode = self.spec.mode
        self.J = levels
        self.kind = kind
        if filters is not None and not isinstance(filters, FilterBankModule):
            raise TypeError("filters must be a wavegen.nn.FilterBankModule (to share one "
                            f"learnable bank between layers); got {type(filters).__name__}")
        # Learnable: the taps are parameters, run-time arguments of the kernels (taps.py);
        # else they are compiled in and the layer has no parameters or buffers.
        self.filters = filters if filters is not None else \
            FilterBankModule(wave) if learnable else None
        self.transform = build(self.spec) if self.filters is None else None
        self._filters = {} if self.filters is not None else \
            _dwt_filters(wave, kind.startswith("i"), ndim)
        # Made here, not per call (torch.compile traces calls); an inverse serves any levels.
        self._taps = TapsTransform(kind, self.filters.dec_lo.shape[0], self.spec.levels,
                                   self.mode) if self.filters is not None else None

    def run(self, *args):
        """The transform on the signal or coefficients ``args``."""
        if self.filters is None:
            return self.transform(*args, level_warning=False)
        return self._taps(*args, bank=self.filters.bank(), level_warning=False)

    def checkpoint_filters(self):
        return self._filters

    def extra_repr(self) -> str:
        names = "/".join(dict.fromkeys(b.name for b in self.spec.banks))
        levels = "" if self.J is None else f"J={self.J}, "
        return f"{levels}wave={names}, mode={self.mode!r}"


class _Forward(_Layer):
    def __init__(self, kind: str, J, wave, mode: str, learnable: bool, filters):
        super().__init__(kind, wave, _levels(J), mode, learnable, filters)

    def forward(self, x):
        if self.J == 0:
            return x, []
        return self.run(x)


class DWTForward(_Forward):
    """2-D DWT: ``(N, C, H, W) -> (yl, [yh_1 .. yh_J])``, ``yh_j: (N, C, 3, h_j, w_j)`` in
    pywt band order (cH, cV, cD), finest level first. ``J=0`` is the identity
    ``(x, [])``, as in pytorch_wavelets. ``learnable=True``: the filters are parameters
    (``self.filters``, a FilterBankModule initialised from ``wave``); ``filters=`` shares
    one bank with other layers."""

    def __init__(self, J: int = 1, wave="db1", mode: str = "zero", learnable: bool = False,
                 filters: FilterBankModule | None = None):
        super().__init__("dwt2d", J, wave, mode, learnable, filters)


class DWT1DForward(_Forward):
    """1-D DWT: ``(N, C, L) -> (yl, [yh_1 .. yh_J])``, finest level first; ``J=0`` is the
    identity. ``learnable`` and ``filters`` as for DWTForward."""

    def __init__(self, J: int = 1, wave="db1", mode: str = "zero", learnable: bool = False,
                 filters: FilterBankModule | None = None):
        super().__init__("dwt1d", J, wave, mode, learnable, filters)


def _split(layer: str, coeffs):
    if not isinstance(coeffs, (tuple, list)) or len(coeffs) != 2:
        got = f"a tensor of shape {tuple(coeffs.shape)}" if isinstance(coeffs, torch.Tensor) \
            else type(coeffs).__name__
        raise TypeError(f"{layer} takes one argument, coeffs = (yl, yh): the pair the forward "
                        f"layer returns, yh a list of detail tensors, finest level first; got "
                        f"{got}")
    yl, yh = coeffs
    if not isinstance(yh, (list, tuple)):
        raise TypeError(f"{layer}: yh must be a list of detail tensors, finest level first; "
                        f"got {type(yh).__name__}")
    return yl, list(yh)


class _Inverse(_Layer):
    """The number of levels is ``len(yh)``, as in pytorch_wavelets: a synthesis spec with
    levels=None, whose kernels serve every count. An empty ``yh`` returns ``yl``; ``None``
    bands are zeros, and so is ``yl=None`` (the size of the coarsest detail: ``_fill``)."""

    def __init__(self, kind: str, wave, mode: str, learnable: bool, filters):
        super().__init__(kind, wave, None, mode, learnable, filters)

    def forward(self, coeffs):
        yl, yh = _split(type(self).__name__, coeffs)
        if not yh:
            if not isinstance(yl, torch.Tensor):
                raise TypeError(f"{type(self).__name__}: with no detail tensors, yl must be "
                                f"a tensor (it is returned as it is); got {type(yl).__name__}")
            return yl
        if yl is None or any(h is None for h in yh):
            yl, yh = self._fill((self.transform or self._taps).plan, yl, yh)
        return self.run(yl, yh)

    @staticmethod
    def _fill(plan, yl, yh):
        """Zeros for the ``None`` bands, sized from the finer level when it is known (its
        analysis length), else from the approximation they meet (pytorch_wavelets' rule);
        a ``None`` yl takes the coarsest detail's size."""
        given = yl if isinstance(yl, torch.Tensor) else next((h for h in yh if h is not None),
                                                             None)
        if not isinstance(given, torch.Tensor):
            raise ValueError("the inverse needs yl or at least one detail tensor")
        ndim = plan.ndim
        sizes = [None if h is None else tuple(h.shape[-ndim:]) for h in yh]
        for j in range(1, len(yh)):
            if sizes[j] is None and sizes[j - 1] is not None:
                sizes[j] = plan.analysis_size(sizes[j - 1])
        lead = tuple(given.shape[:2])
        if yl is None:
            if sizes[-1] is None:
                raise ValueError("yl=None takes the size of the coarsest detail tensor, "
                                 "which is None too; give yl or a band of that level")
            yl = given.new_zeros((*lead, *sizes[-1]))
        size = tuple(yl.shape[2:])
        for j in range(len(yh) - 1, -1, -1):
            if yh[j] is None:
                sizes[j] = sizes[j] or size
                yh[j] = yl.new_zeros((*lead, *((3,) if ndim == 2 else ()), *sizes[j]))
            size = plan.synthesis_size(sizes[j])
        return yl, yh


class DWTInverse(_Inverse):
    """Inverse 2-D DWT: ``(yl, yh) -> x``, equal to ``pywt.waverec2``. ``learnable`` and
    ``filters`` as for DWTForward (``filters=forward.filters`` inverts a learned forward
    with its own bank)."""

    def __init__(self, wave="db1", mode: str = "zero", learnable: bool = False,
                 filters: FilterBankModule | None = None):
        super().__init__("idwt2d", wave, mode, learnable, filters)


class DWT1DInverse(_Inverse):
    """Inverse 1-D DWT: ``(yl, yh) -> x``, equal to ``pywt.waverec``; ``learnable`` and
    ``filters`` as for DWTInverse."""

    def __init__(self, wave="db1", mode: str = "zero", learnable: bool = False,
                 filters: FilterBankModule | None = None):
        super().__init__("idwt1d", wave, mode, learnable, filters)


def _reversed_filters(*sets_and_keys) -> dict[str, tuple[float, ...]]:
    """pytorch_wavelets' DTCWT and scattering layers keep their filters reversed, under
    their dtcwt names."""
    return {k: fs[k][::-1] for fs, keys in sets_and_keys for k in keys if fs.has(k)}


class DTCWTForward(_PytorchWaveletsLayer):
    """2-D DTCWT, pytorch_wavelets' ``DTCWTForward``: ``x -> (yl, yh)`` with ``yh[j]`` of
    shape ``(N, C, 6, h, w, 2)`` (6 and 2 moved to ``o_dim`` and ``ri_dim``), values equal
    to the dtcwt package's ``Transform2d``. ``mode='zero'`` extends with zeros at every
    level (pytorch_wavelets does so at level 1 only). ``near_sym_b_bp``/``qshift_b_bp``
    work. Each level is one generated kernel; skipped bands cost nothing. ``J=0`` is the
    identity ``(x, [])`` (pytorch_wavelets returns ``(x, None)``)."""

    def __init__(self, biort="near_sym_a", qshift="qshift_a", J: int = 3, skip_hps=False,
                 include_scale=False, o_dim: int = 2, ri_dim: int = -1,
                 mode: str = "symmetric"):
        super().__init__()
        J = _levels(J)
        self.spec = Spec("dtcwt2d", levels=max(J, 1), mode=mode, biort=biort, qshift=qshift,
                         skip_hps=skip_hps if J else False,
                         include_scale=include_scale if J else False, o_dim=o_dim,
                         ri_dim=ri_dim)
        self.J, self.mode, self.o_dim, self.ri_dim = J, mode, o_dim, ri_dim
        self.transform = build(self.spec)

    def checkpoint_filters(self):
        return _reversed_filters((self.spec.biort, ("h0o", "h1o")),
                                 (self.spec.qshift, ("h0a", "h0b", "h1a", "h1b")))

    def extra_repr(self) -> str:
        return (f"J={self.J}, biort={self.spec.biort.name}, qshift={self.spec.qshift.name}, "
                f"mode={self.mode!r}")

    def forward(self, x):
        if self.J == 0:
            return x, []
        return self.transform(x)


class DTCWTInverse(_PytorchWaveletsLayer):
    """Inverse 2-D DTCWT, pytorch_wavelets' ``DTCWTInverse``: ``(yl, yh) -> x``, equal to
    the dtcwt package's ``Transform2d.inverse``. The number of levels is ``len(yh)`` (none:
    ``yl`` comes back); a band (or the lowpass) given as None or an empty tensor is zero
    and costs nothing."""

    def __init__(self, biort="near_sym_a", qshift="qshift_a", o_dim: int = 2,
                 ri_dim: int = -1, mode: str = "symmetric"):
        super().__init__()
        self.spec = Spec("idtcwt2d", levels=None, mode=mode, biort=biort, qshift=qshift,
                         o_dim=o_dim, ri_dim=ri_dim)
        self.mode, self.o_dim, self.ri_dim = mode, o_dim, ri_dim
        self.transform = build(self.spec)

    def checkpoint_filters(self):
        return _reversed_filters((self.spec.biort, ("g0o", "g1o")),
                                 (self.spec.qshift, ("g0a", "g0b", "g1a", "g1b")))

    def extra_repr(self) -> str:
        return f"biort={self.spec.biort.name}, qshift={self.spec.qshift.name}, mode={self.mode!r}"

    def forward(self, coeffs):
        yl, yh = _split(type(self).__name__, coeffs)
        if not yh:
            return yl
        return self.transform(yl, yh)


class _Scattering(_PytorchWaveletsLayer):
    """A J-scale scattering network of order J (scatter2d). With ``combine_colour`` the
    first-order magnitudes are those of the colour vector, ``sqrt(sum_c |z_c|^2 + b^2) - b``
    as in pytorch_wavelets: the layer takes 3 channels and gives 3 lowpass channels, then
    one channel per path; that network runs as composed ops (ops.composed_scatter), so its
    backward keeps the DTCWT's bands. ``size_rule`` (plan_scatter): 'pytorch_wavelets'
    (the default, its sizes and values) or 'dtcwt' (dtcwt's rule at every stage)."""

    def __init__(self, J: int, biort, qshift, mode: str, magbias: float, combine_colour: bool,
                 size_rule: str):
        super().__init__()
        self.spec = Spec("scatter2d", levels=J, order=J, biort=biort, qshift=qshift,
                         mode=mode, magbias=magbias, combine_colour=combine_colour,
                         size_rule=size_rule)
        self.mode, self.magbias, self.combine_colour = mode, self.spec.magbias, combine_colour
        self.size_rule = size_rule
        self.transform = build(self.spec)

    def checkpoint_filters(self):
        sets = [(self.spec.biort, ("h0o", "h1o", "h2o"))]
        if self.spec.qshift:
            sets.append((self.spec.qshift, ("h0a", "h0b", "h1a", "h1b", "h2a", "h2b")))
        return _reversed_filters(*sets)

    def extra_repr(self) -> str:
        q = f", qshift={self.spec.qshift.name}" if self.spec.qshift else ""
        return f"biort={self.spec.biort.name}{q}, mode={self.mode!r}, magbias={self.magbias}" \
            + (", combine_colour=True" if self.combine_colour else "") \
            + (f", size_rule={self.size_rule!r}" if self.size_rule != "pytorch_wavelets" else "")

    def forward(self, x):
        return self.transform(x)


class ScatLayer(_Scattering):
    """pytorch_wavelets' ``ScatLayer``: one scale of DTCWT scattering, ``(N, C, H, W) ->
    (N, 7C, ceil(H/2), ceil(W/2))`` with channel ``k * C + c``: k = 0 the 2x2-pooled
    lowpass, k = 1..6 the biased magnitudes ``sqrt(|z|^2 + magbias^2) - magbias`` of the
    six orientations. An odd side repeats its last sample, as in pytorch_wavelets (and
    dtcwt: both size rules agree here). One fused kernel; its backward recomputes from x
    and saves nothing else."""

    def __init__(self, biort="near_sym_a", mode: str = "symmetric", magbias: float = 1e-2,
                 combine_colour: bool = False, size_rule: str = "pytorch_wavelets"):
        super().__init__(1, biort, None, mode, magbias, combine_colour, size_rule)


class ScatLayerj2(_Scattering):
    """pytorch_wavelets' ``ScatLayerj2``: two scales, orders 1 and 2, ``(N, C, H, W) ->
    (N, 49C, H8 / 4, W8 / 4)`` in pytorch_wavelets' channel order (plan_scatter), where H8
    and W8 are the sides rounded up to multiples of 8: pytorch_wavelets block-copies rows
    and columns up to them, and so does this layer (through its index arithmetic, with no
    padded copy), so that sizes and values equal pytorch_wavelets' for every input size.
    ``size_rule='dtcwt'`` applies dtcwt's rule at every stage instead (output
    ``ceil(H/4) x ceil(W/4)``). ``mode='zero'`` works (zero extension at every stage) and
    any biort/qshift pair may be combined."""

    def __init__(self, biort="near_sym_a", qshift="qshift_a", mode: str = "symmetric",
                 magbias: float = 1e-2, combine_colour: bool = False,
                 size_rule: str = "pytorch_wavelets"):
        super().__init__(2, biort, qshift, mode, magbias, combine_colour, size_rule)
