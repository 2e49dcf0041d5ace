"""Kernel resources (wavegen.resources): ptxas's report parsed, the occupancy arithmetic
against hand-worked cases from the architectures' limits, and the rule that a kernel
spilling or below program.MIN_OCCUPANCY needs its plan's reason. Every kernel the suite
builds is checked on sm_90 as it is compiled (conftest); here a DWT pass and the DTCWT
levels on sm_80 and sm_90, and with -m slow every gallery kernel in every dtype."""
import types

import pytest

import wavegen
from wavegen import nn, render, resources
from wavegen.gallery import CANONICAL
from wavegen.plan import from_json
from wavegen.resources import Resources, occupancy

LOG = """ptxas info    : 0 bytes gmem
ptxas info    : Compiling entry function 'k' for 'sm_90'
ptxas info    : Function properties for k
ptxas         .     16 bytes stack frame, 8 bytes spill stores, 4 bytes spill loads
ptxas info    : Used 10 registers, used 1 barriers, 256 bytes smem
ptxas info    : Compile time = 5.356 ms
"""


def test_parse_reads_the_ptxas_report():
    assert resources.parse(LOG) == {"k": Resources(10, 8, 4, 16, 256)}
    # With a stack, ptxas names its cumulative size between the barriers and smem
    # (NVRTC 12.9, a kernel with a local array).
    stacked = LOG.replace("used 1 barriers, 256 bytes smem",
                          "used 1 barriers, 32 bytes cumulative stack size, 4480 bytes smem")
    assert resources.parse(stacked) == {"k": Resources(10, 8, 4, 16, 4480)}


@pytest.mark.parametrize("arch, registers, threads, shared, expected", [
    # 32 registers: 1024 per warp, 64 warps' worth; 8 warps per block: 8 blocks, all warps.
    ("sm_90", 32, 256, 0, (8, 64, 1.0, "warps")),
    # 104 registers: 3328 per warp, 19 warps' worth, 16 in units of 4: 2 blocks of 8 warps.
    ("sm_90", 104, 256, 0, (2, 16, 0.25, "registers")),
    # 48 KiB + 1 KiB reserved per block: 164 KiB hold 3 blocks of 2 warps, 228 KiB 4.
    ("sm_80", 16, 64, 48 * 1024, (3, 6, 6 / 64, "shared memory")),
    ("sm_90", 16, 64, 48 * 1024, (4, 8, 8 / 64, "shared memory")),
    # 255 registers (8192 per warp: 8 warps) cannot hold one block of 32 warps.
    ("sm_90", 255, 1024, 0, (0, 0, 0.0, "registers")),
])
def test_occupancy_arithmetic(arch, registers, threads, shared, expected):
    occ = occupancy(Resources(registers, 0, 0, 0, shared), threads, arch)
    assert (occ.blocks, occ.warps, occ.fraction, occ.limit) == expected


def test_spills_and_low_occupancy_need_the_plans_reason():
    kernel = types.SimpleNamespace(name="k", threads_per_block=256, resources_note=None)
    explained = types.SimpleNamespace(**{**vars(kernel), "resources_note": "because"})
    low, spilling = Resources(104, 0, 0, 0, 0), Resources(32, 8, 8, 16, 0)
    assert resources.problems(kernel, Resources(32, 0, 0, 0, 0), "sm_90") == []
    assert "25%, bound by registers" in resources.problems(kernel, low, "sm_90")[0]
    assert "spills 8 bytes" in resources.problems(kernel, spilling, "sm_80")[0]
    assert resources.problems(explained, low, "sm_90") == []
    huge = types.SimpleNamespace(**{**vars(explained), "threads_per_block": 1024})
    assert resources.problems(huge, Resources(255, 0, 0, 0, 0), "sm_90") == \
        ["k on sm_90: keeps 0 of 64 warps resident (0%, bound by registers) at 1024 threads "
         "per block"]


def _kernels(specs, dtypes):
    for spec in specs:
        plan = from_json(spec.json)
        for kernel in plan.library_kernels.values():
            for dtype in dtypes:
                yield plan, kernel, dtype


def _check(plan, kernel, dtype):
    source = render.render_kernel(plan.kernel_templates, kernel, "cuda", dtype)
    for arch in resources.ARCHS:
        (found,) = resources.of_source(source, arch).values()
        assert found.registers > 0
        assert resources.problems(kernel, found, arch) == []


@pytest.mark.parametrize("spec", [wavegen.Spec("dwt2d", "db4", 1, "symmetric"),
                                  wavegen.Spec("dtcwt2d", levels=2, biort="near_sym_b",
                                               qshift="qshift_b")], ids=str)
def test_kernels_fit_sm80_and_sm90(spec):
    for plan, kernel, dtype in _kernels([spec], ["float32"]):
        _check(plan, kernel, dtype)


@pytest.mark.slow
def test_every_gallery_kernel_fits_in_every_dtype():
    specs = [s for s, targets, _ in CANONICAL if "cuda" in targets] + \
        [nn.ScatLayerj2(magbias=1e-2).spec]
    for plan, kernel, dtype in _kernels(specs, ["float32", "float64", "float16", "bfloat16"]):
        _check(plan, kernel, dtype)


@pytest.mark.slow
def test_gallery_resources_are_current():
    """generated/resources.md as `python -m wavegen gallery` writes it, where this NVRTC is
    the one it names (another NVRTC allocates registers its own way)."""
    from pathlib import Path
    from wavegen import gallery
    committed = (Path(__file__).resolve().parents[1] / "generated" / gallery.RESOURCES).read_text()
    fresh = gallery.resources_report()
    if committed.splitlines()[2] != fresh.splitlines()[2]:
        pytest.skip("generated/resources.md is from another NVRTC: " + committed.splitlines()[2])
    assert committed == fresh


def test_inspect_prints_resources_and_the_traffic_model(capsys):
    """`python -m wavegen inspect`: a row per kernel with both architectures, and the model
    of a call: a 1-D haar level on 2 planes of 256 samples moves 2 x 1 KiB in and 2 x 1 KiB
    out, each byte once."""
    from wavegen.__main__ import main
    main(["inspect", "dwt1d,wavelet=haar,levels=1,mode=periodization", "--shape", "1,2,256"])
    out = capsys.readouterr().out
    assert "| wg_analysis_w | 256 |" in out and "sm_80 registers" in out
    assert "Memory traffic model, forward on 1x2x256" in out
    assert "| total | 1 | 0.0041 | floor 0.0041 (x1.00)" in out
    assert "of the floor, over" not in out     # within the goal: no misses listed
    assert "predicted: H100 (3.35 TB/s)" in out
    with pytest.raises(SystemExit, match="needs N, C and 1 spatial sizes"):
        main(["inspect", "dwt1d,wavelet=haar,levels=1", "--shape", "1,2,16,16"])
