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
