"""The 2-D DTCWT against the dtcwt package (values, inverse), pytorch_wavelets (layouts and
options), a zero-mode reference built from dtcwt's own building blocks, and identities
(perfect reconstruction, dot-product adjoints, gradcheck)."""
import logging

import dtcwt
import numpy as np
import pytest
import pytorch_wavelets as ptw
import torch
from dtcwt.numpy.lowlevel import coldfilt, colfilter

import wavegen
from wavegen.kingsbury import BIORT, QSHIFT, filter_set
from bounds import DtcwtBounds, assert_within

# Ours and a reference (dtcwt, pytorch_wavelets, or another of our targets), in float64.
TWO_F64 = [(torch.float64, 2)]


def max_diff(a, b) -> float:
    a = a.detach().numpy() if isinstance(a, torch.Tensor) else np.asarray(a)
    b = b.detach().numpy() if isinstance(b, torch.Tensor) else np.asarray(b)
    assert a.shape == b.shape, (a.shape, b.shape)
    return float(np.abs(a - b).max(initial=0.0))


def ours_layout(highpasses) -> np.ndarray:
    """dtcwt's complex (P, h, w, 6) bands -> (P, 6, h, w, 2)."""
    b = np.moveaxis(np.asarray(highpasses), -1, 1)
    return np.stack([b.real, b.imag], -1)

logging.getLogger().setLevel(logging.ERROR)       # dtcwt logs a warning for odd sizes

# Every biort and every qshift set appears, the _bp sets together. The other DTCWT tests
# reuse these pairs, so that the suite compiles few libraries.
PAIRS = [("antonini", "qshift_06"), ("legall", "qshift_a"), ("near_sym_a", "qshift_b"),
         ("near_sym_b", "qshift_c"), ("near_sym_a", "qshift_d"),
         ("near_sym_b_bp", "qshift_b_bp")]
# The configuration the emulated CUDA test and the layout dot test share: every option.
EVERYTHING = dict(biort="near_sym_b_bp", qshift="qshift_b_bp", levels=3, mode="zero", o_dim=1,
                  ri_dim=2, skip_hps=[False, True, False])
SIZES = [((37, 50), 4), ((30, 46), 3), ((64, 64), 3), ((6, 10), 3)]


def spec(biort, qshift, J, **kw):
    return wavegen.Spec("dtcwt2d", biort=biort, qshift=qshift, levels=J, **kw)


def complex_bands(band):
    """(N, C, 6, h, w, 2) -> complex (N, C, h, w, 6), dtcwt's layout."""
    b = band.detach().numpy()
    return np.moveaxis(b[..., 0] + 1j * b[..., 1], 2, -1)


def dtcwt_reference(biort, qshift, x, J):
    t = dtcwt.Transform2d(biort=biort, qshift=qshift)
    return t, [t.forward(plane, nlevels=J) for plane in x.reshape(-1, *x.shape[2:])]


@pytest.mark.parametrize("biort,qshift", PAIRS)
def test_matches_dtcwt_float64(biort, qshift):
    for size, J in SIZES:
        x = torch.randn(2, 2, *size, dtype=torch.float64)
        t = wavegen.build(spec(biort, qshift, J))
        yl, yh = t(x)
        ref_t, refs = dtcwt_reference(biort, qshift, x.numpy(), J)
        bounds = DtcwtBounds(x.numpy().reshape(-1, *size), biort, qshift, J)
        low, bands = bounds.forward(TWO_F64)
        assert_within(yl.reshape(-1, *yl.shape[2:]), np.stack([r.lowpass for r in refs]),
                      low, f"{size} yl")
        for j in range(J):
            got = yh[j].reshape(-1, *yh[j].shape[2:])
            assert_within(got, ours_layout([r.highpasses[j] for r in refs]), bands[j],
                          f"{size} yh[{j}]")
        # The inverse equals dtcwt's (its output keeps the even size), and reconstructs
        # except for the _bp sets, whose filters are not a perfect-reconstruction pair.
        xr = t.inverse()(yl, yh).reshape(-1, *(2 * s for s in yh[0].shape[3:5]))
        assert_within(xr, np.stack([ref_t.inverse(r) for r in refs]),
                      bounds.inverse(TWO_F64), f"{size} inverse")
        if not (biort.endswith("_bp") or qshift.endswith("_bp")):
            assert_within(xr[:, :size[0], :size[1]], x.numpy().reshape(-1, *size),
                          bounds.reconstruction(torch.float64), f"{size} round trip")


@pytest.mark.parametrize("biort,qshift", [("legall", "qshift_a"), ("near_sym_a", "qshift_b")])
def test_float32_within_its_bound(biort, qshift):
    """float32 against float64, forward, and the float32 round trip against x: within
    the float32 bound (the float64 evaluation errs far less)."""
    x = torch.randn(2, 3, 45, 38)
    t = wavegen.build(spec(biort, qshift, 3))
    yl, yh = t(x)
    yl64, yh64 = t(x.double())
    assert yl.dtype == torch.float32
    bounds = DtcwtBounds(x.double().numpy(), biort, qshift, 3)
    both = [(torch.float32, 1), (torch.float64, 1)]
    low, bands = bounds.forward(both)
    assert_within(yl, yl64.numpy(), low, "yl")
    for j, (a, b) in enumerate(zip(yh, yh64)):
        assert_within(a, b.numpy(), bands[j], f"yh[{j}]")
    assert_within(t.inverse()(yl, yh), t.inverse()(yl64, yh64).numpy(),
                  bounds.inverse(both), "inverse")


def test_custom_filter_tuples_equal_the_named_sets():
    """dtcwt's tuple order for both sets, and pytorch_wavelets' analysis-only tuples."""
    b, q = filter_set("near_sym_b", "biort"), filter_set("qshift_c", "qshift")
    biort = tuple(b[k] for k in ("h0o", "g0o", "h1o", "g1o"))
    qshift = tuple(q[k] for k in ("h0a", "h0b", "g0a", "g0b", "h1a", "h1b", "g1a", "g1b"))
    x = torch.randn(1, 2, 40, 36, dtype=torch.float64)
    named = wavegen.build(spec("near_sym_b", "qshift_c", 3))(x)
    custom_t = wavegen.build(spec(biort, qshift, 3))
    custom = custom_t(x)
    short = wavegen.build(spec(tuple(b[k] for k in ("h0o", "h1o")),
                               tuple(q[k] for k in ("h0a", "h0b", "h1a", "h1b")), 3))(x)
    for got in (custom, short):
        assert torch.equal(got[0], named[0])
        assert all(torch.equal(u, v) for u, v in zip(got[1], named[1]))
    assert torch.equal(custom_t.inverse()(*custom),
                       wavegen.build(spec("near_sym_b", "qshift_c", 3)).inverse()(*named))


def test_pytorch_wavelets_layouts_and_options(float64_reference):
    """o_dim/ri_dim layouts, include_scale and skip_hps (bool and per level), as
    pytorch_wavelets returns them (its float64 path; contract 4.4)."""
    x = torch.randn(2, 3, 37, 50, dtype=torch.float64)
    cases = [dict(), dict(o_dim=1, ri_dim=2), dict(o_dim=2, ri_dim=3), dict(o_dim=3, ri_dim=1),
             dict(skip_hps=True), dict(skip_hps=[False, True, False]),
             dict(include_scale=True), dict(include_scale=[False, True, False])]
    for kw in cases:
        ref_m = ptw.DTCWTForward(biort="near_sym_a", qshift="qshift_b", J=3, **kw)
        ours_m = wavegen.nn.DTCWTForward(biort="near_sym_a", qshift="qshift_b", J=3, **kw)
        (rl, rh), (ol, oh) = ref_m(x), ours_m(x)
        pairs = list(zip(rl, ol)) if isinstance(rl, list) else [(rl, ol)]
        pairs += list(zip(rh, oh))
        assert len(pairs) == (2 * 3 if isinstance(rl, list) else 4), kw
        # Layouts move the bands' dimensions: the largest bound of any output serves.
        bounds = DtcwtBounds(x.numpy(), "near_sym_a", "qshift_b", 3)
        for r, o in pairs:
            assert r.shape == o.shape, (kw, r.shape, o.shape)
            assert o.is_contiguous()
            assert max_diff(o, r) <= bounds.largest(TWO_F64), kw
        layout = {k: v for k, v in kw.items() if k in ("o_dim", "ri_dim")}
        if not isinstance(rl, list) and "skip_hps" not in kw:
            inv_ref = ptw.DTCWTInverse(biort="near_sym_a", qshift="qshift_b", **layout)
            inv = wavegen.nn.DTCWTInverse(biort="near_sym_a", qshift="qshift_b", **layout)
            assert_within(inv((ol, oh)), inv_ref((rl, rh)).numpy(), bounds.inverse(TWO_F64),
                          kw)


def test_skipped_bands_are_zeros_in_the_inverse():
    fwd = wavegen.nn.DTCWTForward("legall", "qshift_a", J=3, skip_hps=[True, False, True])
    full = wavegen.nn.DTCWTForward("legall", "qshift_a", J=3)
    inv = wavegen.nn.DTCWTInverse("legall", "qshift_a")
    # A skipped band's size is inferred (DtcwtPlan.fill_bands); at sizes a multiple of
    # 2^J no padding happened and the inference is exact.
    x = torch.randn(1, 2, 32, 48, dtype=torch.float64)
    yl, yh = fwd(x)
    assert yh[0].shape == () and yh[2].shape == ()
    _, yh_full = full(x)
    zeros = [torch.zeros_like(yh_full[0]), yh[1], torch.zeros_like(yh_full[2])]
    expected = inv((yl, zeros))
    # Skipping a band drops terms that are zero: the same sums, to their rounding.
    bounds = DtcwtBounds(x.numpy(), "legall", "qshift_a", 3)
    tol = bounds.synthesis_of(yl.numpy(), [None, yh[1].numpy(), None], TWO_F64)
    assert_within(inv((yl, yh)), expected.numpy(), tol, "skipped")
    assert_within(inv((yl, [None, yh[1], torch.tensor([])])), expected.numpy(), tol, "None")
    # No lowpass and no coarsest band: both sized from the band that is given.
    only_band = inv((torch.zeros_like(yl), zeros[:1] + [yh[1], zeros[2]]))
    tol = bounds.synthesis_of(np.zeros(yl.shape), [None, yh[1].numpy(), None], TWO_F64)
    assert_within(inv((None, [None, yh[1], None])), only_band.numpy(), tol, "no lowpass")


def test_zero_mode_level1_matches_pytorch_wavelets(float64_reference):
    """pytorch_wavelets zero-pads level 1 only; with J=1 the two agree."""
    x = torch.randn(2, 2, 33, 28, dtype=torch.float64)
    ref = ptw.DTCWTForward(biort="near_sym_a", qshift="qshift_b", J=1, mode="zero")
    ours = wavegen.nn.DTCWTForward(biort="near_sym_a", qshift="qshift_b", J=1, mode="zero")
    (rl, rh), (ol, oh) = ref(x), ours(x)
    bounds = DtcwtBounds(x.numpy(), "near_sym_a", "qshift_b", 1, mode="zero")
    low, bands = bounds.forward(TWO_F64)
    assert_within(ol, rl.numpy(), low, "yl")
    assert_within(oh[0], rh[0].numpy(), bands[0], "yh[0]")
    inv_ref = ptw.DTCWTInverse(biort="near_sym_a", qshift="qshift_b", mode="zero")
    inv = wavegen.nn.DTCWTInverse(biort="near_sym_a", qshift="qshift_b", mode="zero")
    assert_within(inv((ol, oh)), inv_ref((rl, rh)).numpy(), bounds.inverse(TWO_F64),
                  "inverse")


def zero_mode_reference(biort, qshift, x, J):
    """dtcwt's forward algorithm with zero extension at every level, from dtcwt's own
    colfilter/coldfilt applied to zero-padded arrays (a zero block reflects to zeros)."""
    b, q = filter_set(biort, "biort"), filter_set(qshift, "qshift")
    f = {k: np.array(v)[:, None] for k, v in (*b.taps, *q.taps)}
    pad = 40                                    # a multiple of 4, longer than any filter

    def axis0(X, op, *h):
        Z = np.zeros((X.shape[0] + 2 * pad, X.shape[1]))
        Z[pad:-pad] = X
        div = 1 if op is colfilter else 2
        return op(Z, *h)[pad // div: (pad + X.shape[0]) // div].T

    def q2c(y):
        p = (y[0::2, 0::2] + 1j * y[0::2, 1::2]) / np.sqrt(2)
        r = (y[1::2, 1::2] - 1j * y[1::2, 0::2]) / np.sqrt(2)
        return np.dstack((p - r, p + r))

    X = np.pad(x, ((0, x.shape[0] % 2), (0, x.shape[1] % 2)), mode="edge")
    bands = []
    for level in range(J):
        if level == 0:
            lo, hi = (lambda X: axis0(X, colfilter, f["h0o"])), \
                (lambda X: axis0(X, colfilter, f["h1o"]))
        else:
            X = np.pad(X, [(1, 1) if s % 4 else (0, 0) for s in X.shape], mode="edge")
            lo, hi = (lambda X: axis0(X, coldfilt, f["h0b"], f["h0a"])), \
                (lambda X: axis0(X, coldfilt, f["h1b"], f["h1a"]))
        Lo, Hi = lo(X), hi(X)
        horizontal = q2c(lo(Hi))
        Y = np.zeros((*horizontal.shape[:2], 6), complex)
        Y[:, :, [0, 5]] = horizontal
        Y[:, :, [2, 3]] = q2c(hi(Lo))
        Y[:, :, [1, 4]] = q2c(hi(Hi))
        X = lo(Lo)
        bands.append(Y)
    return X, bands


@pytest.mark.parametrize("biort,qshift", [("legall", "qshift_a"), ("near_sym_a", "qshift_d")])
def test_zero_mode_applies_at_every_level(biort, qshift):
    x = torch.randn(1, 2, 35, 42, dtype=torch.float64)
    yl, yh = wavegen.build(spec(biort, qshift, 3, mode="zero"))(x)
    low, bands = DtcwtBounds(x.numpy(), biort, qshift, 3, mode="zero").forward(TWO_F64)
    for c in range(2):
        ref_l, ref_h = zero_mode_reference(biort, qshift, x[0, c].numpy(), 3)
        assert_within(yl[0, c], ref_l, low[0, c], "yl")
        for j in range(3):
            assert_within(yh[j][0, c], ours_layout(ref_h[j][None])[0], bands[j][0, c],
                          f"yh[{j}]")


def test_emulated_cuda_matches_dtcwt_and_the_cpu_adjoints():
    """The CUDA level kernels run by the emulation: one tile per plane, and (70x40) several
    tiles with both ends folding."""
    for size in [(21, 14), (19, 24), (70, 40)]:
        s = wavegen.Spec("dtcwt2d", **EVERYTHING)
        emulated, cpu = wavegen.build(s, target="cuda_emulated"), wavegen.build(s)
        x = torch.randn(2, 1, *size, dtype=torch.float64)
        (el, eh), (cl, ch) = emulated(x), cpu(x)
        # EVERYTHING's layout moves the bands' dimensions: the bands' largest bound serves
        # them, and gradients are compared in the default layout.
        bounds = DtcwtBounds(x.numpy(), EVERYTHING["biort"], EVERYTHING["qshift"], 3,
                             mode="zero")
        assert_within(el, cl.numpy(), bounds.forward(TWO_F64)[0], "yl")
        assert all(max_diff(e, c) <= bounds.largest(TWO_F64) for e, c in zip(eh, ch)
                   if c.dim())
        gl, gh = torch.randn_like(cl), [torch.randn_like(c) if c.dim() else c for c in ch]
        default = [c.movedim((1, 2), (2, 5)) if c.dim() else None for c in gh]
        dense = [np.zeros(bounds.layout(bounds.coefficients[j], "magnitude").shape)
                 if d is None else d.numpy() for j, d in enumerate(default)]
        assert_within(emulated.adjoint()(gl, gh, signal_size=size),
                      cpu.adjoint()(gl, gh, signal_size=size).numpy(),
                      bounds.gradient(gl.numpy(), dense, TWO_F64), "adjoint")
        assert_within(emulated.inverse()(gl, gh), cpu.inverse()(gl, gh).numpy(),
                      bounds.synthesis_of(gl.numpy(), [None if d is None else d.numpy()
                                                       for d in default], TWO_F64),
                      "inverse")
        r = torch.randn_like(cpu.inverse()(gl, gh))
        ea, ca = emulated.inverse().adjoint()(r), cpu.inverse().adjoint()(r)
        low, bands = bounds.synthesis_adjoint(r.numpy(), TWO_F64)
        assert_within(ea[0], ca[0].numpy(), low, "adjoint of the inverse, yl")
        assert all(max_diff(e, c) <= b.max() for e, c, b in zip(ea[1], ca[1], bands)
                   if c.dim())


def test_every_filter_name_loads():
    for name in BIORT:
        assert filter_set(name, "biort").has("h0o", "h1o", "g0o", "g1o")
    for name in QSHIFT:
        assert filter_set(name, "qshift").has("h0a", "h0b", "g0a", "g0b", "h1a", "h1b")
