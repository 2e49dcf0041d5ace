"""The checked and sanitized emulation (wavegen.emulation): planted bugs in a small kernel
are reported with the kernel, block and thread, and the clean kernel is not; every kernel
family runs clean, forward and backward, in every dtype (the `sanitize` marker), with the
same values as the plain emulation."""
import ctypes
import os
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

import pytest
import torch

import wavegen
from wavegen import emulation
from wavegen.backends import host
from wavegen.render import templates_dir

# A block of 64 threads reverses its 64 elements through shared memory; each plant breaks
# it one way. 3 blocks, 192 elements.
KERNEL = r'''
#include "cuda_emu.h"
#include "cuda_memory.h"
extern "C" __global__ void reverse(WG_GLOBAL(const float) in, WG_GLOBAL(float) out, int plant) {
  WG_SHARED(float, tile, [2][64]);
  const int t = threadIdx.x, i = blockIdx.x * blockDim.x + t;
  const int last = gridDim.x * blockDim.x - 1;
  tile[0][t] = in[plant == 1 && i == last ? i + 1 : i];     // 1: reads past the input
  __syncthreads();
  float v = tile[plant == 2 && t == 5 ? 1 : 0][63 - t];     // 2: never written
  if (plant == 3) tile[0][t] = v;                           // 3: overwrites what others read
  if (plant == 7) v += in[2 * i % (last + 1)];              // 7: a stride-2 global load
  if (plant == 8) v += tile[0][2 * t % 64];                 // 8: a 2-way bank conflict
  if (plant == 9 && t % 2) v += in[i];                      // 9: half the lanes load
  if (plant == 5) { float local[4] = {0, 1, 2, 3}; const float* q = local; v += q[t % 4 + (t == 7)]; }
  if (plant == 6) { int big = 2147483600; v += float(big + t); }
  out[plant == 4 && t == 9 ? i - 10 * 64 : i] = v;          // 4: writes before the output
}
extern "C" size_t run(int plant, const float* in, float* out, unsigned long long n) {
  wg_emu::kernel_name = "reverse";
  wg_emu::spans = {{uintptr_t(in), size_t(n * 4), "in"}, {uintptr_t(out), size_t(n * 4), "out"}};
  return wg_emu::launch(dim3(3), dim3(64), [&] {
    reverse(wg_emu::bind(in, 0), wg_emu::bind(out, 1), plant);
  });
}
extern "C" const char* finding() { return wg_emu::first_finding.c_str(); }
extern "C" const char* counter_names() {
  static const std::string names = wg_emu::counter_names();
  return names.c_str();
}
extern "C" void counters(double* out) { wg_emu::take_counters(out); }
'''
PLANTS = {
    1: "global load outside the tensor given to in: element 192 of 192 "
       "(kernel reverse, block (2, 0, 0), thread (63, 0, 0))",
    2: "read of uninitialised shared memory: tile element 122 has not been written by any "
       "thread of the block (kernel reverse, block (0, 0, 0), thread (5, 0, 0))",
    3: "shared-memory race: tile element 31 read here was written by thread (31, 0, 0) with "
       "no __syncthreads between (kernel reverse, block (0, 0, 0), thread (32, 0, 0))",
    4: "global store outside the tensor given to out: element -631 of 192 "
       "(kernel reverse, block (0, 0, 0), thread (9, 0, 0))",
}


def _build(mode: str, directory: Path) -> Path:
    src, lib = directory / "reverse.cpp", directory / "reverse.so"
    src.write_text(KERNEL)
    cmd = [host.compiler(), *host.flags("cuda_emulated", mode), f"-I{templates_dir()}",
           str(src), "-o", str(lib)]
    subprocess.run(cmd, check=True, capture_output=True)
    return lib


@pytest.fixture(scope="module")
def checked_kernel(tmp_path_factory):
    library = ctypes.CDLL(str(_build("checked", tmp_path_factory.mktemp("checked"))))
    library.run.restype = ctypes.c_size_t
    library.finding.restype = ctypes.c_char_p

    library.counter_names.restype = ctypes.c_char_p
    names = library.counter_names().decode().split(",")

    def run(plant):
        x = torch.randn(192)
        out = torch.full_like(x, float("nan"))
        found = library.run(plant, ctypes.c_void_p(x.data_ptr()),
                            ctypes.c_void_p(out.data_ptr()), ctypes.c_ulonglong(192))
        values = (ctypes.c_double * len(names))()
        library.counters(values)
        run.counts = dict(zip(names, values))
        return x, out, found, library.finding().decode()
    return run


def test_clean_kernel_has_no_findings(checked_kernel):
    x, out, found, message = checked_kernel(0)
    assert (found, message) == (0, "")
    assert torch.equal(out, x.reshape(3, 64).flip(1).reshape(-1))


@pytest.mark.parametrize("plant", sorted(PLANTS))
def test_planted_bug_is_reported_with_kernel_block_and_thread(checked_kernel, plant):
    _, out, found, message = checked_kernel(plant)
    assert found >= 1
    assert message == PLANTS[plant]
    if plant == 4:      # the stray store was dropped, the rest written
        assert torch.isnan(out[9]) and not torch.isnan(out[:9]).any()


# Counts of the clean kernel, by hand: 3 blocks of 2 warps; each warp loads and stores 32
# consecutive floats (4 sectors: torch aligns tensors to 64 bytes) and stores and loads 32
# consecutive shared words (one wavefront); every lane takes part.
CLEAN = dict(blocks=3, global_load_requests=6, global_load_sectors=24,
             global_load_min_sectors=24, global_load_block_sectors=24,
             global_load_launch_sectors=24, global_store_requests=6, global_store_sectors=24,
             global_store_block_sectors=24, shared_load_requests=6, shared_load_wavefronts=6,
             shared_store_requests=6, shared_store_wavefronts=6, global_load_lanes=192,
             global_load_warp_lanes=192)
# What each plant adds: a stride-2 load spans 8 sectors a request for 4 sectors' worth of
# bytes, the whole input (24 sectors) again over the launch; lanes 2t of a 64-word array
# meet each even bank twice (2 wavefronts); the odd lanes' load is 16 of 32 lanes.
PLANTED_COUNTS = {
    7: dict(global_load_requests=6, global_load_sectors=48, global_load_min_sectors=24,
            global_load_lanes=192, global_load_warp_lanes=192),
    8: dict(shared_load_requests=6, shared_load_wavefronts=12, shared_load_min_wavefronts=6),
    9: dict(global_load_requests=6, global_load_sectors=24, global_load_lanes=96,
            global_load_warp_lanes=192),
}


def test_counts_of_the_clean_kernel(checked_kernel):
    checked_kernel(0)
    assert {k: checked_kernel.counts[k] for k in CLEAN} == CLEAN


@pytest.mark.parametrize("plant", sorted(PLANTED_COUNTS))
def test_counts_of_strided_conflicting_and_divergent_access(checked_kernel, plant):
    checked_kernel(0)
    clean = dict(checked_kernel.counts)
    _, _, found, _ = checked_kernel(plant)
    assert found == 0
    added = {k: checked_kernel.counts[k] - clean[k] for k in PLANTED_COUNTS[plant]}
    assert added == PLANTED_COUNTS[plant]


def _sanitizer_env() -> dict:
    """The sanitizer runtime first, and the C++ runtime whose exceptions it intercepts
    (as wavegen.emulation.preload_hint says)."""
    runtimes = [subprocess.run([host.compiler(), f"-print-file-name={name}"],
                               capture_output=True, text=True).stdout.strip()
                for name in ("libasan.so", "libstdc++.so")]
    assert all(os.path.isfile(r) for r in runtimes), \
        f"{host.compiler()} lacks the AddressSanitizer or C++ runtime: {runtimes}"
    return {**os.environ, "LD_PRELOAD": " ".join(runtimes), "ASAN_OPTIONS": "detect_leaks=0"}


@pytest.fixture(scope="module")
def sanitized_kernel(tmp_path_factory):
    return _build("sanitized", tmp_path_factory.mktemp("sanitized"))


@pytest.mark.parametrize("plant, reports", [
    (0, None),
    # UBSan's object-size check sees this one before ASan's redzone does.
    (5, ("AddressSanitizer: stack-buffer-overflow", "with insufficient space for an object")),
    (6, ("runtime error: signed integer overflow",)),
])
def test_sanitizers_catch_what_the_checks_do_not(sanitized_kernel, plant, reports):
    """The sanitized build aborts on ASan's and UBSan's findings in kernel code (a local
    array overrun, a signed overflow); the checked build's own findings (the other plants)
    it reports too. Run in a child process under the sanitizer runtime."""
    lib = sanitized_kernel
    script = textwrap.dedent(f"""
        import ctypes, torch
        lib = ctypes.CDLL({str(lib)!r})
        lib.run.restype = ctypes.c_size_t
        x = torch.randn(192); out = torch.empty_like(x)
        print("findings", lib.run({plant}, ctypes.c_void_p(x.data_ptr()),
                                  ctypes.c_void_p(out.data_ptr()), ctypes.c_ulonglong(192)))
        """)
    proc = subprocess.run([sys.executable, "-c", script], env=_sanitizer_env(),
                          capture_output=True, text=True, timeout=300)
    if reports is None:
        assert proc.returncode == 0 and "findings 0" in proc.stdout, proc.stderr[-3000:]
    else:
        assert proc.returncode != 0 and any(r in proc.stderr for r in reports), \
            proc.stderr[-3000:]


# ---- every kernel family, forward and backward, every dtype ---------------------------
DTYPES = ["float32", "float64", "float16", "bfloat16"]
FAMILIES = ["dwt1d", "dwt2d", "idwt2d", "dtcwt2d", "scatter", "taps2d"]


def run_family(family: str, dtype: str) -> list[torch.Tensor]:
    """Outputs and input gradients (and tap gradients) of a small call of one family on
    the emulated target, from a fixed seed: the sweep compares the modes bit for bit."""
    from wavegen import nn
    from wavegen.taps import TapsTransform, TensorFilterBank
    torch.manual_seed(7)
    dt = getattr(torch, dtype)
    target = "cuda_emulated"
    if family == "taps2d":
        bank = [f.to(dt).requires_grad_() for f in TensorFilterBank.from_wavelet("db2")]
        x = torch.randn(1, 2, 21, 18).to(dt).requires_grad_()
        yl, yh = TapsTransform("dwt2d", 4, 2, "symmetric", target)(
            x, bank=TensorFilterBank(*bank))
        outputs, leaves = [yl, *yh], [x, *bank[:2]]     # the analysis filters
    elif family == "idwt2d":
        forward = wavegen.build(wavegen.Spec("dwt2d", "db3", 2, "periodization"), target)
        yl, yh = forward(torch.randn(1, 2, 23, 20).to(dt))
        leaves = [yl.requires_grad_(), *(h.requires_grad_() for h in yh)]
        outputs = [forward.inverse()(leaves[0], leaves[1:])]
    else:
        spec = {"dwt1d": wavegen.Spec("dwt1d", "coif1", 3, "smooth"),
                "dwt2d": wavegen.Spec("dwt2d", "sym3", 2, "reflect"),
                "dtcwt2d": wavegen.Spec("dtcwt2d", levels=2, biort="near_sym_b",
                                        qshift="qshift_b", mode="symmetric"),
                "scatter": nn.ScatLayerj2(magbias=1e-2).spec}[family]
        shape = (1, 2, 61) if family == "dwt1d" else (1, 2, 18, 21)
        x = torch.randn(*shape).to(dt).requires_grad_()
        result = wavegen.build(spec, target)(x)
        outputs = list(result) if isinstance(result, tuple) else [result]
        outputs = [o for item in outputs for o in (item if isinstance(item, list) else [item])]
        leaves = [x]
    grads = torch.autograd.grad(outputs, leaves, [torch.randn_like(o) for o in outputs])
    return [o.detach() for o in outputs] + list(grads)


@pytest.mark.sanitize
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("family", FAMILIES)
def test_checked_emulation_is_clean_and_equal(family, dtype, monkeypatch):
    """No finding in any kernel of the family, forward and backward, and the same bits as
    the plain emulation (the checks change how memory is reached, not the arithmetic)."""
    plain = run_family(family, dtype)
    monkeypatch.setenv(emulation.ENV, "checked")
    checked = run_family(family, dtype)
    assert len(plain) == len(checked)
    for a, b in zip(plain, checked):
        assert torch.equal(a, b) or (a.isnan() == b.isnan()).all() and \
            torch.equal(a.nan_to_num(), b.nan_to_num())


@pytest.mark.sanitize
def test_sanitized_emulation_is_clean():
    """Every family and dtype of the sweep again, built with ASan and UBSan, in a child
    process under their runtime (it aborts on a finding)."""
    script = textwrap.dedent(f"""
        import sys
        sys.path.insert(0, {str(Path(__file__).parent)!r})
        from test_emulation_checks import run_family, FAMILIES, DTYPES
        for family in FAMILIES:
            for dtype in DTYPES:
                run_family(family, dtype)
                print(family, dtype, "clean", flush=True)
        """)
    env = {**_sanitizer_env(), emulation.ENV: "sanitized"}
    proc = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True,
                          text=True, timeout=3000)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-4000:]
    assert proc.stdout.count("clean") == len(FAMILIES) * len(DTYPES)
