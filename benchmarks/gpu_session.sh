#!/usr/bin/env bash
# Device calls for a session with a GPU: the gpu-marked tests, then the CUDA benchmarks.
# Prepare the wheels here first (the device machine has torch, CuPy, SciPy, pytest, jinja2):
#   mkdir -p .git/info && echo /.whl/ >> .git/info/exclude
#   python3 -m pip download --no-deps --only-binary=:all: --python-version 3.12 \
#     --implementation cp --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 \
#     --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 -d .whl \
#     PyWavelets==1.9.0 pytorch_wavelets==1.3.0 ptwt==1.0.1 kymatio==0.3.0 appdirs configparser
#   pip wheel --no-deps -w .whl dtcwt==0.14.0        # dtcwt publishes no wheel
# (no NVRTC wheel: the machine's own CUDA toolkit, found through CUDA_PATH or /usr/local/cuda,
# matches its driver; a newer NVRTC could emit cubins the driver cannot load)
# then run `bash benchmarks/gpu_session.sh [tests] [scatter] [dwt] [dtcwt]` with carry
# [".whl"] (a device call returns at most 8 files: split the steps over calls);
# results land in benchmarks/results and $OUT.
set -uo pipefail
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
  --target /tmp/site .whl/*.whl || exit 1
export PYTHONPATH=/tmp/site:$PWD PYTHONUNBUFFERED=1
out=${OUT:-benchmarks/results}
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv | tee "$out/gpu.txt"
steps=("$@"); [ $# -eq 0 ] && steps=(tests scatter dwt dtcwt)
for step in "${steps[@]}"; do
  case $step in
    tests) python3 -m pytest -q -n 4 -m gpu tests/test_gpu.py 2>&1 | tee "$out/gpu_tests.log" ;;
    scatter) python3 benchmarks/run_scatter.py --device cuda 2>&1 | tee "$out/gpu_bench_scatter.log" ;;
    dwt) python3 benchmarks/run.py --device cuda 2>&1 | tee "$out/gpu_bench.log" ;;
    dtcwt) python3 benchmarks/run_dtcwt.py --device cuda 2>&1 | tee "$out/gpu_bench_dtcwt.log" ;;
    *) echo "unknown step $step (tests, scatter, dwt, dtcwt)"; exit 2 ;;
  esac
done
cp benchmarks/results/*_cuda_* "$out/" 2>/dev/null || true
