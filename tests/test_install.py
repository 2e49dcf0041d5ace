"""A plain, non-editable install finds its templates (package data) and builds a transform
from outside the source tree."""
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_non_editable_install_builds_a_transform(tmp_path):
    target = tmp_path / "site"
    pip = subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps",
                          "--no-build-isolation", "--target", str(target), str(ROOT)],
                         capture_output=True, text=True)
    assert pip.returncode == 0, pip.stderr
    assert (target / "wavegen" / "templates" / "cpu.cpp.j2").is_file()
    script = ("import wavegen, torch; t = wavegen.build(wavegen.Spec('dwt2d', 'db2', 2, "
              "'symmetric')); yl, yh = t(torch.randn(1, 1, 16, 16)); "
              "print(wavegen.__file__, tuple(yl.shape))")
    env = {**os.environ, "PYTHONPATH": str(target), "WAVEGEN_CACHE_DIR": str(tmp_path / "c")}
    run = subprocess.run([sys.executable, "-c", script], cwd=tmp_path, env=env,
                         capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    assert str(target) in run.stdout and "(1, 1, 6, 6)" in run.stdout


def test_installed_metadata_admits_numpy_2():
    """Nothing wavegen needs at run time, directly or through its dependencies, excludes
    NumPy 2; and the test environment runs on NumPy 2."""
    from importlib import metadata

    import numpy
    from packaging.requirements import Requirement

    assert int(numpy.__version__.split(".")[0]) >= 2, numpy.__version__
    seen, todo, constraints = set(), ["wavegen"], []
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        for text in metadata.requires(name) or []:
            req = Requirement(text)
            if req.marker is not None and not req.marker.evaluate({"extra": ""}):
                continue                            # an extra or another platform's
            if req.name.lower() == "numpy":
                constraints.append((name, str(req.specifier)))
            try:
                metadata.distribution(req.name)
            except metadata.PackageNotFoundError:
                continue                            # optional on this platform
            todo.append(req.name)
    assert "numpy" in seen
    excluding = [(who, spec) for who, spec in constraints
                 if not Requirement(f"numpy{spec}").specifier.contains(numpy.__version__)]
    assert not excluding, f"requirements that exclude NumPy {numpy.__version__}: {excluding}"


def test_a_fresh_venv_with_pip_install_builds_a_transform(tmp_path):
    """A plain `pip install .` (with the torch this suite runs, taken from where it came
    from) into a fresh venv: the wheel carries the templates and the filter tables, NumPy
    stays at 2, and a DTCWT builds and runs outside the source tree."""
    import torch
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    python = str(venv / "bin" / "python")
    pip = subprocess.run([python, "-m", "pip", "install", "--quiet",
                          "--disable-pip-version-check",
                          f"torch=={torch.__version__.split('+')[0]}", str(ROOT)],
                         capture_output=True, text=True)
    assert pip.returncode == 0, pip.stderr[-2000:]
    script = ("import numpy, torch, wavegen; t = wavegen.build(wavegen.Spec('dtcwt2d', "
              "biort='near_sym_b', qshift='qshift_b', levels=2)); "
              "yl, yh = t(torch.randn(1, 1, 20, 18)); "
              "print(wavegen.__file__, numpy.__version__, tuple(yh[1].shape))")
    run = subprocess.run([python, "-c", script], cwd=tmp_path, capture_output=True,
                         text=True, env={**os.environ, "WAVEGEN_CACHE_DIR": str(tmp_path / "c")})
    assert run.returncode == 0, run.stderr
    where, numpy_version, shape = run.stdout.split(maxsplit=2)
    assert where.startswith(str(venv)) and int(numpy_version.split(".")[0]) >= 2
    assert shape.strip() == "(1, 1, 6, 5, 5, 2)"


def test_a_clean_checkout_runs_from_its_source_tree(tmp_path):
    """The tracked files alone, on PYTHONPATH (no install): the templates are found, NVRTC
    compiles a generated CUDA source (the CUDA target's own compile step, for sm_90, no
    GPU needed) and the emulated CUDA target runs it."""
    files = subprocess.run(["git", "ls-files", "-co", "--exclude-standard"], cwd=ROOT,
                           capture_output=True, text=True, check=True).stdout.split()
    checkout = tmp_path / "checkout"
    for name in files:
        if (ROOT / name).is_file():
            (checkout / name).parent.mkdir(parents=True, exist_ok=True)
            (checkout / name).write_bytes((ROOT / name).read_bytes())
    script = ("import torch, wavegen; from wavegen import render; "
              "from wavegen.backends import nvrtc; "
              "spec = wavegen.Spec('scatter2d', levels=2, order=2, qshift='qshift_a'); "
              "t = wavegen.build(spec, target='cuda_emulated'); "
              "kernel = next(iter(t.plan.library_kernels.values())); "
              "cubin = nvrtc.compile_cubin(render.render_kernel(t.plan.kernel_templates, kernel, 'cuda', "
              "'float32'), 'sm_90'); z = t(torch.randn(1, 1, 16, 16)); "
              "print(wavegen.__file__, len(cubin) > 0, tuple(z.shape))")
    env = {**os.environ, "PYTHONPATH": str(checkout), "WAVEGEN_CACHE_DIR": str(tmp_path / "c")}
    run = subprocess.run([sys.executable, "-c", script], cwd=tmp_path, env=env,
                         capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    where, compiled, shape = run.stdout.split(maxsplit=2)
    assert (where, compiled, shape.strip()) == (str(checkout / "wavegen" / "__init__.py"),
                                                "True", "(1, 49, 4, 4)")
