"""Stage 1: the spec, a frozen and hashable value naming *what* to compute.

Shapes and dtypes are deliberately absent: one spec serves every input size and dtype.
"""
from __future__ import annotations

import dataclasses
import difflib
import functools
import hashlib
import json

import numpy as np
import pywt

MODES = ("zero", "constant", "symmetric", "reflect", "periodic", "smooth",
         "antisymmetric", "antireflect", "periodization")
# Aliases accepted for compatibility with pytorch_wavelets and PyWavelets' old names.
MODE_ALIASES = {"per": "periodization", "periodisation": "periodization", "sym": "symmetric",
                "zpd": "zero", "ref": "reflect", "reflection": "reflect", "symm": "symmetric",
                "cpd": "constant", "ppd": "periodic", "sp1": "smooth"}
DWT_KINDS = ("dwt1d", "dwt2d", "idwt1d", "idwt2d")
DTCWT_KINDS = ("dtcwt2d", "idtcwt2d")
SCATTER_KINDS = ("scatter2d",)
KINDS = DWT_KINDS + DTCWT_KINDS + SCATTER_KINDS
# The DTCWT extends each level's signal symmetrically (dtcwt's convention) or with zeros.
DTCWT_MODES = ("symmetric", "zero")
# How a scattering network sizes its stages (plan_scatter): pytorch_wavelets' layers, or
# dtcwt's rule at every stage.
SIZE_RULES = ("pytorch_wavelets", "dtcwt")


@dataclasses.dataclass(frozen=True)
class FilterBank:
    """A two-channel filter bank as PyWavelets stores it (odd lengths padded to even).

    Either pair may be ``None`` when only analysis or only synthesis filters were given
    (pytorch_wavelets' 2-tuples); such a bank serves one direction only.
    """
    name: str
    dec_lo: tuple[float, ...] | None
    dec_hi: tuple[float, ...] | None
    rec_lo: tuple[float, ...] | None = None
    rec_hi: tuple[float, ...] | None = None

    @property
    def length(self) -> int:
        return len(self.dec_lo if self.dec_lo is not None else self.rec_lo)

    @property
    def has_analysis(self) -> bool:
        return self.dec_lo is not None

    @property
    def has_synthesis(self) -> bool:
        return self.rec_lo is not None

    def to_json(self) -> dict:
        return dataclasses.asdict(self)


def _taps(values, what: str) -> tuple[float, ...]:
    if getattr(values, "requires_grad", False):      # a torch.Tensor in a graph
        raise ValueError(f"{what} is a tensor that requires grad, but a Spec compiles its taps "
                         "in, where no gradient can reach them; pass the bank of tensors to "
                         "wavegen.functional, or use a layer with learnable=True")
    try:
        arr = np.asarray(values, dtype=np.float64).ravel()
    except (TypeError, ValueError) as exc:
        raise TypeError(f"{what} must be a sequence of real numbers, got {values!r}") from exc
    if arr.size == 0:
        raise ValueError(f"{what} is empty; a filter needs at least one tap")
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{what} has non-finite taps: {arr.tolist()}")
    return tuple(float(v) for v in arr)


def _pad_even(*filters):
    """PyWavelets appends one zero to every filter of a bank with odd length (contract 1.1)."""
    return tuple(None if f is None else f + (0.0,) * (len(f) % 2) for f in filters)


def filter_bank(wavelet) -> FilterBank:
    """Resolve a wavelet name, a ``pywt.Wavelet``, a ``FilterBank`` or a tuple of filters.

    Tuples: ``(dec_lo, dec_hi, rec_lo, rec_hi)`` or analysis-only ``(dec_lo, dec_hi)``.
    """
    if isinstance(wavelet, FilterBank):
        return wavelet
    if isinstance(wavelet, str):
        discrete = pywt.wavelist(kind="discrete")
        if wavelet not in discrete:
            raise ValueError(unknown_name(f"wavelet {wavelet!r}", wavelet, discrete,
                                          _continuous_note(wavelet)) +
                             f"; accepted discrete wavelets are {', '.join(discrete)}, a "
                             "pywt.Wavelet, or a filter tuple")
        wavelet = pywt.Wavelet(wavelet)
    if isinstance(wavelet, pywt.ContinuousWavelet):
        raise ValueError(f"{wavelet.name!r} is a continuous wavelet (for pywt.cwt), which has "
                         "no filter bank; a DWT needs a discrete wavelet")
    if isinstance(wavelet, pywt.Wavelet):
        dl, dh, rl, rh = wavelet.filter_bank
        name = wavelet.name or "custom"
    elif isinstance(wavelet, (tuple, list)) and len(wavelet) in (2, 4):
        dl, dh, rl, rh = list(wavelet) + [None] * (4 - len(wavelet))
        name = "custom"
    else:
        raise TypeError("wavelet must be a PyWavelets name, a pywt.Wavelet, a FilterBank, or a "
                        f"tuple (dec_lo, dec_hi[, rec_lo, rec_hi]); got {type(wavelet).__name__}")
    return make_bank(name, dl, dh, rl, rh)


def unknown_name(what: str, name: str, accepted, note: str = "") -> str:
    """'unknown <what>' with the closest accepted names (and a note on what it is)."""
    close = difflib.get_close_matches(name.strip(), list(accepted), n=4, cutoff=0.6)
    close += [a for a in accepted if a.lower() == name.strip().lower() and a not in close]
    hint = f" (did you mean {', '.join(repr(c) for c in close)}?)" if close else ""
    return f"unknown {what}{hint}{note}"


def _continuous_note(name: str) -> str:
    try:
        pywt.ContinuousWavelet(name)
    except ValueError:
        return ""
    return (f": {name!r} is a continuous wavelet (pywt.ContinuousWavelet, for pywt.cwt), "
            "which has no filter bank; a DWT needs a discrete wavelet")


def make_bank(name: str, dec_lo, dec_hi, rec_lo=None, rec_hi=None) -> FilterBank:
    """A FilterBank from tap sequences (either pair may be None), padded as pywt pads."""
    taps = [None if f is None else _taps(f, what) for f, what in
            zip((dec_lo, dec_hi, rec_lo, rec_hi), ("dec_lo", "dec_hi", "rec_lo", "rec_hi"))]
    if (taps[0] is None) != (taps[1] is None) or (taps[2] is None) != (taps[3] is None) \
            or taps[0] is None and taps[2] is None:
        raise ValueError("a filter bank needs the pair (dec_lo, dec_hi), the pair "
                         "(rec_lo, rec_hi), or both")
    if len({len(f) for f in taps if f is not None}) != 1:
        raise ValueError("all filters of a bank must have the same length; got lengths "
                         f"{[len(f) for f in taps if f is not None]}")
    taps = _pad_even(*taps)
    if name == "custom":
        name = "custom" + _digest(taps)[:8]
    return FilterBank(name, *taps)


def _digest(obj) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True).encode()).hexdigest()


def canonical_mode(mode) -> str:
    """A mode's name, from a name, an alias or PyWavelets' integer code (``pywt.Modes.zero``)."""
    if isinstance(mode, (int, np.integer)) and not isinstance(mode, bool):
        codes = {getattr(pywt.Modes, m): m for m in MODES}
        if int(mode) not in codes:
            raise ValueError(f"unknown mode code {int(mode)}; pywt.Modes codes are "
                             f"{', '.join(f'{c} ({m})' for c, m in sorted(codes.items()))}")
        return codes[int(mode)]
    if not isinstance(mode, str):
        raise TypeError(f"mode must be a string, one of {', '.join(MODES)}, or a pywt.Modes "
                        f"code; got {mode!r}")
    mode = MODE_ALIASES.get(mode, mode)
    if mode not in MODES:
        raise ValueError(f"unknown mode {mode!r}; accepted modes are {', '.join(MODES)} "
                         f"(aliases: {', '.join(sorted(MODE_ALIASES))})")
    return mode


def axis_modes(kind: str, mode, ndim: int) -> tuple[str, ...]:
    """The mode of each of ``ndim`` axes: one mode for all, or one per axis."""
    modes = tuple(mode) if isinstance(mode, (tuple, list)) else (mode,) * ndim
    if len(modes) != ndim:
        raise ValueError(f"{kind} takes one mode or one per axis ({ndim}); got {mode!r}")
    return tuple(map(canonical_mode, modes))


@dataclasses.dataclass(frozen=True)
class Spec:
    """What to compute.

    kind:    'dwt1d' | 'dwt2d' (analysis) or 'idwt1d' | 'idwt2d' (synthesis, PyWavelets'
             waverec semantics); 'dtcwt2d' | 'idtcwt2d' (the dtcwt package's Transform2d).
    wavelet: a name, ``pywt.Wavelet``, ``FilterBank`` or filter tuple; for 2-D also a pair
             ``(height_bank, width_bank)`` to filter the two axes differently.
    levels:  number of decomposition levels (>= 1). Synthesis specs may leave it None: the
             number of detail tensors given decides (as in pywt.waverec2), and the same
             kernels serve every count.
    mode:    one of the nine PyWavelets modes; for 2-D also a pair ``(height_mode,
             width_mode)``, as PyWavelets' 2-D functions take (``spec.modes``: per axis).
    transposed: this spec is the exact adjoint (transpose) of the one it was made from;
             ``spec.adjoint()`` flips it.

    DTCWT kinds take ``biort`` and ``qshift`` (names or filter tuples, kingsbury.py) instead
    of ``wavelet``, ``mode`` 'symmetric' or 'zero' (applied at every level), and
    pytorch_wavelets' options: ``skip_hps`` and ``include_scale`` (a bool or one per level;
    synthesis specs may leave ``skip_hps`` None: the bands given decide per call), and
    ``o_dim``/``ri_dim``, the dimensions of the 6 orientations and of (real, imaginary) in
    the band tensors.

    'scatter2d' is the DTCWT scattering network (plan_scatter.py): ``levels`` scales J,
    ``order`` 1 or 2 (<= J), ``biort``, ``qshift`` (the q-shift set of the lowpass chain at
    scales >= 2, as in pytorch_wavelets' ScatLayerj2; None filters every scale with the
    biorthogonal set, as stacked ScatLayers do), ``mode``, the magnitude bias
    ``magbias`` >= 0, ``size_rule``: 'pytorch_wavelets' (the default: ScatLayerj2's
    block-copy padding of the image to a multiple of 2^(J+1)) or 'dtcwt' (dtcwt's size
    rule at every stage, no padded image), and ``combine_colour``: the first order takes
    the magnitude of the 3 colour channels' vector, as pytorch_wavelets' layers do.
    """
    kind: str
    wavelet: object = "haar"
    levels: int | None = 1
    mode: str = "symmetric"
    transposed: bool = False
    banks: tuple[FilterBank, ...] = dataclasses.field(default=(), compare=False, repr=False)
    modes: tuple[str, ...] = dataclasses.field(default=(), compare=False, repr=False)
    # DTCWT kinds only (see ``dtcwt_options``).
    biort: object = None
    qshift: object = None
    skip_hps: tuple[bool, ...] | None = None
    include_scale: tuple[bool, ...] | None = None
    o_dim: int = 2
    ri_dim: int = -1
    # scatter2d only.
    order: int = 1
    magbias: float = 1e-2
    size_rule: str = "pytorch_wavelets"
    combine_colour: bool = False

    def __post_init__(self):
        if self.kind not in KINDS:
            raise ValueError(f"unknown transform kind {self.kind!r}; accepted kinds are "
                             f"{', '.join(KINDS)}")
        if self.levels is None and not self.kind.startswith("i"):
            raise ValueError(f"{self.kind} needs a number of levels; only synthesis specs "
                             "take levels=None (as many as the coefficients given)")
        if self.levels is not None:
            if isinstance(self.levels, bool) or not isinstance(self.levels, (int, np.integer)):
                raise TypeError(f"levels must be an integer >= 1, got {self.levels!r}")
            if self.levels < 1:
                raise ValueError(f"levels must be >= 1, got {self.levels}; a 0-level "
                                 "transform is the identity (the layers take J=0 and "
                                 "return (x, []))")
            object.__setattr__(self, "levels", int(self.levels))
        if self.is_scatter:
            self._resolve_scatter()
            return
        if self.is_dtcwt:
            self._resolve_dtcwt()
            return
        ndim = self.ndim
        modes = axis_modes(self.kind, self.mode, ndim)
        object.__setattr__(self, "modes", modes)
        # One mode for all axes is stored as the string, so that equal specs are equal.
        object.__setattr__(self, "mode", modes[0] if len(set(modes)) == 1 else modes)
        wav = self.wavelet
        if ndim == 2 and isinstance(wav, (tuple, list)) and len(wav) == 2 and \
                not _is_filter(wav[0]):
            banks = (filter_bank(wav[0]), filter_bank(wav[1]))   # (height axis, width axis)
        else:
            banks = (filter_bank(wav),) * ndim
        if self.is_inverse and not all(b.has_synthesis for b in banks):
            raise ValueError(f"{self.kind} needs synthesis filters (rec_lo, rec_hi); the given "
                             "filter bank has analysis filters only")
        if not self.is_inverse and not all(b.has_analysis for b in banks):
            raise ValueError(f"{self.kind} needs analysis filters (dec_lo, dec_hi); the given "
                             "filter bank has synthesis filters only")
        object.__setattr__(self, "banks", banks)
        # Store the resolved banks as the wavelet so that equality and hashing are by value.
        object.__setattr__(self, "wavelet", banks if ndim == 2 and banks[0] != banks[1]
                           else banks[0])

    def _resolve_dtcwt(self):
        from .kingsbury import filter_set
        if self.mode not in DTCWT_MODES:
            raise ValueError(f"unknown DTCWT mode {self.mode!r}; accepted modes are "
                             f"{', '.join(DTCWT_MODES)} (zero extension applies at every level)")
        biort = filter_set("near_sym_a" if self.biort is None else self.biort, "biort",
                           self.is_inverse)
        qshift = filter_set("qshift_a" if self.qshift is None else self.qshift, "qshift",
                            self.is_inverse)
        needs = ("g0o", "g1o") if self.is_inverse else ("h0o", "h1o")
        needq = ("g0a", "g0b", "g1a", "g1b") if self.is_inverse else ("h0a", "h0b", "h1a", "h1b")
        for fs, keys in ((biort, needs), (qshift, needq)):
            if not fs.has(*keys):
                raise ValueError(f"{self.kind} needs the {fs.kind} filters {', '.join(keys)}; "
                                 f"the set {fs.name} has {', '.join(k for k, _ in fs.taps)}")
        object.__setattr__(self, "biort", biort)
        object.__setattr__(self, "qshift", qshift)
        object.__setattr__(self, "wavelet", None)
        for name in ("skip_hps", "include_scale"):
            value = getattr(self, name)
            if value is None and (name == "include_scale" or not self.is_inverse):
                value = False
            if value is not None:
                object.__setattr__(self, name, self._per_level(name, value))
        if self.is_inverse and any(self.include_scale):
            raise ValueError("include_scale applies to the forward DTCWT only")
        dims = []
        for name in ("o_dim", "ri_dim"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or \
                    not -6 <= value < 6:
                raise ValueError(f"{name} must be a dimension of the 6-D band tensor, -6..5; "
                                 f"got {value!r}")
            dims.append(int(value) % 6)
        if dims[0] == dims[1]:
            raise ValueError("o_dim and ri_dim must be different dimensions")
        object.__setattr__(self, "o_dim", dims[0])
        object.__setattr__(self, "ri_dim", dims[1])

    def _resolve_scatter(self):
        from .kingsbury import filter_set
        if self.mode not in DTCWT_MODES:
            raise ValueError(f"unknown scattering mode {self.mode!r}; accepted modes are "
                             f"{', '.join(DTCWT_MODES)} (zero extension applies at every stage)")
        if self.transposed:
            raise ValueError("scatter2d is not linear and has no adjoint spec; its gradient "
                             "is the op's backward")
        if isinstance(self.order, bool) or self.order not in (1, 2) or self.order > self.levels:
            raise ValueError(f"order must be 1 or 2 and at most the number of scales "
                             f"({self.levels}); got {self.order!r}")
        try:
            magbias = float(self.magbias)
        except (TypeError, ValueError):
            magbias = float("nan")
        if not magbias >= 0 or magbias == float("inf"):
            raise ValueError(f"magbias must be a finite number >= 0 (0: the plain magnitude); "
                             f"got {self.magbias!r}")
        object.__setattr__(self, "magbias", magbias)
        if self.size_rule not in SIZE_RULES:
            raise ValueError(f"unknown size_rule {self.size_rule!r}; accepted: "
                             f"{', '.join(SIZE_RULES)} (pytorch_wavelets' padded sizes, or "
                             "dtcwt's rule at every stage)")
        object.__setattr__(self, "biort", filter_set(
            "near_sym_a" if self.biort is None else self.biort, "biort", False))
        if self.qshift is not None:
            object.__setattr__(self, "qshift", filter_set(self.qshift, "qshift", False))
        object.__setattr__(self, "wavelet", None)
        object.__setattr__(self, "order", int(self.order))
        object.__setattr__(self, "combine_colour", bool(self.combine_colour))

    def _per_level(self, name: str, value) -> tuple[bool, ...]:
        if isinstance(value, (bool, np.bool_)):
            if self.levels is None:
                return () if not value else self._fail_levels(name)
            return (bool(value),) * self.levels
        value = tuple(bool(v) for v in value)
        if self.levels is None and not value:
            return value
        if self.levels is None or len(value) != self.levels:
            raise ValueError(f"{name} must be a bool or a list of one bool per level "
                             f"({self.levels} levels); got {len(value)} entries")
        return value

    def _fail_levels(self, name):
        raise ValueError(f"{name}=True needs a number of levels")

    @property
    def is_dtcwt(self) -> bool:
        return self.kind in DTCWT_KINDS

    @property
    def is_scatter(self) -> bool:
        return self.kind in SCATTER_KINDS

    @property
    def ndim(self) -> int:
        return 2 if self.kind.endswith("2d") else 1

    @property
    def is_inverse(self) -> bool:
        return self.kind.startswith("i")

    def adjoint(self) -> "Spec":
        return dataclasses.replace(self, transposed=not self.transposed)

    def inverse(self) -> "Spec":
        """The synthesis spec of an analysis spec and vice versa; (A^T)^-1 = (A^-1)^T."""
        if self.is_scatter:
            raise ValueError("scatter2d discards the phase and has no inverse")
        kind = self.kind[1:] if self.is_inverse else "i" + self.kind
        if self.is_dtcwt:
            return dataclasses.replace(self, kind=kind, include_scale=None)
        return dataclasses.replace(self, kind=kind)

    @functools.cached_property
    def json(self) -> str:
        return self.to_json()

    def to_json(self) -> str:
        """Canonical JSON: the identity of a spec across processes (cache keys, torch ops)."""
        if self.is_scatter:
            return json.dumps({"kind": self.kind, "levels": self.levels, "order": self.order,
                               "mode": self.mode, "magbias": self.magbias,
                               "size_rule": self.size_rule,
                               "combine_colour": self.combine_colour,
                               "biort": self.biort.to_json(),
                               "qshift": self.qshift and self.qshift.to_json()}, sort_keys=True)
        if self.is_dtcwt:
            return json.dumps({"kind": self.kind, "levels": self.levels, "mode": self.mode,
                               "transposed": self.transposed, "biort": self.biort.to_json(),
                               "qshift": self.qshift.to_json(), "skip_hps": self.skip_hps,
                               "include_scale": self.include_scale, "o_dim": self.o_dim,
                               "ri_dim": self.ri_dim}, sort_keys=True)
        return json.dumps({"kind": self.kind, "levels": self.levels, "mode": self.mode,
                           "transposed": self.transposed,
                           "banks": [b.to_json() for b in self.banks]}, sort_keys=True)

    @staticmethod
    def from_json(text: str) -> "Spec":
        d = json.loads(text)
        if d["kind"] in SCATTER_KINDS:
            from .kingsbury import FilterSet
            return Spec(d["kind"], levels=d["levels"], order=d["order"], mode=d["mode"],
                        magbias=d["magbias"], size_rule=d["size_rule"],
                        combine_colour=d["combine_colour"],
                        biort=FilterSet.from_json(d["biort"]),
                        qshift=d["qshift"] and FilterSet.from_json(d["qshift"]))
        if d["kind"] in DTCWT_KINDS:
            from .kingsbury import FilterSet
            return Spec(d["kind"], levels=d["levels"], mode=d["mode"],
                        transposed=d["transposed"], biort=FilterSet.from_json(d["biort"]),
                        qshift=FilterSet.from_json(d["qshift"]), skip_hps=d["skip_hps"],
                        include_scale=d["include_scale"], o_dim=d["o_dim"], ri_dim=d["ri_dim"])
        banks = tuple(FilterBank(b["name"], *(None if b[f] is None else tuple(b[f]) for f in
                                              ("dec_lo", "dec_hi", "rec_lo", "rec_hi")))
                      for b in d["banks"])
        wavelet = banks if len(banks) == 2 and banks[0] != banks[1] else banks[0]
        return Spec(d["kind"], wavelet, d["levels"], d["mode"], d["transposed"])

    def readable_name(self) -> str:
        if self.is_scatter:
            names = f"{self.biort.name}-{self.qshift.name if self.qshift else 'biort'}_" \
                f"order{self.order}"
        elif self.is_dtcwt:
            names = f"{self.biort.name}-{self.qshift.name}"
        else:
            names = "-".join(dict.fromkeys(b.name for b in self.banks))
        levels = "any" if self.levels is None else self.levels
        mode = self.mode if isinstance(self.mode, str) else "-".join(self.mode)
        return f"{self.kind}{'_adjoint' if self.transposed else ''}_{names}_{mode}_J{levels}"


def _is_filter(obj) -> bool:
    """True for a sequence of numbers (one filter), False for a bank-like object."""
    if isinstance(obj, (str, pywt.Wavelet, FilterBank)):
        return False
    try:
        return np.asarray(obj).dtype.kind in "fiu"
    except (TypeError, ValueError):
        return False
