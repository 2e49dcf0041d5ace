"""The disk cache: hits without compiling, misses on any change, atomic concurrent builds,
rebuilt corrupt entries; and the checked-in gallery of generated sources."""
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import torch

import wavegen
from wavegen import cache, gallery, render
from wavegen import transform

ROOT = Path(__file__).resolve().parents[1]

# Builds a transform, runs it, checks it against pywt; prints the compile count as JSON.
BUILD_SCRIPT = """
import json, sys, time, numpy as np, pywt, torch, wavegen
from wavegen import cache
sys.path.insert(0, "tests")
from bounds import DwtBounds, assert_within
t0 = time.perf_counter()
t = wavegen.build(wavegen.Spec("dwt2d", "db2", 2, "periodization"))
x = torch.randn(2, 3, 20, 22, dtype=torch.float64)
yl, yh = t(x)
elapsed = time.perf_counter() - t0
ref = pywt.wavedec2(x.numpy(), "db2", mode="periodization", level=2)
assert_within(yl, ref[0], DwtBounds(x.numpy(), "db2", "periodization", 2, x.dtype,
                                    2).forward()[0], "yl")
print(json.dumps({"compiles": cache.compiles, "seconds": elapsed}))
"""


def run_build(cache_dir, script=BUILD_SCRIPT):
    env = {**os.environ, "WAVEGEN_CACHE_DIR": str(cache_dir)}
    proc = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True,
                          text=True, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout.strip().splitlines()[-1])


def entry_dirs(cache_dir):
    return [p for p in Path(cache_dir).iterdir() if not p.name.startswith(".tmp-")]


def test_second_process_hits_without_compiling(tmp_path):
    assert run_build(tmp_path)["compiles"] == 1
    assert run_build(tmp_path)["compiles"] == 0
    (entry,) = entry_dirs(tmp_path)
    assert {p.name for p in entry.iterdir()} == {"source.cpp", "kernels.so", "meta.json"}
    assert entry.name.startswith("dwt2d_db2_periodization_J2_cpu_float64_")


def test_four_processes_build_the_same_spec_at_once(tmp_path):
    env = {**os.environ, "WAVEGEN_CACHE_DIR": str(tmp_path)}
    procs = [subprocess.Popen([sys.executable, "-c", BUILD_SCRIPT], env=env, cwd=ROOT,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for _ in range(4)]
    for proc in procs:
        out, err = proc.communicate(timeout=300)
        assert proc.returncode == 0, err
    assert len(entry_dirs(tmp_path)) == 1
    assert not any(p.name.startswith(".tmp-") for p in tmp_path.iterdir())
    assert run_build(tmp_path)["compiles"] == 0


def test_corrupt_entry_is_rebuilt_not_loaded(tmp_path):
    run_build(tmp_path)
    (entry,) = entry_dirs(tmp_path)
    binary = entry / "kernels.so"
    binary.write_bytes(binary.read_bytes()[:1000])          # truncated
    assert run_build(tmp_path)["compiles"] == 1
    (meta := entry / "meta.json").write_text(meta.read_text()[:20])   # half-written meta
    assert run_build(tmp_path)["compiles"] == 1
    assert run_build(tmp_path)["compiles"] == 0


def test_template_change_misses(tmp_path, monkeypatch):
    monkeypatch.setenv("WAVEGEN_CACHE_DIR", str(tmp_path / "cache"))
    spec = wavegen.Spec("dwt1d", "db2", 1, "zero")
    x = torch.randn(1, 1, 16)

    def build_fresh():          # past the in-memory layer, to the disk cache
        transform._BUILT.clear()
        wavegen.build(spec)(x)

    before = cache.compiles
    build_fresh()
    build_fresh()
    assert cache.compiles == before + 1
    edited = tmp_path / "templates"
    shutil.copytree(render.templates_dir(), edited)
    cpu = edited / "cpu.cpp.j2"
    cpu.write_text(cpu.read_text().replace("// CPU shell:", "// CPU shell (edited):"))
    monkeypatch.setattr(render, "templates_dir", lambda: edited)
    render._environment.cache_clear()
    render.templates_digest.cache_clear()
    try:
        build_fresh()
        assert cache.compiles == before + 2
        entry = next(p for p in (tmp_path / "cache").iterdir()
                     if "(edited)" in (p / "source.cpp").read_text())
        assert entry.is_dir()
    finally:
        monkeypatch.undo()
        render._environment.cache_clear()
        render.templates_digest.cache_clear()


def test_code_or_toolchain_change_misses():
    spec_plan = wavegen.build(wavegen.Spec("dwt1d", "haar", 1, "zero")).plan
    base = dict(plan=render.plan_json(spec_plan), target="cpu", dtype="float32",
                templates=render.templates_digest(), code=cache.code_digest(),
                toolchain={"compiler": "c++", "version": "12"})
    keys = {cache.cache_key(base),
            cache.cache_key({**base, "code": "other"}),
            cache.cache_key({**base, "toolchain": {"compiler": "c++", "version": "13"}}),
            cache.cache_key({**base, "dtype": "float64"})}
    assert len(keys) == 4


def test_cache_command_lists_and_clears(tmp_path):
    run_build(tmp_path)
    env = {**os.environ, "WAVEGEN_CACHE_DIR": str(tmp_path)}
    out = subprocess.run([sys.executable, "-m", "wavegen", "cache", "list"], env=env,
                         capture_output=True, text=True, cwd=ROOT).stdout
    assert "1 entries" in out and "dwt2d_db2_periodization" in out
    out = subprocess.run([sys.executable, "-m", "wavegen", "cache", "clear"], env=env,
                         capture_output=True, text=True, cwd=ROOT).stdout
    assert "removed 1" in out
    assert entry_dirs(tmp_path) == []


def test_generated_gallery_is_up_to_date():
    stale = gallery.stale(ROOT / "generated")
    assert not stale, ("generated/ is stale; regenerate it with `python -m wavegen gallery`: "
                       f"{stale}")


def test_generated_sources_carry_the_header():
    t = wavegen.build(wavegen.Spec("dwt2d", "db4", 2, "smooth"))
    for target in ("cuda", "cpu"):
        head = t.source(target).splitlines()[:4]
        assert head[0] == "// generated by wavegen; do not edit"
        assert json.loads(head[1].split(": ", 1)[1]) == json.loads(t.spec.to_json())
        assert "source key: " + render.source_key(t.plan, target, "float32") in head[3]
