"""wavegen demo: build a compiled 2-D DWT, check it against PyWavelets, reconstruct, take
an exact gradient; the same for the dual-tree complex wavelet transform against the dtcwt
package; and show a slice of the generated CUDA kernel."""
import logging
import sys
import time
from pathlib import Path

import numpy as np
import pywt
import torch

# The dtcwt reference needs the test harness's shims on NumPy 2 (it calls np.asfarray); the
# harness also derives how far two evaluations of a transform may differ (tests/bounds.py).
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
import reference_shims  # noqa: E402,F401
import dtcwt  # noqa: E402
from bounds import DtcwtBounds, DwtBounds  # noqa: E402

import wavegen  # noqa: E402
from wavegen import cache  # noqa: E402

spec = wavegen.Spec("dwt2d", wavelet="db4", levels=3, mode="symmetric")
start = time.perf_counter()
t = wavegen.build(spec)
x = torch.randn(4, 3, 97, 130, dtype=torch.float64)
yl, yh = t(x)
print(f"built and ran {t} in {time.perf_counter() - start:.2f} s "
      f"(kernels cached under {cache.cache_root()})")
print(f"yl {tuple(yl.shape)}, yh {[tuple(h.shape) for h in yh]}")

ref = pywt.wavedec2(x.numpy(), "db4", mode="symmetric", level=3)
low, details = DwtBounds(x.numpy(), "db4", "symmetric", 3, x.dtype, 2).forward()
diffs = [np.abs(yl.numpy() - ref[0])] + \
    [np.abs(yh[j].numpy() - np.stack(ref[-1 - j], 2)) for j in range(3)]
print(f"max |wavegen - pywt.wavedec2| = {max(d.max() for d in diffs):.2e}, within the "
      f"rounding bound derived for this input (at most {max(b.max() for b in [low, *details]):.1e})")
assert all(np.all(d <= b) for d, b in zip(diffs, [low, *details]))

x_back = t.inverse()(yl, yh)
print(f"perfect reconstruction: max error {(x_back[..., :97, :] - x).abs().max():.2e}")

xg = x.clone().requires_grad_()
yl, yh = t(xg)
gl, gh = torch.randn_like(yl), [torch.randn_like(h) for h in yh]
torch.autograd.backward([yl, *yh], [gl, *gh])
lhs = (yl * gl).sum() + sum((h * g).sum() for h, g in zip(yh, gh))
print(f"gradient is the exact adjoint: <Ax, y> - <x, A^T y> = {lhs - (x * xg.grad).sum():.1e}")

logging.getLogger().setLevel(logging.ERROR)        # dtcwt logs about odd sizes
xfm = wavegen.nn.DTCWTForward(biort="near_sym_b", qshift="qshift_b", J=3)
ifm = wavegen.nn.DTCWTInverse(biort="near_sym_b", qshift="qshift_b")
lo, hi = xfm(x)
ref = dtcwt.Transform2d("near_sym_b", "qshift_b").forward(x[0, 0].numpy(), nlevels=3)
low, bands = DtcwtBounds(x[0, 0].numpy(), "near_sym_b", "qshift_b", 3).forward(
    [(torch.float64, 2)])
diffs = [np.abs(lo[0, 0].numpy() - ref.lowpass)] + \
    [np.abs(hi[j][0, 0].numpy() - np.stack([np.moveaxis(ref.highpasses[j], -1, 0).real,
                                            np.moveaxis(ref.highpasses[j], -1, 0).imag], -1))
     for j in range(3)]
print(f"DTCWT: yh {[tuple(h.shape) for h in hi]}, max |wavegen - dtcwt| = "
      f"{max(d.max() for d in diffs):.2e}, within its derived bound")
assert all(np.all(d <= b) for d, b in zip(diffs, [low, *bands]))
print(f"DTCWT reconstruction: max error {(ifm((lo, hi))[..., :97, :] - x).abs().max():.2e}")

source = t.source("cuda").splitlines()
kernel = next(i for i, line in enumerate(source) if "__global__" in line)
print("\n--- generated CUDA (header and first kernel) ---")
print("\n".join(line[:110] for line in source[:4]))
print("...")
print("\n".join(source[kernel:kernel + 18]))
