#!/usr/bin/env bash
# One device call for a session with a GPU: the gpu-marked tests, then the CUDA benchmarks.
# Prepare the wheels here first (the device machine has torch and CuPy, nothing else):
#   echo /.whl/ >> .git/info/exclude
#   python3 -m pip download --no-deps --only-binary=:all: --python-version 3.12 \
#     --implementation cp --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
#     -d .whl PyWavelets jinja2 MarkupSafe pytest pluggy iniconfig packaging hypothesis \
#     sortedcontainers attrs pytorch_wavelets ptwt six dtcwt kymatio appdirs configparser scipy
# (no NVRTC wheel: the machine's own CUDA toolkit, found through CUDA_PATH or /usr/local/cuda,
# matches its driver; a newer NVRTC could emit cubins the driver cannot load)
# then run this script with carry [".whl"]; results land in benchmarks/results and $OUT.
set -uo pipefail
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
  --target /tmp/site .whl/*.whl || exit 1
export PYTHONPATH=/tmp/site:$PWD PYTHONUNBUFFERED=1
out=${OUT:-benchmarks/results}
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv | tee "$out/gpu.txt"
python3 -m pytest -q -m gpu tests/test_gpu.py 2>&1 | tee "$out/gpu_tests.log"
python3 benchmarks/run.py --device cuda 2>&1 | tee "$out/gpu_bench.log"
python3 benchmarks/run_dtcwt.py --device cuda 2>&1 | tee "$out/gpu_bench_dtcwt.log"
python3 benchmarks/run_scatter.py --device cuda 2>&1 | tee "$out/gpu_bench_scatter.log"
cp benchmarks/results/*_cuda_* "$out/" 2>/dev/null || true
