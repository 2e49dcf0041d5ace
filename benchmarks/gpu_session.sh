#!/usr/bin/env bash
# The device call of a session lent a GPU machine: minutes of it, no package index there.
#
# Here (with the network), once:   bash benchmarks/gpu_session.sh --prepare
#   downloads into .whl/ (ignored by git) the wheels the GPU image lacks: the reference
#   libraries the gpu tests and benchmarks compare against. The image has torch, CuPy,
#   NVRTC (CUDA 13), NumPy, SciPy, pytest, xdist, hypothesis and jinja2 (the device
#   tool's KINDS.md).
# Then one call:   run(command="bash benchmarks/gpu_session.sh", carry=[".whl"],
#                      timeout_s=600)
#   installs the wheels, runs the gpu-marked tests and the CUDA benchmarks, each step
#   bounded (STEPS: seconds), and leaves at most 8 files in $OUT: session.log (the GPU,
#   versions, every step's status and output) and the benchmarks' result files. Copy
#   those into benchmarks/results/ here and commit them.
set -uo pipefail
cd "$(dirname "$0")/.."

if [ "${1:-}" = "--prepare" ]; then
  grep -qx '/.whl/' .git/info/exclude 2>/dev/null || echo /.whl/ >> .git/info/exclude
  python3 -m pip download --no-deps --only-binary=:all: --python-version 3.12 \
    --implementation cp --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 \
    --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 -d .whl \
    PyWavelets==1.9.0 pytorch_wavelets==1.3.0 ptwt==1.0.1 kymatio==0.3.0 appdirs \
    configparser six
  python3 -m pip wheel --no-deps -w .whl dtcwt==0.14.0      # dtcwt publishes no wheel
  exit
fi

out=${OUT:-/tmp/gpu_session}
mkdir -p "$out"
log="$out/session.log"
results=$(mktemp -d)
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
  --target /tmp/site .whl/*.whl > "$log" 2>&1 || { echo "wheel install failed" >> "$log"; exit 1; }
export PYTHONPATH=/tmp/site:$PWD PYTHONUNBUFFERED=1 WAVEGEN_CACHE_DIR=/tmp/wavegen-cache
{ nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv
  python3 -c "import torch, cupy, numpy; print('torch', torch.__version__, 'cupy', \
cupy.__version__, 'numpy', numpy.__version__)"
  python3 -c "from wavegen.backends import nvrtc; print('nvrtc', nvrtc.version(), \
'driver', nvrtc.driver_version())"; } >> "$log" 2>&1

# step, its time bound in seconds, its command (all ten minutes of a call: 540 s, and the
# install and transfers the rest)
STEPS=(
  "tests 170 python3 -m pytest -q -n 8 -m gpu tests/test_gpu.py"
  "overhead 30 python3 benchmarks/run_overhead.py --device cuda --rounds 3 --out $results"
  "dwt 80 python3 benchmarks/run.py --device cuda --rounds 5 --out $results"
  "dtcwt 70 python3 benchmarks/run_dtcwt.py --device cuda --rounds 5 --out $results"
  "scatter 90 python3 benchmarks/run_scatter.py --device cuda --rounds 5 --out $results"
  "half 50 python3 benchmarks/run_half.py --device cuda --rounds 5 --out $results"
  "experiments 50 python3 benchmarks/run_experiments.py --device cuda --rounds 5 --out $results"
)
for entry in "${STEPS[@]}"; do
  read -r name seconds command <<< "$entry"
  echo "=== $name (at most $seconds s): $command" >> "$log"
  start=$(date +%s)
  timeout "$seconds" bash -c "$command" >> "$log" 2>&1
  echo "=== $name: exit $? after $(( $(date +%s) - start )) s" >> "$log"
done
# session.log and at most 7 result files (JSON, then the markdown tables).
ls "$results"/*.json "$results"/*.md 2>/dev/null | head -7 | xargs -r cp -t "$out"
ls "$out" >> "$log"
