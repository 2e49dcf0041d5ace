"""The fixed cost of a call: a tiny transform (1x1x8x8 float32), where the kernels' work
is nothing and the time is the Python and launch path (geometry, allocation, argument
packing, the op dispatch, the kernel call), forward and forward+backward.

    python benchmarks/run_overhead.py [--device cpu|cuda] [--baseline DIR] [--out DIR]

``--baseline DIR`` times another wavegen too (a checkout of an earlier revision, e.g.
``git worktree add /tmp/before <rev>``), in the same run: worker processes alternate
between the two, each with a warm cache, and the result reports both and their ratio.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CALLS = 2000          # per timing; the median of REPEATS timings per worker
REPEATS = 5


def transforms(device: str):
    import torch
    import wavegen
    x = torch.randn(1, 1, 8, 8, device=device, requires_grad=True)
    dwt = wavegen.nn.DWTForward(J=1, wave="db2", mode="symmetric")
    dtcwt = wavegen.nn.DTCWTForward(J=1, biort="legall", qshift="qshift_a")

    def forward(layer):
        return lambda: layer(x)

    def forward_backward(layer):
        def run():
            yl, yh = layer(x)
            torch.autograd.backward([yl, *yh], [torch.ones_like(yl),
                                                *(torch.ones_like(h) for h in yh)])
        return run
    return {("dwt2d J=1 db2", "fwd"): forward(dwt), ("dwt2d J=1 db2", "fwd+bwd"):
            forward_backward(dwt), ("dtcwt2d J=1 legall", "fwd"): forward(dtcwt),
            ("dtcwt2d J=1 legall", "fwd+bwd"): forward_backward(dtcwt)}


def worker(device: str) -> dict:
    """Per-call microseconds of every case, in this process's wavegen."""
    import torch
    sync = torch.cuda.synchronize if device == "cuda" else (lambda: None)
    out = {}
    for (name, kind), fn in transforms(device).items():
        for _ in range(50):                             # compiles, warms the caches
            fn()
        times = []
        for _ in range(REPEATS):
            sync()
            start = time.perf_counter()
            for _ in range(CALLS):
                fn()
            sync()
            times.append((time.perf_counter() - start) / CALLS * 1e6)
        out[f"{name}|{kind}"] = statistics.median(times)
    return out


def run_worker(path: Path, device: str, cache: str) -> dict:
    env = {**os.environ, "PYTHONPATH": str(path), "WAVEGEN_CACHE_DIR": cache,
           "OMP_NUM_THREADS": "1"}
    # From another directory: the checkout's own wavegen would shadow PYTHONPATH's.
    proc = subprocess.run([sys.executable, __file__, "--worker", "--device", device],
                          env=env, capture_output=True, text=True, check=True, cwd=cache)
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main():
    sys.path.insert(0, str(ROOT / "benchmarks"))
    import run as common
    parser = argparse.ArgumentParser()
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--baseline", type=Path, default=None,
                        help="another wavegen checkout to time in the same run")
    if "--worker" in sys.argv:
        parser.add_argument("--device", default="cpu")
        args = parser.parse_args()
        print(json.dumps(worker(args.device)))
        return
    args, device, _ = common.options("three rounds", parser)
    rounds = 3 if args.quick else args.rounds
    builds = {"wavegen": ROOT} | ({"baseline": args.baseline.resolve()} if args.baseline
                                 else {})
    samples = {}
    with tempfile.TemporaryDirectory() as cache:
        for r in range(rounds):
            for name, path in builds.items():          # interleaved
                for case, us in run_worker(path, device, cache).items():
                    samples.setdefault((name, case), []).append(us)
    rows = []
    for case in sorted({c for _, c in samples}):
        transform, kind = case.split("|")
        row = {"transform": transform, "pass": kind,
               "wavegen_us": statistics.median(samples[("wavegen", case)])}
        if args.baseline:
            row["baseline_us"] = statistics.median(samples[("baseline", case)])
            row["baseline_over_wavegen"] = row["baseline_us"] / row["wavegen_us"]
        rows.append(row)
        print(json.dumps(row), flush=True)
    baseline = None
    if args.baseline:
        baseline = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=args.baseline,
                                  capture_output=True, text=True).stdout.strip() or \
            str(args.baseline)
    result = {"benchmark": "overhead", "device": device, "shape": [1, 1, 8, 8],
              "dtype": "float32", "rounds": rounds, "calls_per_timing": CALLS,
              "statistic": "median", "machine": common.machine(device),
              "revision": subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT,
                                         capture_output=True, text=True).stdout.strip(),
              "baseline": baseline, "rows": rows}
    m = result["machine"]
    lines = [f"# wavegen per-call overhead: {device}", "",
             f"Machine: {m.get('gpu') or m['cpu']}, torch {m['torch']}, one OpenMP thread. "
             f"A 1x1x8x8 float32 input; microseconds per call, the median of {REPEATS} "
             f"timings of {CALLS} calls in each of {rounds} worker processes per build, the "
             "builds alternating." + (f" Baseline: revision {baseline}." if baseline else ""),
             "", "| transform | pass | wavegen us/call |" +
             (" baseline us/call | baseline / wavegen |" if baseline else ""),
             "|---|---|---|" + ("---|---|" if baseline else "")]
    for r in rows:
        lines.append(f"| {r['transform']} | {r['pass']} | {r['wavegen_us']:.1f} |" +
                     (f" {r['baseline_us']:.1f} | {r['baseline_over_wavegen']:.2f}x |"
                      if baseline else ""))
    common.save(result, lines, args)


if __name__ == "__main__":
    main()
