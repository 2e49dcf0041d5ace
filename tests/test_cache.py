"""The disk cache: hits without compiling, misses on any change, atomic concurrent builds,
rebuilt corrupt entries; and the checked-in gallery of generated sources."""
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

import wavegen
from wavegen import cache, gallery, render
from wavegen import artifact

ROOT = Path(__file__).resolve().parents[1]

# Builds a transform, runs it, checks it against pywt; prints the compile count as JSON.
# In smooth mode a 2-D level runs its two passes (plan.FusedLevelKernel.fuses): two
# kernels, two cache entries.
BUILD_SCRIPT = """
import json, sys, time, numpy as np, pywt, torch, wavegen
from wavegen import cache
sys.path.insert(0, "tests")
from bounds import DwtBounds, assert_within
t0 = time.perf_counter()
t = wavegen.build(wavegen.Spec("dwt2d", "db2", 2, "smooth"))
x = torch.randn(2, 3, 20, 22, dtype=torch.float64)
yl, yh = t(x)
elapsed = time.perf_counter() - t0
ref = pywt.wavedec2(x.numpy(), "db2", mode="smooth", level=2)
assert_within(yl, ref[0], DwtBounds(x.numpy(), "db2", "smooth", 2, x.dtype,
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
    """A smooth 2-D DWT runs two kernels (height and width passes), each its own entry."""
    assert run_build(tmp_path)["compiles"] == 2
    assert run_build(tmp_path)["compiles"] == 0
    entries = entry_dirs(tmp_path)
    assert len(entries) == 2
    for entry in entries:
        assert {p.name for p in entry.iterdir()} == {"source.cpp", "kernels.so", "meta.json"}
        assert entry.name.startswith("wg_analysis_")
        assert json.loads((entry / "meta.json").read_text())["first_use"] == \
            "dwt2d_db2_smooth_J2"


def test_four_processes_build_the_same_spec_at_once(tmp_path):
    env = {**os.environ, "WAVEGEN_CACHE_DIR": str(tmp_path)}
    procs = [subprocess.Popen([sys.executable, "-c", BUILD_SCRIPT], env=env, cwd=ROOT,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for _ in range(4)]
    for proc in procs:
        out, err = proc.communicate(timeout=300)
        assert proc.returncode == 0, err
    assert len(entry_dirs(tmp_path)) == 2
    assert not any(p.name.startswith(".tmp-") for p in tmp_path.iterdir())
    assert run_build(tmp_path)["compiles"] == 0


def test_corrupt_entry_is_rebuilt_not_loaded(tmp_path):
    run_build(tmp_path)
    entry = entry_dirs(tmp_path)[0]
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
        artifact._LOADED.clear()
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
                templates=render.templates_digest("dwt", "cpu"), code=cache.code_digest(),
                toolchain={"compiler": "c++", "version": "12"})
    keys = {cache.cache_key(base),
            cache.cache_key({**base, "code": "other"}),
            cache.cache_key({**base, "toolchain": {"compiler": "c++", "version": "13"}}),
            cache.cache_key({**base, "dtype": "float64"})}
    assert len(keys) == 4


def wavegen_command(cache_dir, *args, shell=None):
    env = {**os.environ, "WAVEGEN_CACHE_DIR": str(cache_dir)}
    if shell:
        return subprocess.run(shell, shell=True, env=env, capture_output=True, text=True,
                              cwd=ROOT)
    return subprocess.run([sys.executable, "-m", "wavegen", *args], env=env,
                          capture_output=True, text=True, cwd=ROOT)


def test_cache_command_lists_prunes_and_clears(tmp_path):
    run_build(tmp_path)
    out = wavegen_command(tmp_path, "cache", "list").stdout
    assert "2 entries" in out and "(0 stale" in out and "dwt2d_db2_smooth" in out
    assert out.count("cpu           float64") == 2 and "KiB" in out
    # An entry another wavegen built (another code digest) is stale; prune removes it.
    meta_path = entry_dirs(tmp_path)[0] / "meta.json"
    meta = json.loads(meta_path.read_text())
    meta["material"]["code"] = "another wavegen"
    meta_path.write_text(json.dumps(meta))
    out = wavegen_command(tmp_path, "cache", "list").stdout
    assert "(1 stale" in out and "stale: other code" in out
    assert "removed 1 stale" in wavegen_command(tmp_path, "cache", "prune").stdout
    assert len(entry_dirs(tmp_path)) == 1
    assert "removed 1" in wavegen_command(tmp_path, "cache", "clear").stdout
    assert entry_dirs(tmp_path) == []


def test_commands_piped_into_head_end_quietly(tmp_path):
    run_build(tmp_path)
    python = sys.executable
    for command in ("cache list", "source dwt2d,wavelet=db4,levels=3 --target cuda"):
        proc = wavegen_command(tmp_path, shell=f"{python} -m wavegen {command} | head -1")
        assert proc.returncode == 0 and proc.stderr == "", proc.stderr
        assert proc.stdout.count("\n") == 1


def test_source_and_precompile_commands(tmp_path):
    out = wavegen_command(tmp_path, "source", "ScatLayerj2,biort=near_sym_b,qshift=qshift_b",
                          "--target", "cpu", "--dtype", "float64").stdout
    assert "wg_dtcwt_analysis_qshift_pooled_magnitude_f64" in out and "double" in out
    spec = wavegen.Spec("dwt1d", "db2", 2, "zero")
    for text in ('{"kind": "dwt1d", "wavelet": "db2", "levels": 2, "mode": "zero"}',
                 spec.to_json()):
        assert wavegen.build(spec).source("cuda") == wavegen_command(tmp_path, "source",
                                                                      text).stdout
    proc = wavegen_command(tmp_path, "precompile", "dwt1d,wavelet=db2,levels=2,mode=zero",
                           "--dtype", "float32", "float64")
    # Forward and gradient (adjoint) kernels, for each dtype: 2 x 2.
    assert proc.returncode == 0 and "4 kernels" in proc.stdout, proc.stderr
    assert len(entry_dirs(tmp_path)) == 4
    bad = wavegen_command(tmp_path, "precompile", "dwt1d,wavelet=db99")
    assert bad.returncode != 0 and "unknown wavelet 'db99'" in bad.stderr


def test_precompile_then_a_process_compiles_nothing(tmp_path, monkeypatch):
    monkeypatch.setenv("WAVEGEN_CACHE_DIR", str(tmp_path))
    artifact._LOADED.clear()
    wavegen.precompile([wavegen.nn.ScatLayer().spec], dtypes=["float64"])
    script = ("import json, torch, wavegen; from wavegen import cache; "
              "x = torch.randn(1, 1, 8, 8, dtype=torch.float64, requires_grad=True); "
              "wavegen.nn.ScatLayer()(x).sum().backward(); print(json.dumps("
              "{'compiles': cache.compiles}))")
    assert run_build(tmp_path, script)["compiles"] == 0


def test_a_compile_logs_one_line(tmp_path, monkeypatch, caplog):
    monkeypatch.setenv("WAVEGEN_CACHE_DIR", str(tmp_path))
    artifact._LOADED.clear()
    with caplog.at_level("INFO", logger="wavegen"):
        wavegen.build(wavegen.Spec("dwt1d", "db3", 1, "zero"))(torch.randn(1, 1, 16))
    (record,) = [r for r in caplog.records if r.name == "wavegen"]
    assert "compiled wg_analysis_w (dwt1d_db3_zero_J1) for cpu float32 in" in record.message
    assert f"cached in {tmp_path}" in record.message


def test_generated_gallery_is_up_to_date():
    stale = gallery.stale(ROOT / "generated")
    assert not stale, ("generated/ is stale; regenerate it with `python -m wavegen gallery`: "
                       f"{stale}")


def test_generated_sources_carry_a_readable_header():
    """A few lines a person reads: what, which kernels, target and types, the source key."""
    t = wavegen.build(wavegen.Spec("dwt2d", "db4", 2, "smooth"))
    for target in ("cuda", "cpu"):
        head = t.source(target, "bfloat16").splitlines()[:5]
        assert head[0].startswith("// generated by wavegen; do not edit")
        assert head[2] == "// dwt2d_db4_smooth_J2: wg_analysis_h, wg_analysis_w"
        assert head[3] == f"// target {target}; bfloat16: stored as wg_bf16, summed in float"
        assert "source key " + render.source_key(render.plan_json(t.plan), "dwt", target,
                                                 "bfloat16") in head[4]
        assert not any("{" in line for line in head)      # no JSON


def test_editing_one_template_changes_only_the_sources_that_use_it(tmp_path, monkeypatch):
    """Per-template digests: an edit to the DTCWT's CPU shell changes the DTCWT's CPU
    source key and nothing of the DWT's or of the CUDA DTCWT's."""
    families = [(f, t) for f in ("dwt", "dtcwt") for t in ("cpu", "cuda", "cuda_emulated")]
    before = {k: render.templates_digest(*k) for k in families}
    edited = tmp_path / "templates"
    shutil.copytree(render.templates_dir(), edited)
    shell = edited / "dtcwt_cpu.cpp.j2"
    shell.write_text(shell.read_text() + "\n// edited\n")
    monkeypatch.setattr(render, "templates_dir", lambda: edited)
    render.templates_digest.cache_clear()
    try:
        changed = {k for k in families if render.templates_digest(*k) != before[k]}
    finally:
        monkeypatch.undo()
        render.templates_digest.cache_clear()
    assert changed == {("dtcwt", "cpu")}


def test_kernel_override_compiles_the_hand_edited_source(tmp_path, monkeypatch):
    """WAVEGEN_KERNEL_OVERRIDE=DIR: DIR/<kernel>_<target>_<dtype>.cpp is compiled instead of
    the rendered source, with a warning, in its own cache entry."""
    spec = wavegen.Spec("dwt1d", "db2", 1, "periodization")
    kernel = wavegen.build(spec).plan.library_kernels["wg_analysis_w"]
    generated = render.render_kernel("dwt", kernel, "cpu", "float64")
    assert generated.count("a_out[c] = a;") == 1
    (tmp_path / "wg_analysis_w_cpu_float64.cpp").write_text(
        generated.replace("a_out[c] = a;", "a_out[c] = 2 * a;   // hand edit"))
    x = torch.randn(2, 3, 16, dtype=torch.float64)
    monkeypatch.setenv("WAVEGEN_CACHE_DIR", str(tmp_path / "cache"))
    # Each call as in a new process: no transform built, so the kernel is fetched again.
    monkeypatch.setattr(artifact, "_LOADED", {})
    plain = wavegen.build(spec)(x)[0]
    monkeypatch.setenv("WAVEGEN_KERNEL_OVERRIDE", str(tmp_path))
    monkeypatch.setattr(artifact, "_LOADED", {})
    with pytest.warns(UserWarning, match="wg_analysis_w_cpu_float64.cpp instead of the "
                                         "generated source"):
        edited = wavegen.build(spec)(x)[0]
    assert torch.equal(edited, 2 * plain)
    sources = [(p / "source.cpp").read_text() for p in (tmp_path / "cache").iterdir()
               if p.name.startswith("wg_analysis_w_cpu_float64")]
    assert len(sources) == 2 and any("hand edit" in s for s in sources)


def test_an_edit_to_a_planner_misses_and_to_the_layers_hits(tmp_path):
    """The code digest covers code generation only: a copy of the package whose layers
    (nn.py) were edited hits the entry the original built; one whose planner was edited
    misses."""
    copy = tmp_path / "copy"
    shutil.copytree(Path(wavegen.__file__).parent, copy / "wavegen",
                    ignore=shutil.ignore_patterns("__pycache__"))
    script = "import sys; sys.path.insert(0, sys.argv[1]); " + BUILD_SCRIPT.replace(
        "import json, sys,", "import json,")
    cache_dir = tmp_path / "cache"

    def compiles():
        env = {**os.environ, "WAVEGEN_CACHE_DIR": str(cache_dir)}
        proc = subprocess.run([sys.executable, "-c", script, str(copy)], env=env,
                              capture_output=True, text=True, cwd=ROOT)
        assert proc.returncode == 0, proc.stderr
        return json.loads(proc.stdout.strip().splitlines()[-1])["compiles"]

    assert compiles() == 2                      # the height and the width pass
    for name, expected in (("nn.py", 0), ("plan.py", 2)):
        edited = copy / "wavegen" / name
        edited.write_text(edited.read_text() + f"\n# an edit to {name}\n")
        assert compiles() == expected, name


def test_a_kernel_compiles_once_for_every_spec_that_uses_it(tmp_path, monkeypatch):
    """Kernels are cache entries of their own: a forward compiles the kernels it runs, its
    backward only the adjoint kernels, and a spec with other levels compiles nothing."""
    monkeypatch.setenv("WAVEGEN_CACHE_DIR", str(tmp_path))
    artifact._LOADED.clear()
    x = torch.randn(1, 1, 16, 16, requires_grad=True)
    before = cache.compiles
    yl, yh = wavegen.nn.DTCWTForward(J=2, biort="legall", qshift="qshift_a")(x)
    assert cache.compiles == before + 2             # the level-1 and q-shift analysis
    (yl.sum() + sum(h.sum() for h in yh)).backward()
    assert cache.compiles == before + 4             # and their adjoints
    wavegen.nn.DTCWTForward(J=3, biort="legall", qshift="qshift_a")(x)
    wavegen.nn.DWTForward(J=2, wave="db2")(x)
    assert cache.compiles == before + 5             # the DWT's fused level
    wavegen.nn.DWTForward(J=3, wave="db2")(x)
    assert cache.compiles == before + 5
