"""Tolerances derived from the computation (Higham, *Accuracy and Stability of Numerical
Algorithms*, 2nd ed., ch. 3), so that no test compares against a number picked to pass.

A sum of n products computed in floating point, in any order, errs by at most
``gamma(n) * sum |a_i b_i| + n * eta``, ``gamma(n) = n u / (1 - n u)`` for the unit
roundoff u of its type and eta half its smallest subnormal (products that underflow: the
tiny taps of dmey make some). A transform is a chain of such sums; to first order in u,
each stage's error passes through the following stages' absolute operators, so two
evaluations of one transform differ, element by element, by at most the sum of their
bounds. The bounds here are elementwise:

* ``DwtBounds``, for the DWT against PyWavelets: the absolute operators ``|H| |W|`` of
  every level (taps over the extension, which is where the smooth and antireflect modes
  grow their values level after level), built from PyWavelets' own extension
  (``pywt.pad``) and checked against PyWavelets' dense operator;
* ``DtcwtBounds`` and ``ScatterBounds``, for the DTCWT and the scattering network: the
  operators of dtcwt's own building blocks (colfilter, coldfilt) run on the identity, with
  q2c, magnitudes and pooling, and, for gradients, the conditioning of the phase z / |z|.

Quantities travel as unit bounds (per rounding unit, per underflow floor), scaled at the
end for the evaluations compared: (dtype, count) pairs.

float16 and bfloat16 evaluations store in that type and sum in float32: a sum of n products
errs by gamma_32(n) times its absolute sum, is rounded once to the storage type where it is
written (u_s times its value, or half the storage type's smallest subnormal), and may read
an extended sample that was itself rounded to storage (a halo row of the CPU's bfloat16
column pass, which reads rows as stored: u_s times the absolute sum again). Per stage, then,
``gamma_32(n) + 2 u_s (1 + gamma_32(n))`` and ``n eta_32 + 2 eta_s``.
"""
from __future__ import annotations

import functools
import math

import numpy as np
import pywt
import torch

UNIT_ROUNDOFF = {torch.float64: 2.0 ** -53, torch.float32: 2.0 ** -24,
                 np.dtype(np.float64): 2.0 ** -53, np.dtype(np.float32): 2.0 ** -24}


# Storage types: (unit roundoff, half the smallest subnormal); their sums run in float32.
STORAGE = {torch.float16: (2.0 ** -11, 2.0 ** -25), torch.bfloat16: (2.0 ** -8, 2.0 ** -134)}


def unit_roundoff(dtype) -> float:
    return UNIT_ROUNDOFF[dtype if isinstance(dtype, torch.dtype) else np.dtype(dtype)]


def gamma(n: int, dtype) -> float:
    """The relative error of a sum of n products evaluated in ``dtype`` (for a storage
    type: summed in float32 and stored, its extended inputs stored too)."""
    if dtype in STORAGE:
        g = gamma(n, torch.float32)
        return g + 2 * STORAGE[dtype][0] * (1 + g)
    nu = n * unit_roundoff(dtype)
    return nu / (1 - nu)


def underflow(dtype) -> float:
    """The absolute error of a product that underflows: half the smallest subnormal."""
    return {2.0 ** -53: 2.0 ** -1075, 2.0 ** -24: 2.0 ** -150}[unit_roundoff(dtype)]


def floor(n: int, dtype) -> float:
    """The absolute error of a sum of n products that underflows, in ``dtype``."""
    if dtype in STORAGE:
        return floor(n, torch.float32) + 2 * STORAGE[dtype][1]
    return n * underflow(dtype)


def scale_bound(unit: dict, evaluations, terms: int) -> np.ndarray:
    """An absolute bound from unit bounds (``error``: in rounding units of a sum of
    ``terms`` products, ``ones``: in underflow floors of such a sum), for the evaluations
    compared: (dtype, count) pairs."""
    return sum(count * (gamma(terms, d) * unit["error"] + floor(terms, d) * unit["ones"])
               for d, count in evaluations)


# -- the DWT, elementwise ------------------------------------------------------------------

def _key(wavelet):
    """A hashable stand-in for one axis' wavelet: its name, or its four filters."""
    if isinstance(wavelet, str):
        return wavelet
    bank = wavelet.filter_bank if isinstance(wavelet, pywt.Wavelet) else wavelet
    return tuple(tuple(float(v) for v in f) for f in bank)


def _bank(key) -> pywt.Wavelet:
    if isinstance(key, str):
        return pywt.Wavelet(key)
    return pywt.Wavelet("bank", filter_bank=[list(f) for f in key])     # pads odd lengths


def axis_wavelets(wavelet, ndim: int) -> list:
    """One wavelet per axis: a pair (height, width) of names or pywt.Wavelets, else one
    wavelet (a name, a pywt.Wavelet or four filters) for every axis."""
    if ndim == 2 and isinstance(wavelet, tuple) and len(wavelet) == 2 and \
            all(isinstance(w, (str, pywt.Wavelet)) for w in wavelet):
        return [_key(w) for w in wavelet]
    return [_key(wavelet)] * ndim


@functools.lru_cache(maxsize=None)
def _analysis(key, mode: str, n: int):
    """(signed, absolute) (lo, hi) analysis operators (K x n) of a length-n signal: the taps
    H over the extension W, and |H| |W|."""
    bank = _bank(key)
    L = bank.dec_len
    if mode == "periodization":
        ext = n + n % 2                         # the odd last sample is repeated once
        W = np.zeros((ext, n))
        W[np.arange(n), np.arange(n)] = 1
        W[ext - 1, n - 1] = 1
        column = lambda k, j: (2 * k + L // 2 - j) % ext            # noqa: E731
        K = ext // 2
    else:
        # Extended samples 2-L .. n+L-2 (contract.md 1.3), from PyWavelets' own extension;
        # its DWT treats a single sample in smooth mode as constant.
        pad_mode = "constant" if mode == "smooth" and n == 1 else mode
        W = np.stack([pywt.pad(e, (L, L), pad_mode) for e in np.eye(n)], 1)[2:n + 2 * L - 1]
        column = lambda k, j: 2 * k - 1 - j + L                     # noqa: E731
        K = (n + L - 1) // 2
    signed, absolute, products = [], [], 0
    for f in (bank.dec_lo, bank.dec_hi):
        H, absH = np.zeros((K, W.shape[0])), np.zeros((K, W.shape[0]))
        for k in range(K):
            for j in range(L):
                H[k, column(k, j)] += f[j]
                absH[k, column(k, j)] += abs(f[j])
        signed.append(H @ W)
        absolute.append(absH @ np.abs(W))
        # The adjoint sums, per stored sample, every (tap, coefficient) product that lands
        # on it through the fold: its sum's length.
        products = products + ((absH > 0).astype(int) @ (W != 0).astype(int)).sum(0)
    _check(signed, absolute, pywt.dwt(np.eye(n), bank, mode=mode, axis=0), L)
    return signed, absolute, int(products.max())


@functools.lru_cache(maxsize=None)
def _synthesis(key, mode: str, k: int):
    """(signed, absolute) (lo, hi) synthesis operators (n x k) of ``pywt.idwt``: the full
    upsampled convolution less its first L - 2 samples, or with periodization the
    transpose of periodization analysis with the reversed filter (contract.md 1.5)."""
    bank = _bank(key)
    L = bank.rec_len
    signed, absolute = [], []
    for f in (bank.rec_lo, bank.rec_hi):
        rows = 2 * k if mode == "periodization" else 2 * k - L + 2
        S, absS = np.zeros((rows, k)), np.zeros((rows, k))
        for c in range(k):
            for t in range(L):
                o = (2 * c + t - L // 2 + 1) % (2 * k) if mode == "periodization" else \
                    2 * c + t - L + 2
                if 0 <= o < rows:
                    S[o, c] += f[t]
                    absS[o, c] += abs(f[t])
        signed.append(S)
        absolute.append(absS)
    reference = (pywt.idwt(np.eye(k), None, bank, mode=mode, axis=0),
                 pywt.idwt(None, np.eye(k), bank, mode=mode, axis=0))
    _check(signed, absolute, reference, L)
    return signed, absolute


def _check(signed, absolute, reference, L):
    """The harness's operators are PyWavelets' (to the rounding of either)."""
    for op, bound, ref in zip(signed, absolute, reference):
        assert op.shape == ref.shape, (op.shape, ref.shape)
        assert np.abs(op - ref).max() <= 2 * gamma(L + 4, np.float64) * bound.max()


def _apply(ops, a, axes):
    """One (rows x n) operator per axis, applied to the last len(axes) dimensions of a."""
    for op, axis in zip(ops, axes):
        a = np.moveaxis(np.tensordot(op, np.moveaxis(a, axis, 0), axes=1), 0, axis)
    return a


class DwtBounds:
    """Elementwise bounds on the difference of ours (in ``dtype``) and PyWavelets (float64)
    for one input x of shape (..., n) or (..., h, w): ``forward`` for wavedec(2),
    ``inverse`` for waverec(2) each run on its own coefficients, ``reconstruction`` for our
    waverec(wavedec(x)) against x.

    Every filter sum has at most L products of an extended sample of at most three
    weighted terms, computed in a few roundings (PyWavelets' smooth mode: x0 + k (x0 - x1)),
    so it errs by gamma(L + 4) times its absolute sum, plus (L + 4) eta for underflow. The
    bounds are linear in both, so they are propagated per unit: ``error`` from the
    magnitudes, ``ones`` from a unit floor per sum, and scaled at the end."""

    def __init__(self, x, wavelet, mode: str, levels: int, dtype, ndim: int):
        self.x = np.asarray(x, dtype=np.float64)
        self.levels, self.ndim, self.dtype = levels, ndim, dtype
        self.modes = (mode,) * ndim if isinstance(mode, str) else tuple(mode)   # per axis
        self.keys = axis_wavelets(wavelet, ndim)
        self.axes = tuple(range(-ndim, 0))
        self.terms = max(_bank(k).dec_len for k in self.keys) + 4
        self.pairs = [(1,)] if ndim == 1 else [(1, 0), (0, 1), (1, 1)]   # cH, cV, cD
        self._forward()

    def _scale(self, unit: dict, evaluations, terms: int | None = None) -> np.ndarray:
        return scale_bound(unit, evaluations, terms or self.terms)

    def _step(self, ops, signed, inputs, pairs) -> dict:
        """One level (analysis: one input, a band per pair; synthesis: a sum over inputs)
        through the absolute operators, with its own rounding added."""
        def through(which, field):
            return sum(_apply([which[a][p] for a, p in enumerate(pair)], b[field], self.axes)
                       for pair, b in zip(pairs, inputs))
        magnitude = through(ops, "magnitude")
        return dict(magnitude=magnitude, exact=through(signed, "exact"),
                    error=through(ops, "error") + self.ndim * magnitude,
                    ones=through(ops, "ones") + self.ndim * np.ones_like(magnitude))

    def _forward(self):
        level = dict(magnitude=np.abs(self.x), exact=self.x, error=np.zeros_like(self.x),
                     ones=np.zeros_like(self.x))
        self.details, self.sizes, self.adjoint_terms = [], [], self.terms
        for _ in range(self.levels):
            sizes = [level["magnitude"].shape[a] for a in self.axes]
            signed, ops, products = zip(*(_analysis(k, m, n) for k, m, n in
                                          zip(self.keys, self.modes, sizes)))
            self.adjoint_terms = max(self.adjoint_terms, max(products) + 4)
            self.details.append([self._step(ops, signed, [level], [pair])
                                 for pair in self.pairs])
            level = self._step(ops, signed, [level], [(0,) * self.ndim])
            self.sizes.append(sizes)
        self.approx = level

    def forward(self, evaluations=None):
        """(bound on yl, [bounds on yh_1 .. yh_J], finest first; 2-D bands (cH, cV, cD)
        stacked on axis -3), for ``evaluations`` ((dtype, count) pairs; by default ours in
        dtype and PyWavelets in float64)."""
        evaluations = evaluations or [(self.dtype, 1), (np.float64, 1)]
        stack = (lambda b: np.stack(b, axis=-3)) if self.ndim == 2 else (lambda b: b[0])
        return (self._scale(self.approx, evaluations),
                [stack([self._scale(b, evaluations) for b in bands])
                 for bands in self.details])

    def _synthesis(self, approx=None, details=None) -> dict:
        """waverec of the bounds (by default of the forward's): the coefficients' unit
        errors through |S| plus the syntheses' own rounding, and the exact reconstruction
        through the signed S."""
        level = self.approx if approx is None else approx
        for bands in reversed(self.details if details is None else details):
            size = bands[0]["magnitude"].shape[-self.ndim:]
            crop = (Ellipsis, *(slice(0, s) for s in size))
            level = {k: v[crop] for k, v in level.items()}
            signed, ops = zip(*(_synthesis(k, m, n) for k, m, n in
                                 zip(self.keys, self.modes, size)))
            level = self._step(ops, signed, [level] + bands, [(0,) * self.ndim] + self.pairs)
        return level

    def inverse(self, evaluations=None):
        """Bound on |waverec(ours) - waverec(PyWavelets')| (or between ``evaluations``),
        each run on its own coefficients."""
        return self._scale(self._synthesis(), evaluations or [(self.dtype, 1), (np.float64, 1)])

    def _split(self, band):
        band = np.asarray(band.detach() if isinstance(band, torch.Tensor) else band,
                          dtype=np.float64)
        return [_value(band[..., i, :, :]) for i in range(3)] if self.ndim == 2 else \
            [_value(band)]

    def synthesis_of(self, yl, yh, evaluations):
        """Bound on evaluations of waverec of the same coefficients yl, yh."""
        approx = _value(np.asarray(yl.detach() if isinstance(yl, torch.Tensor) else yl,
                                   dtype=np.float64))
        return self._scale(self._synthesis(approx, [self._split(b) for b in yh]),
                           evaluations)

    def synthesis_adjoint(self, r, evaluations):
        """Bounds on evaluations of waverec's adjoint of r: (yl, [yh_1 .. yh_J]) as
        ``forward``; it runs every level's |S| transposed, finest first, and pads what the
        inverse cropped with zeros."""
        level = _value(np.asarray(r, dtype=np.float64))
        details = []
        for bands in self.details:
            size = bands[0]["magnitude"].shape[-self.ndim:]
            signed, ops = zip(*(_synthesis(k, m, n) for k, m, n in
                                 zip(self.keys, self.modes, size)))
            rows = [o[0].shape[0] for o in ops]
            if list(level["magnitude"].shape[-self.ndim:]) != rows:     # a cropped sample
                grown = {}
                for k, v in level.items():
                    grown[k] = np.zeros((*v.shape[:-self.ndim], *rows))
                    grown[k][(Ellipsis, *(slice(0, n) for n in v.shape[-self.ndim:]))] = v
                level = grown
            outputs = []
            for pair in [(0,) * self.ndim] + self.pairs:
                chosen = [ops[a][p].T for a, p in enumerate(pair)]
                m = _apply(chosen, level["magnitude"], self.axes)
                outputs.append(dict(
                    magnitude=m, exact=_apply([signed[a][p].T for a, p in enumerate(pair)],
                                              level["exact"], self.axes),
                    error=_apply(chosen, level["error"], self.axes) + self.ndim * m,
                    ones=_apply(chosen, level["ones"], self.axes) + self.ndim))
            details.append(outputs[1:])
            level = outputs[0]
        stack = (lambda b: np.stack(b, axis=-3)) if self.ndim == 2 else (lambda b: b[0])
        return (self._scale(level, evaluations),
                [stack([self._scale(b, evaluations, self.adjoint_terms) for b in bands])
                 for bands in details])

    def adjoint(self, gl, gh, evaluations):
        """Bound on the difference of ``evaluations`` ((dtype, count) pairs) of the adjoint
        A^T (gl, gh), the gradient of x, whose sums run over every product the fold lands on
        a sample."""
        level = dict(magnitude=np.abs(gl), exact=gl, error=np.zeros_like(gl),
                     ones=np.zeros_like(gl))
        for sizes, band in zip(reversed(self.sizes), reversed(gh)):
            signed, ops, _ = zip(*(_analysis(k, m, n) for k, m, n in
                                    zip(self.keys, self.modes, sizes)))
            transposed = [[o.T for o in axis] for axis in ops]
            given = [band[..., i, :, :] for i in range(3)] if self.ndim == 2 else [band]
            inputs = [level] + [dict(magnitude=np.abs(g), exact=g, error=np.zeros_like(g),
                                     ones=np.zeros_like(g)) for g in given]
            level = self._step(transposed, [[o.T for o in axis] for axis in signed], inputs,
                               [(0,) * self.ndim] + self.pairs)
        return self._scale(level, evaluations, self.adjoint_terms)

    def reconstruction(self):
        """Bound on |our waverec(wavedec(x)) - x|: the round trip's rounding in our dtype,
        plus the filter bank's own defect (S A - I) x, evaluated in float64 through the
        signed operators, whose building and applying round twice per pass. Odd sizes
        come back one longer; the bound covers x's own samples."""
        level = self._synthesis()
        crop = (Ellipsis, *(slice(0, s) for s in self.x.shape[-self.ndim:]))
        level = {k: v[crop] for k, v in level.items()}
        return self._scale(level, [(self.dtype, 1), (np.float64, 2)]) + \
            np.abs(level["exact"] - self.x)


def assert_within(got, expected, bound, what: str = "") -> None:
    ok, ratio = within(got, expected, bound)
    assert ok, f"{what}: |got - expected| exceeds its derived bound (by {ratio:.3g}x at most)"


def within(got, expected, bound) -> tuple[bool, float]:
    """Whether |got - expected| <= bound everywhere, and the largest ratio of the two."""
    got = np.asarray(got.detach().double() if isinstance(got, torch.Tensor) else got,
                     dtype=np.float64)
    expected = np.asarray(expected, dtype=np.float64)
    assert got.shape == expected.shape, (got.shape, expected.shape)
    diff = np.abs(got - expected)
    ratio = float(np.max(diff / np.maximum(bound, np.finfo(np.float64).smallest_subnormal),
                         initial=0.0))
    return bool(np.all(diff <= bound)), ratio


# -- the DTCWT, elementwise ----------------------------------------------------------------

def _padding(n: int, before: int, after: int, embed: bool = False) -> np.ndarray:
    """(n + before + after) x n: the samples a level reads. The padding copies the first
    ``before`` and the last ``after`` samples (dtcwt's repeated ends, pytorch_wavelets'
    block copy), or with ``embed`` reads zeros (the inverse, which crops it)."""
    P = np.zeros((n + before + after, n))
    P[np.arange(before, before + n), np.arange(n)] = 1
    if not embed:
        P[np.arange(before), np.arange(before)] = 1
        P[np.arange(before + n, before + n + after), np.arange(n - after, n)] = 1
    return P


@functools.lru_cache(maxsize=None)
def _level_axis(taps, level1: bool, n: int, pad: tuple[int, int], mode: str,
                embed: bool = False):
    """(signed, absolute, products) of one DTCWT filter along one axis of a level whose
    stored input has n samples, from dtcwt's own colfilter (level 1, ``taps`` = h) or
    coldfilt (``taps`` = (ha, hb)) run on the identity; mode 'zero' runs them on a
    zero-padded identity, as the zero-mode reference does. Their extension is a selection
    of samples (weight 1), so the same routines with |taps| give |H| |W| exactly;
    ``products``: per stored sample, how many (tap, output) products land on it."""
    from dtcwt.numpy.lowlevel import coldfilt, colfilter
    P = _padding(n, *pad, embed=embed)
    size = P.shape[0]
    margin = 40                                  # a multiple of 4, longer than any filter

    def run(filters, X):
        if mode == "zero":
            Z = np.zeros((size + 2 * margin, X.shape[1]))
            Z[margin:-margin] = X
            X = Z
        Y = colfilter(X, filters) if level1 else coldfilt(X, *filters)
        if mode == "zero":
            div = 1 if level1 else 2
            Y = Y[margin // div:(margin + size) // div]
        return Y

    signed = run(taps, np.eye(size))
    absolute = run(np.abs(np.asarray(taps)) if level1 else
                   tuple(np.abs(np.asarray(t)) for t in taps), np.eye(size))
    ones = run(np.ones(len(taps)) if level1 else (np.ones(len(taps[0])),) * 2, np.eye(size))
    if not level1 and np.sum(np.asarray(taps[0]) * np.asarray(taps[1])) < 0:
        # coldfilt puts the trees in the order the sign of sum(ha hb) gives.
        swap = np.arange(absolute.shape[0]).reshape(-1, 2)[:, ::-1].ravel()
        absolute, ones = absolute[swap], ones[swap]
    assert np.abs(signed - np.where(absolute > 0, signed, 0)).max() == 0
    return signed @ P, absolute @ P, int((ones @ P).sum(0).max())


class _Kingsbury:
    """One DTCWT level's filters as (role -> taps) per direction (dtcwt's names), and its
    per-axis operators for a stored size."""

    def __init__(self, biort, qshift, level1: bool, synthesis: bool):
        from wavegen.kingsbury import filter_set
        fs = filter_set(biort, "biort") if level1 else filter_set(qshift, "qshift")
        h = "g" if synthesis else "h"
        self.level1 = level1
        if level1:
            get = lambda i: tuple(fs[f"{h}{i}o"])                           # noqa: E731
            has_bp = fs.has(f"{h}2o")
        else:
            # Analysis: coldfilt(., h?b, h?a); synthesis: the transpose of
            # coldfilt(., g?a, g?b) (colifilt(., g?b, g?a), plan_dtcwt).
            get = (lambda i: (tuple(fs[f"h{i}b"]), tuple(fs[f"h{i}a"]))) if not synthesis \
                else (lambda i: (tuple(fs[f"g{i}a"]), tuple(fs[f"g{i}b"])))  # noqa: E731
            has_bp = fs.has(f"{h}2a")
        self.roles = dict(lo=get(0), hi=get(1), diag=get(2) if has_bp else get(1))

    def ops(self, role, n, pad, mode, embed=False):
        return _level_axis(self.roles[role], self.level1, n, pad, mode, embed)


# (height role, width role, orientations of (z0, z1)); None: the lowpass.
_PRODUCTS = (("lo", "lo", None), ("hi", "lo", (0, 5)), ("lo", "hi", (2, 3)),
             ("diag", "diag", (1, 4)))
_S2 = math.sqrt(0.5)


def _through(op_h, op_w, a):
    """op_h along axis -2, op_w along axis -1."""
    return np.einsum("ij,...jk,lk->...il", op_h, a, op_w)


def _quads(a):
    return a[..., 0::2, 0::2], a[..., 0::2, 1::2], a[..., 1::2, 0::2], a[..., 1::2, 1::2]


def _unquads(qa, qb, qc, qd):
    out = np.zeros((*qa.shape[:-2], 2 * qa.shape[-2], 2 * qa.shape[-1]))
    out[..., 0::2, 0::2], out[..., 0::2, 1::2] = qa, qb
    out[..., 1::2, 0::2], out[..., 1::2, 1::2] = qc, qd
    return out


# q2c: z0 = ((a - d), (b + c)) sqrt(1/2), z1 = ((a + d), (b - c)) sqrt(1/2): per band of a
# pair, per part, the quads it adds and the sign of the second.
_Q2C = ({"re": (0, 3, -1), "im": (1, 2, 1)}, {"re": (0, 3, 1), "im": (1, 2, -1)})
_FIELDS = ("magnitude", "error", "ones", "exact")


def _value(magnitude, exact=None) -> dict:
    """An input known exactly: no error yet."""
    return dict(magnitude=np.abs(magnitude) if exact is None else magnitude,
                exact=magnitude if exact is None else exact,
                error=np.zeros_like(magnitude), ones=np.zeros_like(magnitude))


def _combine(parts, signs, rounding: float = 1.0) -> dict:
    """sqrt(1/2) (p + s q): magnitudes and errors add, the exact values with their signs;
    the sum and the scaling round once more (``rounding`` units)."""
    p, q = parts
    m = (p["magnitude"] + q["magnitude"]) * _S2
    return dict(magnitude=m, exact=(p["exact"] + signs * q["exact"]) * _S2,
                error=(p["error"] + q["error"]) * _S2 + rounding * m,
                ones=(p["ones"] + q["ones"]) * _S2 + rounding)


class DtcwtLevels:
    """The levels of a DTCWT (dtcwt's Transform2d, or its zero mode) as bound arithmetic.

    Quantities travel as dicts: ``magnitude`` (a bound on |value|), ``error`` and ``ones``
    (unit bounds, as in DwtBounds: from the magnitudes, from an underflow floor) and
    ``exact`` (the value through the signed operators). A level filters along the height,
    then the width (a rounding unit each), then applies q2c (one more); its transpose
    (the gradient; the inverse is the transpose with the synthesis filters) runs c2q, then
    both axes' transposed filters, which gather every product landing on a sample."""

    def __init__(self, biort, qshift, levels: int, mode: str = "symmetric",
                 pad: tuple[tuple[int, int], tuple[int, int]] | None = None):
        self.levels, self.mode, self.first_pad = levels, mode, pad
        self.analysis = [_Kingsbury(biort, qshift, j == 0, False) for j in range(levels)]
        self.synthesis = [_Kingsbury(biort, qshift, j == 0, True) for j in range(levels)]
        spans = [len(t) if k.level1 else 2 * len(t[0]) for k in self.analysis
                 for t in k.roles.values()]
        self.terms, self.adjoint_terms = max(spans) + 3, 0

    def _pads(self, j, sizes):
        """The padding of level j's stored input: dtcwt's (odd: repeat the last sample;
        q-shift levels: repeat both ends of a side not a multiple of 4) or, at level 1,
        the given block padding."""
        if j == 0:
            return self.first_pad or tuple((0, n % 2) for n in sizes)
        return tuple((1, 1) if n % 4 else (0, 0) for n in sizes)

    def _ops(self, kings, j, f, g, sizes, embed=False):
        pads = self._pads(j, sizes)
        oh = kings[j].ops(f, sizes[0], pads[0], self.mode, embed)
        ow = kings[j].ops(g, sizes[1], pads[1], self.mode, embed)
        return oh, ow

    def level(self, j, inputs: dict, synthesis: bool = False) -> tuple[dict, dict]:
        """Level j of the analysis: (its lowpass, {orientation: {'re', 'im'}}); with
        ``synthesis``, the transpose of the inverse's level (the analysis kernels with the
        synthesis filters, which crop the padding instead of reading copies)."""
        sizes = inputs["magnitude"].shape[-2:]
        low, bands = None, {}
        kings = self.synthesis if synthesis else self.analysis
        for f, g, orientations in _PRODUCTS:
            oh, ow = self._ops(kings, j, f, g, sizes, embed=synthesis)
            out = {key: _through(oh[0 if key == "exact" else 1], ow[0 if key == "exact"
                                                                  else 1], inputs[key])
                   for key in _FIELDS}
            out["error"] = out["error"] + 2 * out["magnitude"]
            out["ones"] = out["ones"] + 2
            if orientations is None:
                low = out
                continue
            quads = [{key: _quads(out[key])[i] for key in _FIELDS} for i in range(4)]
            for o, rule in zip(orientations, _Q2C):
                bands[o] = {part: _combine((quads[p], quads[q]), sign)
                            for part, (p, q, sign) in rule.items()}
        return low, bands

    def transpose(self, kings, j, sizes, low: dict, bands: dict, embed: bool) -> dict:
        """Level j's transpose: c2q of the bands' gradients (or coefficients), then every
        product's transposed filters, onto the level's stored input of ``sizes``."""
        total = None
        for f, g, orientations in _PRODUCTS:
            oh, ow = self._ops(kings, j, f, g, sizes, embed)
            self.adjoint_terms = max(self.adjoint_terms, oh[2] + ow[2] + 3)
            if orientations is None:
                quads = low
            else:
                z0, z1 = bands[orientations[0]], bands[orientations[1]]
                # a = (re0 + re1) s, d = (re1 - re0) s, b = (im0 + im1) s, c = (im0 - im1) s
                parts = [_combine((z0["re"], z1["re"]), 1), _combine((z0["im"], z1["im"]), 1),
                         _combine((z0["im"], z1["im"]), -1), _combine((z1["re"], z0["re"]), -1)]
                quads = {key: _unquads(*(p[key] for p in parts)) for key in _FIELDS}
            out = {key: _through(oh[0 if key == "exact" else 1].T,
                                 ow[0 if key == "exact" else 1].T, quads[key])
                   for key in _FIELDS}
            total = out if total is None else {key: total[key] + out[key] for key in _FIELDS}
        total["error"] = total["error"] + 2 * total["magnitude"]
        total["ones"] = total["ones"] + 2
        return total



class DtcwtBounds(DtcwtLevels):
    """Elementwise bounds on two evaluations of a DTCWT of one x (..., h, w): ``forward``
    for the coefficients, ``inverse`` for each evaluation's inverse of its own
    coefficients, ``gradient`` for the gradient of x from output gradients."""

    def __init__(self, x, biort, qshift, levels: int, mode: str = "symmetric"):
        super().__init__(biort, qshift, levels, mode)
        self.x = np.asarray(x.detach() if isinstance(x, torch.Tensor) else x,
                            dtype=np.float64)
        self.sizes, self.coefficients, self.lows = [], [], []
        low = _value(self.x)
        for j in range(levels):
            self.sizes.append(low["magnitude"].shape[-2:])
            low, bands = self.level(j, low)
            self.coefficients.append(bands)
            self.lows.append(low)
        self.low = low

    def _scale(self, unit: dict, evaluations, terms: int) -> np.ndarray:
        return scale_bound(unit, evaluations, terms)

    @staticmethod
    def layout(bands: dict, key: str) -> np.ndarray:
        """{orientation: {'re', 'im'}} -> (..., 6, h, w, 2), wavegen's band layout."""
        return np.stack([np.stack([bands[o]["re"][key], bands[o]["im"][key]], -1)
                         for o in range(6)], -4)

    def forward(self, evaluations):
        """(bound on yl, [bounds on yh_1 .. yh_J] in (..., 6, h, w, 2))."""
        return (self._scale(self.low, evaluations, self.terms),
                [self._scale({k: self.layout(b, k) for k in ("error", "ones")},
                             evaluations, self.terms) for b in self.coefficients])

    def largest(self, evaluations) -> float:
        """The largest forward bound: every lowpass (the scales too) and band."""
        return max(float(np.max(self._scale(v, evaluations, self.terms))) for v in
                   self.lows + [b[o][part] for b in self.coefficients for o in b
                                for part in ("re", "im")])

    def _inverse(self, low, coefficients) -> dict:
        for j in range(self.levels - 1, -1, -1):
            low = self.transpose(self.synthesis, j, self._inverse_size(j), low,
                                 coefficients[j], embed=True)
        return low

    def inverse(self, evaluations):
        """Bound on the difference of the inverses of the evaluations' own coefficients
        (each within ``forward``'s bound of the exact ones); the inverse keeps the padded
        (even) size, as dtcwt's does."""
        return self._scale(self._inverse(self.low, self.coefficients), evaluations,
                           max(self.terms, self.adjoint_terms))

    def synthesis_of(self, yl, yh, evaluations):
        """Bound on the difference of evaluations of the inverse of the same coefficients
        yl and yh (each (..., 6, h, w, 2)); a band None is zero."""
        bands = []
        for j, band in enumerate(yh):
            band = np.zeros_like(self.layout(self.coefficients[j], "magnitude")) \
                if band is None else np.asarray(band, dtype=np.float64)
            bands.append({o: {"re": _value(band[..., o, :, :, 0]),
                              "im": _value(band[..., o, :, :, 1])} for o in range(6)})
        low = self._inverse(_value(np.asarray(yl, dtype=np.float64)), bands)
        return self._scale(low, evaluations, max(self.terms, self.adjoint_terms))

    def synthesis_adjoint(self, r, evaluations):
        """Bounds on evaluations of the inverse's adjoint (the analysis kernels with the
        synthesis filters) of r: (lowpass, [bands in (..., 6, h, w, 2)]), as ``forward``."""
        low, bands = _value(np.asarray(r, dtype=np.float64)), []
        for j in range(self.levels):
            low, level = self.level(j, low, synthesis=True)
            bands.append(self._scale({k: self.layout(level, k) for k in ("error", "ones")},
                                     evaluations, self.terms))
        return self._scale(low, evaluations, self.terms), bands

    def reconstruction(self, dtype):
        """Bound on |our inverse(forward(x)) - x| (x's own samples): the round trip's
        rounding in ``dtype``, plus the filters' own defect, the exact round trip through
        the signed operators less x (evaluated in float64, whose building and applying
        round twice per pass)."""
        low = self._inverse(self.low, self.coefficients)
        crop = (Ellipsis, *(slice(0, n) for n in self.x.shape[-2:]))
        low = {k: v[crop] for k, v in low.items()}
        return self._scale(low, [(dtype, 1), (np.float64, 2)],
                           max(self.terms, self.adjoint_terms)) + np.abs(low["exact"] - self.x)

    def _inverse_size(self, j):
        """The size level j's inverse writes: its stored input (the even size at level 1)."""
        sizes = self.sizes[j]
        return tuple(n + n % 2 for n in sizes) if j == 0 else sizes

    def gradient(self, gl, gh, evaluations):
        """Bound on the difference of the evaluations of the gradient of x for output
        gradients gl (..., h, w) and gh (each (..., 6, h, w, 2))."""
        low = _value(np.asarray(gl, dtype=np.float64))
        for j in range(self.levels - 1, -1, -1):
            g = np.asarray(gh[j], dtype=np.float64)
            bands = {o: {"re": _value(g[..., o, :, :, 0]), "im": _value(g[..., o, :, :, 1])}
                     for o in range(6)}
            low = self.transpose(self.analysis, j, self.sizes[j], low, bands, embed=False)
        return self._scale(low, evaluations, max(self.terms, self.adjoint_terms))


class ScatterBounds:
    """Elementwise bounds on two evaluations (``evaluations``: (dtype, count) pairs) of a
    DTCWT scattering network (wavegen's scatter2d, plan_scatter's definition) of one x
    (N, C, H, W), in the network's output layout (N, channels, h, w): ``output`` for its
    coefficients, ``gradient`` for the gradient of x. The forward graph is taped (DTCWT
    levels, biased magnitudes, 2x2 pooling) so that the gradient runs it backwards. A
    magnitude |z|_b = sqrt(|z|^2 + b^2) - b errs by at most the error of z plus a few
    roundings of |z| + b; its gradient g z / |z|_b errs by the error of g plus
    |g| min(2 |dz| / |z|_b, 2), the conditioning of the phase. ``combine``: the first order
    takes the magnitude over the channels (combine_colour)."""

    def __init__(self, x, levels: int, order: int, biort, qshift, mode: str, magbias: float,
                 evaluations, pad=None, combine: bool = False):
        self.x = np.asarray(x.detach() if isinstance(x, torch.Tensor) else x,
                            dtype=np.float64)
        self.b, self.order, self.evaluations = float(magbias), order, evaluations
        self.chain = DtcwtLevels(biort, qshift or "qshift_a", levels, mode, pad)
        self.node = DtcwtLevels(biort, qshift or "qshift_a", 1, mode)
        self.terms = max(self.chain.terms, self.node.terms)
        self.tape, self.values = [], {"x": _value(self.x)}
        self.combine = combine
        chain = qshift is not None
        nodes = {} if chain else {(): "x"}
        if chain:
            lows, bands, source = [], [], "x"
            for j in range(levels):
                low, band = self._level(self.chain, j, source, f"chain{j}")
                lows.append(low)
                bands.append(band)
                source = low
        for s_ in range(levels):
            grown = {}
            for path, key in nodes.items():
                low, band = self._level(self.node, 0, key, f"{key}/{s_}")
                grown[path] = self._pool(low)
                if len(path) < order:
                    for o in range(6):
                        grown[path + ((s_ + 1, o),)] = self._magnitude(band[o], not path)
            if chain:
                for o in range(6):
                    grown[((s_ + 1, o),)] = self._magnitude(bands[s_][o], True)
                if s_ + 1 == levels:
                    grown[()] = self._pool(lows[-1])
            nodes = grown
        self.paths = nodes

    def _level(self, levels, j, source, name):
        low, bands = levels.level(j, self.values[source])
        self.values[name + ".low"] = low
        keys = {}
        for o, parts in bands.items():
            keys[o] = {part: f"{name}.{o}.{part}" for part in parts}
            for part, value in parts.items():
                self.values[keys[o][part]] = value
        sizes = self.values[source]["magnitude"].shape[-2:]
        self.tape.append(("level", levels, j, source, name + ".low", keys, sizes))
        return name + ".low", keys

    def _magnitude(self, band, first_order: bool) -> str:
        combine = self.combine and first_order
        total = (lambda a: a.sum(-3, keepdims=True)) if combine else (lambda a: a)  # noqa: E731
        re, im = self.values[band["re"]], self.values[band["im"]]
        m = np.sqrt(total(re["magnitude"] ** 2 + im["magnitude"] ** 2))
        exact = np.sqrt(total(re["exact"] ** 2 + im["exact"] ** 2) + self.b ** 2) - self.b
        key = band["re"] + "|z|"
        self.values[key] = dict(magnitude=m, exact=exact,
                                error=total(re["error"] + im["error"]) + m + self.b,
                                ones=total(re["ones"] + im["ones"]) + 1)
        self.tape.append(("magnitude", band, key, combine))
        return key

    def _pool(self, low) -> str:
        value = self.values[low]
        quads = [{k: _quads(value[k])[i] for k in _FIELDS} for i in range(4)]
        pooled = {k: sum(q[k] for q in quads) / 4 for k in _FIELDS}
        pooled["error"] = pooled["error"] + pooled["magnitude"]
        pooled["ones"] = pooled["ones"] + 1
        key = low + "/pooled"
        self.values[key] = pooled
        self.tape.append(("pool", low, key))
        return key

    @property
    def gain(self) -> float:
        """The largest row sum of any taped level's absolute operator (both axes, q2c)."""
        largest = 1.0
        for entry in self.tape:
            if entry[0] == "level":
                _, levels, j, _, _, _, sizes = entry
                for f, g, orientations in _PRODUCTS:
                    oh, ow = levels._ops(levels.analysis, j, f, g, sizes)
                    rows = oh[1].sum(1).max() * ow[1].sum(1).max()
                    largest = max(largest, rows * (math.sqrt(2) if orientations else 1))
        return float(largest)

    def _layout(self, arrays):
        """Per-path (N, C or 1, h, w) arrays in the output's channels: path k's channel c
        at k C + c, or, combined, the lowpass' C channels and then one per path."""
        if self.combine:
            return np.concatenate(arrays, 1)
        stacked = np.stack(arrays, 1)
        return stacked.reshape(stacked.shape[0], -1, *stacked.shape[-2:])

    def output(self, paths) -> np.ndarray:
        """The bound on the coefficients, ``paths`` in plan_scatter's order."""
        return self._layout([scale_bound(self.values[self.paths[p]], self.evaluations,
                                         self.terms) for p in paths])

    def gradient(self, grad, paths) -> np.ndarray:
        """The bound on the gradient of x for the output gradient ``grad`` (the output's
        layout). Errors travel in rounding units of the evaluations' first-order sum r; the
        phase's absolute error joins them divided by r."""
        grad = np.asarray(grad.detach() if isinstance(grad, torch.Tensor) else grad,
                          dtype=np.float64)
        channels = self.x.shape[1]
        grads, first = {}, 0

        def add(key, value):
            grads[key] = value if key not in grads else \
                {k: grads[key][k] + value[k] for k in _FIELDS}

        for p in paths:
            width = channels if (not self.combine or not p) else 1
            if self.combine:
                part = grad[:, first:first + width]
                first += width
            else:
                k = list(paths).index(p)
                part = grad.reshape(grad.shape[0], len(paths), channels,
                                    *grad.shape[-2:])[:, k]
            add(self.paths[p], _value(part))
        zero = lambda like: dict(magnitude=np.zeros_like(like), exact=np.zeros_like(like),  # noqa: E731
                                 error=np.zeros_like(like), ones=np.zeros_like(like))
        r = sum(count * gamma(self.terms, d) for d, count in self.evaluations)
        for entry in reversed(self.tape):
            if entry[0] == "pool":
                _, low, key = entry
                g = grads.pop(key)
                # Each quad receives g / 4, exactly (a power of two).
                add(low, {k: _unquads(*(g[k] / 4,) * 4) for k in _FIELDS})
            elif entry[0] == "magnitude":
                _, band, key, combine = entry
                g = grads.pop(key)
                total = (lambda a: a.sum(-3, keepdims=True)) if combine else (lambda a: a)  # noqa: E731
                re, im = self.values[band["re"]], self.values[band["im"]]
                norm = np.sqrt(total(re["exact"] ** 2 + im["exact"] ** 2) + self.b ** 2)
                dz = r * total(re["error"] + im["error"])       # absolute
                safe = np.where(norm > 0, norm, 1)
                phase = np.where(norm > 0, np.minimum(2 * dz / safe, 2), np.where(dz > 0, 2, 0))
                for part, value in (("re", re), ("im", im)):
                    shape = value["magnitude"].shape
                    add(band[part], dict(
                        magnitude=np.broadcast_to(g["magnitude"], shape),
                        exact=g["exact"] * np.where(norm > 0, value["exact"] / safe, 0),
                        error=np.broadcast_to(g["error"] + g["magnitude"] * (phase / r + 1),
                                              shape),
                        ones=np.broadcast_to(g["ones"] + 1, shape)))
            else:
                _, levels, j, source, low_key, keys, sizes = entry
                low = grads.pop(low_key, None) or zero(self.values[low_key]["magnitude"])
                bands = {o: {part: grads.pop(k, None) or zero(self.values[k]["magnitude"])
                             for part, k in parts.items()} for o, parts in keys.items()}
                add(source, levels.transpose(levels.analysis, j, sizes, low, bands, False))
        terms = max(self.terms, self.chain.adjoint_terms, self.node.adjoint_terms)
        return scale_bound(grads["x"], self.evaluations, terms)


def inner_product_bound(dtype, ax, y, ax_bound, x, aty, aty_bound) -> float:
    """Bound on |<A x, y> - <x, A^T y>| for computed A x and A^T y (lists of arrays, each
    with its elementwise error bound): <bound(Ax), |y|> + <|x|, bound(A^T y)>, plus the
    rounding of both inner products (gamma_n of the sums of their |terms|)."""
    def flat(arrays):
        return np.concatenate([np.asarray(a.detach() if isinstance(a, torch.Tensor) else a,
                                          dtype=np.float64).ravel() for a in arrays])
    ax, y, ax_bound, x, aty, aty_bound = map(flat, (ax, y, ax_bound, x, aty, aty_bound))
    n = max(ax.size, x.size)
    return float(ax_bound @ np.abs(y) + np.abs(x) @ aty_bound +
                 gamma(n, dtype) * (np.abs(ax) @ np.abs(y) + np.abs(x) @ np.abs(aty)))


def scatter_derivatives(gain: float, b: float, order: int, parts: int = 2) -> list[float]:
    """Bounds on the first four derivatives of any scattering coefficient along a unit
    coordinate direction, for magnitude bias b > 0 and levels whose absolute operators
    have row sums at most ``gain``: a band value is affine in x (slope <= gain per level);
    |z|_b = sqrt(|z|^2 + b^2) has derivatives (as multilinear forms on (re, im)) of norm
    at most 1, 1/b, 3/b^2, 15/b^3 (for any |z|, since |z|_b >= b); a second-order
    coefficient is |L m(x)|_b, whose derivatives follow from Faa di Bruno's formula, and the
    2-norm of the ``parts`` real values a magnitude combines (2: re and im; 6 for three
    colour channels) is at most sqrt(parts) times their largest."""
    r2 = math.sqrt(parts)
    norms = [1.0, 1 / b, 3 / b ** 2, 15 / b ** 3]

    def magnitude(v):
        """Derivative bounds of |v(t)|_b from those of the pair v (per part)."""
        v1, v2, v3, v4 = (r2 * d for d in v)
        d1, d2, d3, d4 = norms
        return [d1 * v1,
                d2 * v1 ** 2 + d1 * v2,
                d3 * v1 ** 3 + 3 * d2 * v1 * v2 + d1 * v3,
                d4 * v1 ** 4 + 6 * d3 * v1 ** 2 * v2 + 4 * d2 * v1 * v3 + 3 * d2 * v2 ** 2
                + d1 * v4]

    first = magnitude([gain ** 2, 0.0, 0.0, 0.0])        # through up to two levels
    if order == 1:
        return first
    return [max(a, c) for a, c in zip(first, magnitude([gain * d for d in first]))]


def central_difference(value_error: float, third: float) -> tuple[float, float]:
    """(eps, atol) for central differences of a function evaluated with an error of at
    most ``value_error`` and a third derivative of at most ``third``: the difference errs
    by value_error / eps + eps^2 third / 6, least at eps = (3 value_error / third)^(1/3)."""
    eps = (3 * value_error / third) ** (1 / 3)
    return eps, value_error / eps + eps ** 2 * third / 6
