"""The spec and the plan are pure data: checked without compiling anything."""
import pywt
import pytest

import wavegen
from wavegen.plan import EXT_TERMS, max_level, output_length, plan, synthesis_length
from wavegen.program import bank_padded
from wavegen.spec import MODES


def test_spec_is_a_hashable_value_with_json_identity():
    a = wavegen.Spec("dwt2d", "db2", 2, "per")
    b = wavegen.Spec("dwt2d", pywt.Wavelet("db2"), 2, "periodization")
    assert a == b and hash(a) == hash(b) and a.mode == "periodization"
    assert wavegen.Spec.from_json(a.to_json()) == a
    assert a.adjoint().adjoint() == a and a.inverse().inverse() == a
    assert a.adjoint() != a and a.inverse().kind == "idwt2d"


@pytest.mark.parametrize("mode", MODES)
def test_output_lengths_equal_pywt(mode):
    for L in (2, 4, 6, 20):
        for n in range(1, 42):
            assert output_length(n, L, mode) == pywt.dwt_coeff_len(n, L, mode)
            k = output_length(n, L, mode)
            assert synthesis_length(k, L, mode) in (n, n + 1)


def test_max_level_equals_pywt():
    for n in range(1, 300):
        for L in range(2, 40):
            assert max_level(n, L) == pywt.dwt_max_level(n, L)


def test_adjoint_plan_is_the_transposed_schedule():
    """2-D levels run one fused launch each, and so do their adjoints (the transposed
    kernel, inputs and outputs swapped, in reverse order)."""
    p = plan(wavegen.Spec("dwt2d", "db3", 2, "symmetric"))
    q = plan(wavegen.Spec("dwt2d", "db3", 2, "symmetric").adjoint())
    geom = p.geometry_from_signal((19, 24))
    forward, adjoint = p.schedule(geom), q.schedule(geom)
    assert adjoint.inputs == forward.outputs and adjoint.outputs == forward.inputs
    assert [type(s).__name__ for s in forward.steps + adjoint.steps] == ["LevelStep"] * 4
    for f, a in zip(forward.steps, reversed(adjoint.steps)):
        assert a.kernel == f.kernel.transposed()
        assert (a.inputs, a.outputs) == (f.outputs, f.inputs)
    assert list(p.kernels) == ["wg_analysis_hw"] and list(q.kernels) == ["wg_adjoint_hw"]
    assert q.kernels["wg_adjoint_hw"].direction == "adjoint"


def test_a_level_whose_adjoint_does_not_fuse_transposes_into_its_passes():
    """db38's adjoint tile (its edge rows) does not fit SHARED_BYTES: the forward runs fused
    levels, the adjoint each level's three passes, the transposes of the level's height
    pass and two width passes, in reverse order, through the l/h temporaries."""
    p = plan(wavegen.Spec("dwt2d", "db38", 2, "symmetric"))
    q = plan(wavegen.Spec("dwt2d", "db38", 2, "symmetric").adjoint())
    geom = p.geometry_from_signal((80, 90))
    forward, adjoint = p.schedule(geom), q.schedule(geom)
    assert [type(s).__name__ for s in forward.steps] == ["LevelStep"] * 2
    passes = [s for step in forward.steps for s in step.passes()[0]]
    assert [(s.kernel.axis, s.inputs[0].buffer) for s in passes] == \
        [("h", "x"), ("w", "l1"), ("w", "h1"), ("h", "a1"), ("w", "l2"), ("w", "h2")]
    assert len(adjoint.steps) == 6
    for f, a in zip(passes, reversed(adjoint.steps)):
        assert a.kernel == f.kernel.transposed()
        assert (a.inputs, a.outputs) == (f.outputs, f.inputs)
    assert {"l1", "h1", "l2", "h2"} <= set(adjoint.buffers) and "l1" not in forward.buffers
    assert sorted(q.kernels) == ["wg_adjoint_h", "wg_adjoint_w"]


@pytest.mark.parametrize("mode", [m for m in MODES if EXT_TERMS[m] == 1])
@pytest.mark.parametrize("wavelet", ["haar", "db2", "db4", "sym7", "db10", "coif8"])
@pytest.mark.parametrize("direction", ["dwt2d", "idwt2d"])
def test_adjoint_level_tile_holds_every_row_it_reads(direction, wavelet, mode):
    """The fused adjoint level (cuda.cu.j2) reads coefficient rows from its shared tile
    without a bounds check: a block of output rows [n0, n0 + R) holds rows cb .. cb + R/2 +
    pairs of its taps and, within fold_reach of an end, edge_rows rows next to each end.
    Every row the taps read at an output row, and every row an extended row of the fold's
    halo reads, is among them: enumerated over the sizes (x of 1 to 80 rows)."""
    spec = wavegen.Spec(direction, wavelet, 1, mode)
    p = plan(spec if direction == "idwt2d" else spec.adjoint())
    k = p.level_kernel
    if k is None:
        pytest.skip(f"{wavelet} {mode}: the adjoint level is not fused")
    h, (rows, _) = k.h, k.cuda_tile
    main, (top, bottom) = rows // 2 + k.pairs, k.edge_rows
    taps = [2 * j + parity for j in range(k.pairs) for parity in (0, 1) if 2 * j + parity < h.length]

    def read(e, K):     # coefficient rows g at extended row e reads (the CUDA _g)
        return {(e - h.offset - i) // 2 for i in taps if (e - h.offset - i) % 2 == 0
                and 0 <= (e - h.offset - i) // 2 < K}

    for n_rows in range(1, 81):
        if direction == "idwt2d":
            K = n_rows
            N = p.synthesis_size((K, K))[0]
        else:
            N = n_rows
            if N == 1 and mode == "reflect":
                continue
            K = p.analysis_size((N, N))[0]
        if N < 1:
            continue
        last = h.offset + 2 * K + h.length - 3
        halo = set().union(*(read(e, K) for e in list(range(h.offset, 0)) +
                             list(range(N, last + 1))))
        assert all(c < top or c >= K - bottom for c in halo), (N, K)
        for n0 in range(0, N, rows):
            cb = (n0 - h.offset) // 2 - (k.pairs - 1)
            for n in range(n0, min(n0 + rows, N)):
                assert all(cb <= c < cb + main for c in read(n, K)), (N, n)


@pytest.mark.parametrize("modes", [("smooth", "symmetric"), ("zero", "antireflect")])
def test_levels_with_a_multi_term_extension_run_the_passes(modes):
    """A 2-D level fuses only where both axes' extensions take one term
    (FusedLevelKernel.fuses); otherwise it is the height pass and two width passes."""
    p = plan(wavegen.Spec("dwt2d", "db3", 2, modes))
    steps = p.schedule(p.geometry_from_signal((19, 24))).steps
    assert [(s.kernel.axis, s.inputs[0].buffer) for s in steps] == \
        [("h", "x"), ("w", "l1"), ("w", "h1"), ("h", "a1"), ("w", "l2"), ("w", "h2")]
    assert sorted(p.kernels) == ["wg_analysis_h", "wg_analysis_w"]


def test_cropped_buffers_are_zero_filled_in_the_transposed_synthesis():
    """waverec2 drops a row of an odd reconstruction; its adjoint must leave it zero."""
    p = plan(wavegen.Spec("idwt2d", "db2", 2, "symmetric").adjoint())
    geom = p.geometry_for_inputs([(18, 20)])   # details (10, 11) then (6, 7)
    assert geom.details == ((10, 11), (6, 7))
    # level 2 reconstructs 2*7-2 = 12 columns, of which level 1 takes 11
    assert p.schedule(geom).zero_filled == {"r2"}


def test_taps_are_reversed_for_correlation():
    bank = pywt.Wavelet("db2")
    (k,) = [k for k in plan(wavegen.Spec("dwt1d", "db2", 1, "zero")).kernels.values()]
    assert k.lo == tuple(reversed(bank.dec_lo)) and k.offset == 1 - 3
    (s,) = plan(wavegen.Spec("idwt1d", "db2", 1, "periodization")).kernels.values()
    assert s.direction == "adjoint" and s.lo == tuple(bank.rec_lo) and s.offset == 2 - 3


def test_synthesis_levels_come_from_the_coefficients_when_unset():
    with pytest.raises(ValueError, match="only synthesis specs take levels=None"):
        wavegen.Spec("dwt2d", "db2", None)
    p = plan(wavegen.Spec("idwt1d", "db2", None, "zero"))
    for levels in (1, 3):
        geom = p.geometry_from_coefficients((5,), [(11,), (7,), (5,)][-levels:])
        assert len(p.schedule(geom).steps) == levels
    with pytest.raises(ValueError, match="levels=None cannot size"):
        plan(wavegen.Spec("idwt1d", "db2", None).adjoint()).geometry_for_inputs([(32,)])


@pytest.mark.parametrize("biort,qshift", [("antonini", "qshift_06"),
                                          ("near_sym_b_bp", "qshift_b_bp")])
def test_cuda_adjoint_tile_holds_the_quad_rows_every_segment_reads(biort, qshift):
    """The CUDA adjoint level (dtcwt_cuda.cu.j2) loads, per tile and per segment of extended
    rows (identity run, rows before, rows after the signal), the quad rows those rows read
    into a shared tile of shared_shape[1] rows, without a bounds check: sweep the sizes."""
    from wavegen.plan_dtcwt import DtcwtPlan
    for kind in ("dtcwt2d", "idtcwt2d"):
        p = DtcwtPlan(wavegen.Spec(kind, biort=biort, qshift=qshift, levels=2))
        for k in (k for k in p.library_kernels.values() if k.direction == "adjoint"):
            (e0, span), A, rows = k.window, k.decimation, k.tile_rows
            for Rq in range(1, 40):
                for lead, R in [(0, A * Rq), (0, A * Rq - 1), (1, A * Rq - 2)]:
                    last, reach = A * (Rq - 1) + e0 + span, span + A
                    for n0 in range(0, max(R, 0), rows):
                        n1 = min(n0 + rows, R)
                        for a, e, used in [(n0 + lead, n1 + lead, True),
                                           (e0, lead, n0 < reach), (lead + R, last, n1 > R - reach)]:
                            lowest = a - e0 - (span - 1)
                            rlo = -(-lowest // A) if lowest > 0 else 0
                            if used and a < e:
                                assert min((e - 1 - e0) // A + 1, Rq) - rlo <= k.shared_shape[1]


@pytest.mark.parametrize("planes", [1, 2, 4, 8])
def test_bank_padded_rows_store_a_warps_columns_without_conflict(planes):
    """program.bank_padded: in a shared row of ``planes`` interleaved planes, column j at
    word [j % planes][j // planes], the 32 consecutive columns a warp stores from a
    multiple of ``planes`` inside the row fall on 32 distinct banks of 4-byte words; from
    any other start no bank serves more than two (unpadded rows: up to ``planes``)."""
    def most_per_bank(row, start):
        banks = [((j % planes) * row + j // planes) % 32 for j in range(start, start + 32)]
        return max(banks.count(b) for b in banks)
    for words in range(1, 90):
        padded = bank_padded(words, planes)
        assert words <= padded < words + 64 // planes
        starts = range(planes * words - 31)
        assert all(most_per_bank(padded, s) == 1 for s in starts if s % planes == 0)
        assert all(most_per_bank(padded, s) <= 2 for s in starts)
    assert max(most_per_bank(64, s) for s in range(0, planes * 64 - 31, planes)) == planes
