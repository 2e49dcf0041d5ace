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
