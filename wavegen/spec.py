"""Stage 1: the spec, a frozen and hashable value naming *what* to compute.

Shapes and dtypes are deliberately absent: one spec serves every input size and dtype.
"""
from __future__ import annotations

import dataclasses
import functools
import hashlib
import json

import numpy as np
import pywt

MODES = ("zero", "constant", "symmetric", "reflect", "periodic", "smooth",
         "antisymmetric", "antireflect", "periodization")
# Aliases accepted for compatibility with pytorch_wavelets.
MODE_ALIASES = {"per": "periodization", "periodisation": "periodization", "sym": "symmetric",
                "zpd": "zero", "ref": "reflect", "reflection": "reflect", "symm": "symmetric"}
DWT_KINDS = ("dwt1d", "dwt2d", "idwt1d", "idwt2d")
KINDS = DWT_KINDS


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
            raise ValueError(f"unknown wavelet {wavelet!r}; accepted discrete wavelets are "
                             f"{', '.join(discrete)}, a pywt.Wavelet, or a filter tuple")
        wavelet = pywt.Wavelet(wavelet)
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


def canonical_mode(mode: str) -> str:
    if not isinstance(mode, str):
        raise TypeError(f"mode must be a string, one of {', '.join(MODES)}; got {mode!r}")
    mode = MODE_ALIASES.get(mode, mode)
    if mode not in MODES:
        raise ValueError(f"unknown mode {mode!r}; accepted modes are {', '.join(MODES)} "
                         f"(aliases: {', '.join(sorted(MODE_ALIASES))})")
    return mode


@dataclasses.dataclass(frozen=True)
class Spec:
    """What to compute.

    kind:    'dwt1d' | 'dwt2d' (analysis) or 'idwt1d' | 'idwt2d' (synthesis, PyWavelets'
             waverec semantics).
    wavelet: a name, ``pywt.Wavelet``, ``FilterBank`` or filter tuple; for 2-D also a pair
             ``(height_bank, width_bank)`` to filter the two axes differently.
    levels:  number of decomposition levels (>= 1). Synthesis specs may leave it None: the
             number of detail tensors given decides (as in pywt.waverec2), and the same
             kernels serve every count.
    mode:    one of the nine PyWavelets modes.
    transposed: this spec is the exact adjoint (transpose) of the one it was made from;
             ``spec.adjoint()`` flips it.
    """
    kind: str
    wavelet: object = "haar"
    levels: int | None = 1
    mode: str = "symmetric"
    transposed: bool = False
    banks: tuple[FilterBank, ...] = dataclasses.field(default=(), compare=False, repr=False)

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
                raise ValueError(f"levels must be >= 1, got {self.levels}")
            object.__setattr__(self, "levels", int(self.levels))
        object.__setattr__(self, "mode", canonical_mode(self.mode))
        ndim = self.ndim
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
        kind = self.kind[1:] if self.is_inverse else "i" + self.kind
        return dataclasses.replace(self, kind=kind)

    @functools.cached_property
    def json(self) -> str:
        return self.to_json()

    def to_json(self) -> str:
        """Canonical JSON: the identity of a spec across processes (cache keys, torch ops)."""
        return json.dumps({"kind": self.kind, "levels": self.levels, "mode": self.mode,
                           "transposed": self.transposed,
                           "banks": [b.to_json() for b in self.banks]}, sort_keys=True)

    @staticmethod
    def from_json(text: str) -> "Spec":
        d = json.loads(text)
        banks = tuple(FilterBank(b["name"], *(None if b[f] is None else tuple(b[f]) for f in
                                              ("dec_lo", "dec_hi", "rec_lo", "rec_hi")))
                      for b in d["banks"])
        wavelet = banks if len(banks) == 2 and banks[0] != banks[1] else banks[0]
        return Spec(d["kind"], wavelet, d["levels"], d["mode"], d["transposed"])

    def readable_name(self) -> str:
        names = "-".join(dict.fromkeys(b.name for b in self.banks))
        levels = "any" if self.levels is None else self.levels
        return f"{self.kind}{'_adjoint' if self.transposed else ''}_{names}_{self.mode}_J{levels}"


def _is_filter(obj) -> bool:
    """True for a sequence of numbers (one filter), False for a bank-like object."""
    if isinstance(obj, (str, pywt.Wavelet, FilterBank)):
        return False
    try:
        return np.asarray(obj).dtype.kind in "fiu"
    except (TypeError, ValueError):
        return False
