"""Kingsbury's DTCWT filter sets (contract.md 4.1): the biorthogonal level-1 filters and the
q-shift filters of levels >= 2.

The tables ship with wavegen (``data/kingsbury_filters.txt``, copied bit for bit from the
`dtcwt` package, which is a test-only oracle: it pins NumPy < 2).
"""
from __future__ import annotations

import dataclasses
import functools
import hashlib
import importlib.resources
import json

import numpy as np

BIORT = ("antonini", "legall", "near_sym_a", "near_sym_b", "near_sym_b_bp")
QSHIFT = ("qshift_06", "qshift_a", "qshift_b", "qshift_c", "qshift_d", "qshift_b_bp")
# Tuple orders, as the dtcwt package returns them (and pytorch_wavelets' shorter tuples).
BIORT_KEYS = ("h0o", "g0o", "h1o", "g1o", "h2o", "g2o")
QSHIFT_KEYS = ("h0a", "h0b", "g0a", "g0b", "h1a", "h1b", "g1a", "g1b",
               "h2a", "h2b", "g2a", "g2b")
BIORT_ANALYSIS, BIORT_SYNTHESIS = ("h0o", "h1o"), ("g0o", "g1o")
QSHIFT_ANALYSIS, QSHIFT_SYNTHESIS = ("h0a", "h0b", "h1a", "h1b"), ("g0a", "g0b", "g1a", "g1b")


@dataclasses.dataclass(frozen=True)
class FilterSet:
    """Named taps of one biorthogonal or q-shift set; ``taps`` is a sorted tuple of
    (key, taps) pairs so that the set is hashable and compares by value."""
    name: str
    kind: str                                   # 'biort' | 'qshift'
    taps: tuple[tuple[str, tuple[float, ...]], ...]

    def __getitem__(self, key: str) -> tuple[float, ...]:
        return dict(self.taps)[key]

    def has(self, *keys: str) -> bool:
        present = dict(self.taps)
        return all(k in present for k in keys)

    def to_json(self) -> dict:
        return {"name": self.name, "kind": self.kind, "taps": [list(t) for t in self.taps]}

    @staticmethod
    def from_json(d: dict) -> "FilterSet":
        return FilterSet(d["name"], d["kind"], tuple((k, tuple(v)) for k, v in d["taps"]))


@functools.lru_cache(maxsize=None)
def _tables() -> dict[str, dict[str, tuple[float, ...]]]:
    """Set name -> filter name -> taps, from the shipped table (``<set> <filter> <taps>``
    per line)."""
    tables = {}
    text = importlib.resources.files("wavegen").joinpath("data/kingsbury_filters.txt")
    for line in text.read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            name, key, *taps = line.split()
            tables.setdefault(name, {})[key] = tuple(float(t) for t in taps)
    return tables


@functools.lru_cache(maxsize=None)
def _table(name: str, kind: str) -> FilterSet:
    return _make(name, kind, _tables()[name])


def _make(name: str, kind: str, taps: dict) -> FilterSet:
    clean = {}
    for key, values in taps.items():
        try:
            arr = np.asarray(values, dtype=np.float64).ravel()
        except (TypeError, ValueError) as exc:
            raise TypeError(f"{kind} filter {key} must be a sequence of real numbers") from exc
        if arr.size == 0 or not np.all(np.isfinite(arr)):
            raise ValueError(f"{kind} filter {key} must be non-empty and finite")
        clean[key] = tuple(float(v) for v in arr)
    _validate(kind, clean)
    if name == "custom":
        digest = json.dumps(sorted(clean.items()))
        name = "custom" + hashlib.sha256(digest.encode()).hexdigest()[:8]
    return FilterSet(name, kind, tuple(sorted(clean.items())))


def _validate(kind: str, taps: dict) -> None:
    """The structure that makes the transform's inverse and adjoints exact (contract 4.2):
    odd, symmetric level-1 filters (colfilter is then self-adjoint), and q-shift pairs of
    even length with tree b the reverse of tree a (coldfilt^T is then colifilt)."""
    for key, t in taps.items():
        arr = np.asarray(t)
        if kind == "biort":
            if arr.size % 2 == 0 or not np.allclose(arr, arr[::-1], rtol=0, atol=1e-12):
                raise ValueError(f"biort filter {key} must have odd length and be symmetric, "
                                 f"as every Kingsbury biorthogonal filter is; got {list(t)}")
        elif arr.size % 2:
            raise ValueError(f"qshift filter {key} must have even length; got {arr.size} taps")
    if kind == "qshift":
        for a in [k for k in taps if k.endswith("a")]:
            b = a[:-1] + "b"
            if b in taps and not np.allclose(taps[b], taps[a][::-1], rtol=0, atol=1e-12):
                raise ValueError(f"qshift filter {b} must be the reverse of {a} (tree b mirrors "
                                 "tree a in every Kingsbury q-shift set)")


def filter_set(value, kind: str, synthesis: bool = False) -> FilterSet:
    """Resolve a name, a FilterSet or a tuple of filters.

    biort tuples: dtcwt's ``(h0o, g0o, h1o, g1o[, h2o, g2o])`` or pytorch_wavelets'
    pair ``(h0o, h1o)``. qshift tuples: dtcwt's ``(h0a, h0b, g0a, g0b, h1a, h1b,
    g1a, g1b[, h2a, h2b, g2a, g2b])`` or pytorch_wavelets' ``(h0a, h0b, h1a, h1b)``. The
    short tuples are the synthesis filters (g...) when ``synthesis`` is set, as in
    pytorch_wavelets' inverse layers.
    """
    names = BIORT if kind == "biort" else QSHIFT
    if isinstance(value, FilterSet):
        if value.kind != kind:
            raise ValueError(f"a {value.kind} filter set was given as {kind}")
        return value
    if isinstance(value, str):
        if value not in names:
            from .spec import unknown_name
            raise ValueError(unknown_name(f"{kind} filters {value!r}", value, names) +
                             f"; accepted names are {', '.join(names)}, or a tuple of "
                             "filters")
        return _table(value, kind)
    if isinstance(value, (tuple, list)):
        full = BIORT_KEYS if kind == "biort" else QSHIFT_KEYS
        short = (BIORT_SYNTHESIS if synthesis else BIORT_ANALYSIS) if kind == "biort" else \
            (QSHIFT_SYNTHESIS if synthesis else QSHIFT_ANALYSIS)
        plain = full[:len(full) * 2 // 3]          # without the bandpass filters
        for keys in (plain, full, short):
            if len(value) == len(keys):
                return _make("custom", kind, dict(zip(keys, value)))
        raise ValueError(f"a {kind} tuple has {len(plain)} or {len(full)} filters "
                         f"({', '.join(full)}) or the analysis filters {short}; "
                         f"got {len(value)}")
    raise TypeError(f"{kind} must be one of {', '.join(names)} or a tuple of filters; got "
                    f"{type(value).__name__}")
