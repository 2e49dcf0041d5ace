"""The memory traffic model (wavegen.traffic) of the DWT, the DTCWT and ScatLayerj2 at the
thesis's size, forward and backward, float32 and bfloat16: per kernel the sectors per
global request against the fewest possible, shared-memory wavefronts per request (bank
conflicts), lanes per request, bytes moved against the floor, and a predicted time on an
H100 and an H200 from their memory bandwidth. Counted by the checked emulation on this
CPU (one and two planes, extrapolated), so no GPU is needed. Usage:

    python benchmarks/run_traffic.py [--shape 128,3,256,256] [--dtype float32 bfloat16]
        [--direction forward backward] [--out DIR] [--force]
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import run as common  # noqa: E402  (machine description, result files)

import wavegen  # noqa: E402
from wavegen import nn, traffic  # noqa: E402

SPECS = {"DWT db4 J=3 symmetric": wavegen.Spec("dwt2d", "db4", 3, "symmetric"),
         "DTCWT near_sym_b/qshift_b J=3": wavegen.Spec("dtcwt2d", levels=3, biort="near_sym_b",
                                                       qshift="qshift_b"),
         "ScatLayerj2 (near_sym_a/qshift_a, magbias 1e-2)": nn.ScatLayerj2(magbias=1e-2).spec}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--shape", default="128,3,256,256")
    ap.add_argument("--dtype", nargs="+", default=["float32", "bfloat16"])
    ap.add_argument("--direction", nargs="+", default=["forward", "backward"])
    ap.add_argument("--out", type=Path, default=common.RESULTS)
    ap.add_argument("--force", action="store_true")
    args = ap.parse_args()
    shape = tuple(int(s) for s in args.shape.split(","))
    rows, lines = [], []
    for name, spec in SPECS.items():
        for dtype in args.dtype:
            for direction in args.direction:
                start = time.perf_counter()
                m = traffic.measure(spec, shape, dtype, direction)
                print(f"{name} {dtype} {direction}: x{m.ratio:.2f} of the floor "
                      f"({time.perf_counter() - start:.0f} s)", flush=True)
                rows.append(dict(transform=name, spec=spec.to_json(), dtype=dtype,
                                 direction=direction, bytes=m.bytes, floor=m.floor,
                                 kernels=[dict(kernel=k.kernel, launches=k.launches,
                                               counts=k.counts) for k in m.kernels],
                                 predicted_s={b: m.seconds(bw)
                                              for b, bw in traffic.BANDWIDTH.items()}))
                lines += [f"## {name}, {dtype}, {direction}", "",
                          *traffic.table(m), "",
                          *(f"- {line}" for line in traffic.misses(m)), "",
                          "Predicted: " + ", ".join(f"{b} {m.seconds(bw) * 1e3:.3f} ms"
                                                    for b, bw in traffic.BANDWIDTH.items()),
                          ""]
    result = dict(benchmark="traffic", device="model", shape=shape,
                  machine=common.machine("cpu"), bandwidth=traffic.BANDWIDTH, rows=rows)
    summary = ["| transform | dtype | direction | MB moved | floor MB | ratio | "
               + " | ".join(f"{b} ms" for b in traffic.BANDWIDTH) + " |",
               "|---|---|---|---|---|---|" + "---|" * len(traffic.BANDWIDTH)]
    for r in rows:
        ratio = r["bytes"] / r["floor"]
        over = "" if ratio <= traffic.GOAL else f" (over {traffic.GOAL})"
        summary.append(f"| {r['transform']} | {r['dtype']} | {r['direction']} | "
                       f"{r['bytes'] / 1e6:.1f} | {r['floor'] / 1e6:.1f} | {ratio:.2f}{over} | "
                       + " | ".join(f"{r['predicted_s'][b] * 1e3:.3f}"
                                    for b in traffic.BANDWIDTH) + " |")
    m = result["machine"]
    header = [f"# Memory traffic model, {'x'.join(map(str, shape))}", "",
              "wavegen's CUDA kernels as the checked emulation counts their memory requests "
              "(wavegen/traffic.py: each block's distinct 32-byte sectors, no reuse across "
              "blocks; the floor reads every input and writes every output once; time = "
              "bytes / bandwidth, a lower bound). Counted on "
              f"{m['cpu']}, torch {m['torch']}; one and two planes, extrapolated to "
              f"{shape[0] * shape[1]}. Goal: within {traffic.GOAL}x of the floor; under each "
              "transform over it, why (traffic.misses).", "",
              *summary, ""]
    common.save(result, header + lines, args)


if __name__ == "__main__":
    main()
