"""Large launches: the launch arithmetic of every family for 10^5 planes and for a kernel
of 2^31 + 1 outputs, from programs built for those layouts (no tensor is allocated), and
the 64-bit thread index the kernels compute it with."""
import ctypes
import math
import random

import pytest

import wavegen
from wavegen import nn, render
from wavegen.backends import host
from wavegen.plan import from_json
from wavegen.program import BLOCK, MAX_BLOCKS, MAX_THREADS, Launch

INT64 = 2**63 - 1


def _launches(spec, shape):
    """The launches of a call whose signal has ``shape`` (N, C, ...), from contiguous
    layouts of its inputs (the signal, or an adjoint's coefficients)."""
    plan = from_json(spec.json)
    geom = plan.geometry_from_signal(shape[2:])
    inputs, _ = plan.io_shapes(geom, tuple(shape[:2]))
    layouts = [(tuple(s), tuple(math.prod(s[i + 1:]) for i in range(len(s)))) for s in inputs]
    return [s for s in plan.program(geom, layouts).steps if isinstance(s, Launch)]


def _check(launch: Launch) -> None:
    assert 0 < launch.blocks <= MAX_BLOCKS and 0 < launch.threads <= MAX_THREADS
    assert all(abs(v) <= INT64 for v in launch.values().values() if isinstance(v, int))


@pytest.mark.parametrize("spec", [
    wavegen.Spec("dwt2d", "db4", 3, "symmetric"),
    wavegen.Spec("dwt2d", "db4", 3, "symmetric").adjoint(),
    wavegen.Spec("dtcwt2d", levels=3, biort="near_sym_b", qshift="qshift_b"),
    wavegen.Spec("dtcwt2d", levels=3, biort="near_sym_b", qshift="qshift_b").adjoint(),
    nn.ScatLayerj2(magbias=1e-2).spec], ids=lambda s: s.readable_name())
def test_1e5_planes_launch_on_grid_x(spec):
    """10^5 planes (1000 x 100) of 64 x 64: past grid y/z's 65,535, which no launch uses;
    a flat launch has just enough blocks for its outputs, a tiled one the same tiles for
    every plane."""
    launches = _launches(spec, (1000, 100, 64, 64))
    assert launches
    for launch in launches:
        _check(launch)
        args = launch.values()
        assert args["P"] % 10**5 == 0      # planes (times bands, past a scattering level)
        if "M" in args:
            along = args["K"] if launch.kernel.direction == "analysis" else args["N"]
            outputs = args["P"] * args["M"] * along
            if launch.kernel.cuda_tile is None:
                assert (launch.blocks - 1) * launch.threads < outputs <= \
                    launch.blocks * launch.threads
            else:
                rows, cols = launch.kernel.cuda_tile
                assert launch.blocks == args["P"] * -(-along // rows) * -(-args["M"] // cols)
        elif "KH" in args:             # a fused 2-D level: tiles of its outputs
            rows, cols = launch.kernel.cuda_tile
            out_rows, out_cols = (args["KH"], args["KW"]) if \
                launch.kernel.direction == "analysis" else (args["NH"], args["NW"])
            assert launch.blocks == args["P"] * -(-out_rows // rows) * -(-out_cols // cols)
        else:
            assert launch.blocks % args["P"] == 0


def test_more_than_2_to_the_31_outputs_in_one_launch():
    """A 1-D haar level of 2^32 + 2 samples: 2^31 + 1 coefficients per band, one thread
    each, in a flat grid of 256-thread blocks that covers them."""
    (launch,) = _launches(wavegen.Spec("dwt1d", "haar", 1, "periodization"), (1, 1, 2**32 + 2))
    _check(launch)
    args = launch.values()
    outputs = args["P"] * args["M"] * args["K"]
    assert outputs == 2**31 + 1
    assert launch.threads == BLOCK and launch.blocks == -(-outputs // BLOCK)


@pytest.mark.parametrize("spec, index", [
    (wavegen.Spec("dwt1d", "haar", 1, "periodization"),
     "const wg_int tid = (wg_int)blockIdx.x * blockDim.x + threadIdx.x;"),
    (wavegen.Spec("dtcwt2d", levels=2, biort="near_sym_b", qshift="qshift_b"),
     "wg_divmod(blockIdx.x, tiles_c, row_tile)")], ids=["flat", "tiled"])
def test_kernels_index_in_64_bits(spec, index):
    """The grid position is widened before any product (wg_int is long long): a flat index
    past 2^31, or a tiled block's plane, does not wrap (a DTCWT level splits it by wg_divmod,
    test_divmod_on_both_sides_of_32_bits)."""
    source = render.render(from_json(spec.json), "cuda")
    assert "typedef long long wg_int;" in source
    assert source.count(index) == len(from_json(spec.json).library_kernels)


def test_a_launch_past_the_grid_limit_is_refused():
    with pytest.raises(ValueError, match="exceeds CUDA's limits"):
        _launches(wavegen.Spec("dwt1d", "haar", 1, "periodization"),
                  (1, 1, 2 * BLOCK * (MAX_BLOCKS + 1)))


def test_divmod_on_both_sides_of_32_bits(tmp_path):
    """wg_divmod (index.h.j2), which the DTCWT levels split their grid position with, in 64
    bits: compiled on the host and compared with Python's // and % at and around 2^31 and
    2^32, and on random 63-bit values."""
    source = tmp_path / "divmod.cpp"
    source.write_text("#define WG_FN static inline\n" +
                      render._environment().get_template("index.h.j2").render(storage="float", acc="float") +
                      'extern "C" long long divmod(long long a, long long b, long long* q) '
                      "{ return wg_divmod(a, b, *q); }\n")
    library = tmp_path / "divmod.so"
    host.compile_library("cpu", "plain", source, library)
    divmod = ctypes.CDLL(str(library)).divmod
    divmod.argtypes = [ctypes.c_longlong, ctypes.c_longlong, ctypes.POINTER(ctypes.c_longlong)]
    divmod.restype = ctypes.c_longlong
    seed = random.randrange(2**32)
    print("seed", seed)
    rng = random.Random(seed)
    edges = [1, 2, 3, 2**31 - 1, 2**31, 2**31 + 1, 2**32 - 1, 2**32, 2**32 + 1, 2**33 + 7]
    pairs = [(a, b) for a in [0] + edges for b in edges]
    pairs += [(rng.randrange(2**63), rng.randrange(1, 2**rng.randrange(1, 63)))
              for _ in range(1000)]
    for a, b in pairs:
        q = ctypes.c_longlong()
        assert (divmod(a, b, ctypes.byref(q)), q.value) == (a % b, a // b), (a, b)
