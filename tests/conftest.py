"""Test harness: reference-library compatibility shims, an isolated cache, fresh seeds."""
import os
import tempfile

import numpy as np
import pytest
import torch

import reference_shims  # noqa: F401  (before any reference library)

# Every test run compiles into its own cache, so no entry from an earlier run is trusted.
os.environ.setdefault("WAVEGEN_CACHE_DIR", tempfile.mkdtemp(prefix="wavegen-test-cache-"))

HAS_GPU = torch.cuda.is_available()


@pytest.fixture(autouse=True)
def fresh_seed(request):
    """A new random seed per test, printed so that a failure can be replayed: set
    WAVEGEN_TEST_SEED to the printed value to run a test on the same inputs again."""
    seed = int(os.environ.get("WAVEGEN_TEST_SEED") or int.from_bytes(os.urandom(4), "little"))
    torch.manual_seed(seed)
    np.random.seed(seed)
    print(f"seed={seed}")
    yield seed


@pytest.fixture
def float64_reference():
    """pytorch_wavelets builds its filters in the default dtype; float64 keeps its taps exact
    (contract 3.2: .double() afterwards keeps float32-rounded taps)."""
    previous = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    yield
    torch.set_default_dtype(previous)


NVRTC_ARCH = "sm_90"
_nvrtc_checked = set()


@pytest.fixture(scope="session", autouse=True)
def nvrtc_compiles_every_generated_cuda_source():
    """Whenever a test builds a kernel for a host target, the CUDA source of the same
    kernel and dtype is compiled by NVRTC too (no GPU needed), so every kernel the suite
    generates is checked by the real CUDA compiler, and its resources (ptxas's report) by
    wavegen.resources: a compile error, a spill or an occupancy its plan does not explain
    fails that test."""
    import dataclasses
    import json
    from wavegen import render, resources
    from wavegen.artifact import Artifact
    from wavegen.backends import nvrtc

    original = Artifact._fetch

    def fetch_and_check(self, kernel):
        path = original(self, kernel)
        key = (json.dumps(dataclasses.asdict(kernel), sort_keys=True), self.dtype)
        if self.target != "cuda" and key not in _nvrtc_checked:
            source = render.render_kernel(self.plan.kernel_templates, kernel, "cuda", self.dtype)
            _, log = nvrtc.compile_cubin_with_log(source, NVRTC_ARCH, ("--ptxas-options=-v",))
            found = [p for r in resources.parse(log).values()
                     for p in resources.problems(kernel, r, NVRTC_ARCH)]
            assert not found, f"{self.dtype}: " + "; ".join(found)
            _nvrtc_checked.add(key)
        return path

    Artifact._fetch = fetch_and_check
    yield
    Artifact._fetch = original


def _gpu_missing() -> str | None:
    """Why the gpu-marked tests cannot run here, or None."""
    if not HAS_GPU:
        return "needs a CUDA GPU (runs wherever one is present)"
    try:
        import cupy  # noqa: F401
    except ImportError:
        return "needs CuPy on this GPU machine: pip install wavegen[cuda12] (or [cuda13])"
    return None


def pytest_collection_modifyitems(config, items):
    reason = _gpu_missing()
    if reason:
        skip = pytest.mark.skip(reason=reason)
        for item in items:
            if "gpu" in item.keywords:
                item.add_marker(skip)
