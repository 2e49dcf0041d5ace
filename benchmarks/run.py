"""Benchmark wavegen's DWT against pytorch_wavelets, ptwt and PyWavelets in one process.

Per mode: forward and forward+backward time (median over interleaved rounds, fresh random
inputs), the ratio of every peer to wavegen, and wavegen's time over the memory-traffic
floor (bytes that must move / measured copy bandwidth). Writes JSON and a markdown table
to benchmarks/results/, named after the machine. Usage:

    python benchmarks/run.py [--device cpu|cuda] [--rounds 7] [--quick]
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
import warnings
from pathlib import Path

# glibc returns large freed blocks to the OS, so every iteration page-faults its tensors
# again and CPU timings swing 2-8x (design.md). Re-exec once with the allocator told to
# keep them; the setting is recorded in the results.
MALLOC = {"MALLOC_MMAP_THRESHOLD_": "17179869184", "MALLOC_TRIM_THRESHOLD_": "17179869184",
          "MALLOC_TOP_PAD_": "1073741824"}


def keep_freed_memory():
    if any(os.environ.get(k) != v for k, v in MALLOC.items()):
        os.execve(sys.executable, [sys.executable, *sys.argv], {**os.environ, **MALLOC})


if __name__ == "__main__":
    keep_freed_memory()

import pywt
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
import reference_shims  # noqa: E402,F401  (what pytorch_wavelets and dtcwt need today)
import ptwt  # noqa: E402
import pytorch_wavelets as ptw  # noqa: E402

import wavegen  # noqa: E402
from wavegen.machine import describe  # noqa: E402
from wavegen.spec import MODES  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"
PTW_MODES = {"zero", "symmetric", "reflect", "periodic", "periodization"}
PTWT_MODES = {"zero", "constant", "symmetric", "reflect", "periodic"}
warnings.filterwarnings("ignore")


def machine(device: str) -> dict:
    return {**describe(device), "malloc_env": {k: os.environ.get(k) for k in MALLOC}}


def sync(device):
    if device == "cuda":
        torch.cuda.synchronize()


def timed(fn, device) -> float:
    sync(device)
    start = time.perf_counter()
    fn()
    sync(device)
    return time.perf_counter() - start


def copy_bandwidth(device: str) -> float:
    """Bytes per second of a large device copy, counting bytes read plus bytes written."""
    x = torch.randn(64 * 1024 * 1024 // 4 * 4, device=device)
    y = torch.empty_like(x)
    times = [timed(lambda: y.copy_(x), device) for _ in range(10)]
    return 2 * x.numel() * 4 / statistics.median(times)


def forward_backward(run, x):
    """A callable doing forward then backward; the random output gradients are drawn
    beforehand, so that drawing them is not timed."""
    x = x.detach().requires_grad_()
    grads = [torch.randn_like(o) for o in run(x)]

    def call():
        outs = run(x)
        torch.autograd.backward(outs, grads)
    return call


def libraries(mode: str, wave: str, levels: int, device: str):
    """name -> (forward(x) -> list of tensors) for every library supporting ``mode``."""
    t = wavegen.build(wavegen.Spec("dwt2d", wave, levels, mode))
    libs = {"wavegen": lambda x: (lambda yl, yh: [yl, *yh])(*t(x))}
    if mode in PTW_MODES:
        layer = ptw.DWTForward(J=levels, wave=wave, mode=mode).to(device)
        libs["pytorch_wavelets"] = lambda x: (lambda yl, yh: [yl, *yh])(*layer(x))
    if mode in PTWT_MODES:
        w = pywt.Wavelet(wave)
        libs["ptwt"] = lambda x: (lambda c: [c[0], *(torch.stack(d, 2) for d in c[1:])])(
            ptwt.wavedec2(x, w, level=levels, mode=mode))
    if device == "cpu":
        libs["pywt"] = lambda x: pywt.wavedec2(x.numpy(), wave, mode=mode, level=levels)
    return libs, t


def floor_bytes(t, x) -> tuple[int, int]:
    """Bytes a forward and a backward must move: read each input once, write each output."""
    yl, yh = t(x)
    coeffs = (yl.numel() + sum(h.numel() for h in yh)) * x.element_size()
    signal = x.numel() * x.element_size()
    return signal + coeffs, coeffs + signal


def warm_start_ms() -> dict:
    """A second process with a warm cache: build() plus loading the cached kernels, and the
    first call."""
    script = ("import json, time, torch, wavegen; x = torch.randn(1, 1, 32, 32);"
              "t0 = time.perf_counter(); t = wavegen.build(wavegen.Spec('dwt2d', 'db4', 3, "
              "'symmetric')); t.module('cpu', 'float32', x.device).ensure_all(); "
              "t1 = time.perf_counter();"
              "t(x); t2 = time.perf_counter();"
              "print(json.dumps([(t1 - t0) * 1e3, (t2 - t1) * 1e3]))")
    run = lambda: json.loads(subprocess.run([sys.executable, "-c", script], check=True,
                                            capture_output=True, text=True).stdout)
    run()                                               # warms the cache
    samples = [run() for _ in range(3)]
    return {"build_and_load_ms": statistics.median(s[0] for s in samples),
            "first_call_ms": statistics.median(s[1] for s in samples)}


def options(quick: str, parser: argparse.ArgumentParser | None = None):
    """The command line every benchmark takes: (arguments, device, input shape)."""
    ap = parser or argparse.ArgumentParser()
    ap.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--shape", default=None, help="N,C,H,W (default 16,3,256,256; CUDA 128,3,256,256)")
    ap.add_argument("--quick", action="store_true", help=quick)
    ap.add_argument("--out", type=Path, default=RESULTS,
                    help=f"directory for the result files (default {RESULTS})")
    ap.add_argument("--force", action="store_true",
                    help="overwrite result files committed to the repository")
    args = ap.parse_args()
    shape = tuple(int(s) for s in args.shape.split(",")) if args.shape else \
        ((16, 3, 256, 256) if args.device == "cpu" else (128, 3, 256, 256))
    return args, args.device, shape


def main():
    args, device, shape = options("two modes, three rounds")
    wave, levels = "db4", 3
    modes = ["symmetric", "periodization"] if args.quick else list(MODES)
    rounds = 3 if args.quick else args.rounds
    bandwidth = copy_bandwidth(device)
    rows = []
    for mode in modes:
        libs, t = libraries(mode, wave, levels, device)
        x0 = torch.randn(shape, device=device)
        fwd_bytes, bwd_bytes = floor_bytes(t, x0)
        samples = {(name, kind): [] for name in libs for kind in ("fwd", "fwd+bwd")}
        for r in range(rounds + 1):                      # round 0 warms up (compiles)
            for name, fn in libs.items():                # interleaved
                x = torch.randn(shape, device=device)
                f = timed(lambda: fn(x), device)
                b = None if name == "pywt" else timed(forward_backward(fn, x), device)
                if r:
                    samples[(name, "fwd")].append(f)
                    if b is not None:
                        samples[(name, "fwd+bwd")].append(b)
        med = {k: statistics.median(v) for k, v in samples.items() if v}
        for kind in ("fwd", "fwd+bwd"):
            ours = med[("wavegen", kind)]
            floor = (fwd_bytes if kind == "fwd" else fwd_bytes + bwd_bytes) / bandwidth
            row = {"mode": mode, "pass": kind, "wavegen_ms": ours * 1e3,
                   "over_floor": ours / floor}
            for name in libs:
                if name != "wavegen" and (name, kind) in med:
                    row[f"{name}_ms"] = med[(name, kind)] * 1e3
                    row[f"{name}_ratio"] = med[(name, kind)] / ours
            rows.append(row)
            print(json.dumps(row), flush=True)
    result = {"benchmark": "dwt2d", "device": device, "shape": shape, "dtype": "float32",
              "wavelet": wave, "levels": levels, "rounds": rounds, "statistic": "median",
              "copy_bandwidth_GBps": bandwidth / 1e9, "machine": machine(device),
              "warm_cache": warm_start_ms() if device == "cpu" else None,
              "rows": rows}
    write(result, args)


def result_stem(result: dict) -> str:
    """<benchmark>_<device>_<shape>_<machine>: one file per benchmark, device and machine."""
    m = result["machine"]
    tag = (m.get("gpu") or m["cpu"]).replace(" ", "-").replace("/", "-").replace("(R)", "")
    shape = "x".join(str(d) for d in result["shape"])
    return (f"{result['benchmark']}_{result['device']}_{shape}_"
            f"{''.join(c for c in tag if c.isalnum() or c in '-_.')[:48]}")


def save(result: dict, lines: list[str], args) -> None:
    """Write the raw numbers (JSON) and the table (markdown) into ``args.out``, named after
    the benchmark, device, shape and machine; a file the repository has committed is kept
    unless ``--force``, so a trial run never replaces a result the README quotes."""
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    stem = result_stem(result)
    paths = [out / f"{stem}.json", out / f"{stem}.md"]
    committed = [p for p in paths if p.exists() and subprocess.run(
        ["git", "ls-files", "--error-unmatch", p.name], cwd=p.parent, capture_output=True
    ).returncode == 0]
    if committed and not args.force:
        sys.exit(f"{', '.join(map(str, committed))}: committed results; pass --force to "
                 "replace them, or --out DIR to write elsewhere")
    paths[0].write_text(json.dumps(result, indent=1))
    paths[1].write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    print(f"wrote {paths[0]} and {paths[1]}")


def write(result: dict, args):
    m = result["machine"]
    peers = ["pytorch_wavelets", "ptwt", "pywt"]
    lines = [f"# wavegen dwt2d benchmark: {result['device']}",
             "",
             f"Machine: {m.get('gpu') or m['cpu']} ({m['threads']} torch threads), torch {m['torch']}. "
             f"Input {tuple(result['shape'])} float32, {result['wavelet']}, J={result['levels']}; "
             f"median of {result['rounds']} interleaved rounds. Copy bandwidth "
             f"{result['copy_bandwidth_GBps']:.1f} GB/s. "
             + (f"A new process with a warm cache builds and loads the transform in "
                f"{result['warm_cache']['build_and_load_ms']:.1f} ms; its first call then takes "
                f"{result['warm_cache']['first_call_ms']:.0f} ms." if result["warm_cache"]
                else ""),
             "",
             "| mode | pass | wavegen ms | x floor | " + " | ".join(f"{p} ms (ratio)" for p in peers) + " |",
             "|---|---|---|---|" + "---|" * len(peers)]
    for r in result["rows"]:
        cells = [f"{r[p + '_ms']:.1f} ({r[p + '_ratio']:.1f}x)" if p + "_ms" in r else "-" for p in peers]
        lines.append(f"| {r['mode']} | {r['pass']} | {r['wavegen_ms']:.2f} | {r['over_floor']:.1f} | "
                     + " | ".join(cells) + " |")
    save(result, lines, args)


if __name__ == "__main__":
    main()
