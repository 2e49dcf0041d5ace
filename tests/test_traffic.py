"""wavegen.traffic: the model's reasons for a transform over the goal (traffic.misses), on
counts made up to exercise each cause, and on a measured call."""
import warnings

import wavegen
from wavegen import traffic

warnings.filterwarnings("ignore", message="Level value")


def kernel(name, loads, stores, launch_loads, launch_stores, sectors=4.0, wavefronts=1.0,
           lanes=32):
    """A kernel's counts (cuda_emu.h's names) for one request of each kind: ``loads`` and
    ``stores`` sectors its blocks touch, ``launch_*`` the launch's distinct ones."""
    counts = {}
    for space in ("global", "shared"):
        for direction in ("load", "store"):
            key = f"{space}_{direction}"
            counts.update({f"{key}_requests": 1, f"{key}_lanes": lanes,
                           f"{key}_warp_lanes": 32})
            if space == "global":
                counts.update({f"{key}_sectors": sectors, f"{key}_min_sectors": 4.0})
            else:
                counts.update({f"{key}_wavefronts": wavefronts, f"{key}_min_wavefronts": 1.0})
    counts.update(global_load_block_sectors=loads, global_store_block_sectors=stores,
                  global_load_launch_sectors=launch_loads,
                  global_store_launch_sectors=launch_stores)
    return traffic.KernelTraffic(name, 1, counts)


def test_misses_split_the_ratio_and_name_each_kernels_causes():
    sector = traffic.SECTOR
    # the call's floor: 100 sectors; two kernels with 75 sectors each of their own floor
    # (x1.5 between kernels), the first moving 90 (x1.2 within it), the second its floor
    halo = kernel("halo", 60, 30, 50, 25, sectors=5.0, wavefronts=2.0, lanes=16)
    clean = kernel("clean", 50, 25, 50, 25)
    m = traffic.TransformTraffic("t", (1,), "float32", "forward", [halo, clean], 100 * sector)
    assert m.ratio == 165 / 100
    first, *kernels = traffic.misses(m)
    assert "x1.65 of the floor" in first and "x1.50 of the call's" in first and \
        "x1.10 of their own floors" in first, first
    assert len(kernels) == 1 and kernels[0].startswith("halo: x1.20 of its own floor"), kernels
    for cause in ("5.00 sectors per global load against 4.00",
                  "2.00 wavefronts per shared store against 1.00", "0.50 of a warp's lanes"):
        assert cause in kernels[0], (cause, kernels[0])
    assert traffic.misses(m, goal=1.7) == []


def test_misses_of_a_measured_call_count_each_levels_approximation_twice():
    """A 2-level db4 DWT (symmetric) at 1x2x64x64: the call's floor is x and the
    coefficients (35 x 35 details at level 1, 21 x 21 at level 2) in float32; the
    kernels' own floors add level 1's 35 x 35 cA, written by the first launch and read by
    the second, to within a sector at each end of the buffers; misses says so."""
    m = traffic.measure(wavegen.Spec("dwt2d", "db4", 2, "symmetric"), (1, 2, 64, 64))
    planes, size = 2, 4
    assert m.floor == planes * size * (64 * 64 + 3 * 35 * 35 + 4 * 21 * 21)
    floors = sum(k.floor for k in m.kernels)
    between = floors - m.floor
    cA = planes * size * 35 * 35
    assert 2 * cA <= between <= 2 * cA + 4 * traffic.SECTOR, (between, 2 * cA)
    found = traffic.misses(m, goal=1.0)
    assert f"sum to {floors / 1e6:.3g} MB, x{floors / m.floor:.2f} of the call's" in found[0]
