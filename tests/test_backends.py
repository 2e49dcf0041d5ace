"""The backends' contracts that a GPU run depends on, checked without one: the packed
argument buffer of every kernel of every family matches its rendered signature, a launch
gives exactly the declared arguments, the CUDA launch passes that buffer and PyTorch's
stream to cuLaunchKernel, and NVRTC is chosen no newer than the driver."""
import dataclasses
import ctypes
import re
import sys
import types

import pytest
import torch

import wavegen
from wavegen import render
from wavegen.backends import args_struct, cuda, nvrtc
from wavegen.program import Program

C_TYPES = {ctypes.c_void_p: "pointer", ctypes.c_longlong: "wg_int", ctypes.c_double: "double"}

FAMILIES = [wavegen.Spec("dwt2d", "db3", 2, "smooth"),
            wavegen.Spec("dwt2d", "db3", 2, "smooth").adjoint(),
            wavegen.Spec("idwt1d", "sym4", 2, "periodization"),
            wavegen.Spec("dtcwt2d", biort="near_sym_b_bp", qshift="qshift_b_bp", levels=2),
            wavegen.Spec("idtcwt2d", biort="legall", qshift="qshift_a", levels=2),
            wavegen.Spec("scatter2d", levels=2, order=2, qshift="qshift_a"),
            wavegen.Spec("scatter2d", levels=2, order=2, qshift=None)]


def rendered_parameters(source: str, symbol: str) -> list[str]:
    """The C types of a function's parameters, from its definition in ``source`` (CUDA
    declares pointers as WG_GLOBAL(type), which holds no comma)."""
    match = re.search(rf"\b{re.escape(symbol)}\((.*?)\)\s*\{{", source, re.DOTALL)
    assert match, symbol
    kinds = []
    for param in match.group(1).split(","):
        param = " ".join(param.split())
        kinds.append("pointer" if "*" in param or param.startswith("WG_GLOBAL(")
                     else param.split()[0])
    return kinds


@pytest.mark.parametrize("spec", FAMILIES, ids=lambda s: s.readable_name())
def test_packed_arguments_match_every_rendered_signature(spec):
    """For every kernel (both directions), the struct the backends pack has the types and
    count of the rendered kernel's parameters (CUDA) and of the generated args struct the
    host entry points take (every launch names its arguments, program.Launch)."""
    plan = wavegen.build(spec).plan
    for kernel in plan.library_kernels.values():
        struct = args_struct(kernel.params)
        packed = [C_TYPES[field[1]] for field in struct._fields_]
        for target, dtype in (("cuda", "float32"), ("cpu", "float64")):
            source = render.render_kernel(plan.kernel_templates, kernel, target, dtype)
            name = f"{kernel.name}_{render.DTYPES[dtype][3]}"
            assert rendered_parameters(source, name) == packed, (kernel.name, target)
            if target == "cpu":
                members = re.search(rf"struct {kernel.name}_args \{{([^}}]*)\}};", source)
                declared = [m.strip() for m in members.group(1).split(";") if m.strip()]
                assert ["pointer" if "*" in m else m.split()[0] for m in declared] == packed
                assert [m.split()[-1] for m in declared] == [f[0] for f in struct._fields_]


@pytest.mark.parametrize("spec", FAMILIES, ids=lambda s: s.readable_name())
def test_the_declaration_is_compiled_fields_then_run_time_params(spec):
    """What a kernel compiles in is its record's fields, and the source and cache keys hold
    those and nothing else; the run-time part is what the signature takes."""
    for kernel in wavegen.build(spec).plan.library_kernels.values():
        compiled = [p.name for p in kernel.declaration if p.compiled]
        assert compiled == [f.name for f in dataclasses.fields(kernel)]
        assert tuple(p for p in kernel.declaration if not p.compiled) == kernel.params
        assert set(kernel.compiled) == set(compiled)


def test_a_launch_gives_exactly_the_declared_arguments():
    kernel = wavegen.build(wavegen.Spec("dwt1d", "db2", 1, "zero")).plan.kernels["wg_analysis_w"]
    program = Program([((1, 1, 8), (8, 8, 1))])
    x, c = program.buffer("x", (1, 1, 1, 8)), program.buffer("c", (1, 1, 1, 5))
    args = dict(in0=x.at(sp=8, sr=8), out0=c.at(sp=5, sr=5), out1=c.at(sp=5, sr=5), P=1, M=1,
                N=8, K=5)
    program.launch(kernel, 1, 256, **args)
    assert len(program.steps) == 1
    del args["K"]
    with pytest.raises(AssertionError, match=r"gives \[\] .* lacks \['K'\]"):
        program.launch(kernel, 1, 256, **args)
    with pytest.raises(AssertionError, match=r"gives \['Q'\]"):
        program.launch(kernel, 1, 256, **args, K=5, Q=3)
    args.update(K=5, in0=x.at(sp=8))
    with pytest.raises(AssertionError, match=r"view in0 has strides \['sp'\]; the kernel "
                                             r"declares \['sp', 'sr'\]"):
        program.launch(kernel, 1, 256, **args)
    args["in0"] = x.at(sp=8, sr=8)
    program.launch(kernel, 0, 256, **args)          # an empty batch launches nothing
    assert len(program.steps) == 1


class FakeDriver:
    """cupy.cuda.driver's module and launch calls, recorded."""

    def __init__(self):
        self.launches = []

    def moduleLoadData(self, image):
        return 0x1000

    def moduleGetFunction(self, module, name):
        self.name = name
        return 0x2000

    def launchKernel(self, f, gx, gy, gz, bx, by, bz, shared, stream, params, extra):
        words = (ctypes.c_void_p * 5).from_address(extra)
        size = ctypes.c_size_t.from_address(words[3]).value
        buffer = ctypes.string_at(words[1], size)
        self.launches.append(dict(f=f, grid=(gx, gy, gz), block=(bx, by, bz), shared=shared,
                                  stream=stream, params=params, keys=(words[0], words[2],
                                                                      words[4]),
                                  buffer=buffer))


def test_cuda_launch_packs_the_buffer_and_uses_the_current_stream(monkeypatch, tmp_path):
    driver = FakeDriver()
    monkeypatch.setitem(sys.modules, "cupy", types.SimpleNamespace(
        cuda=types.SimpleNamespace(driver=driver)))
    monkeypatch.setattr(torch.cuda, "device", lambda index: __import__("contextlib").nullcontext())
    monkeypatch.setattr(torch.cuda, "synchronize", lambda *a: None)
    monkeypatch.setattr(torch.cuda, "current_device", lambda: 0)
    monkeypatch.setattr(cuda, "_current_stream", lambda index: 0xABC)
    plan = wavegen.build(wavegen.Spec("dtcwt2d", biort="legall", qshift="qshift_a",
                                      levels=1)).plan
    kernel = next(iter(plan.library_kernels.values()))
    cubin = tmp_path / "k.cubin"
    cubin.write_bytes(b"\0")
    launch = cuda.load(cubin, kernel, "float32", 0)
    args = list(range(1, len(kernel.params))) + [0.25]
    launch(args_struct(kernel.params)(*args), 7, 256)
    (call,) = driver.launches
    assert driver.name == f"{kernel.name}_f32"
    assert call["f"] == 0x2000 and call["stream"] == 0xABC and call["params"] == 0
    assert call["grid"] == (7, 1, 1) and call["block"] == (256, 1, 1) and call["shared"] == 0
    # CU_LAUNCH_PARAM_BUFFER_POINTER, CU_LAUNCH_PARAM_BUFFER_SIZE, CU_LAUNCH_PARAM_END
    assert call["keys"] == (1, 2, None)
    assert call["buffer"] == bytes(args_struct(kernel.params)(*args))
    assert len(call["buffer"]) == 8 * len(kernel.params)       # every parameter 8 bytes


@pytest.mark.parametrize("driver,versions,expected", [
    (None, [(13, 0), (12, 9)], "a"),            # no driver: the first that loads
    ((12, 4), [(13, 0), (12, 9), (12, 4)], "c"),  # the toolkit newer than the driver skipped
    ((13, 1), [(13, 0), (12, 9)], "a"),
])
def test_nvrtc_is_chosen_no_newer_than_the_driver(driver, versions, expected):
    names = "abc"[:len(versions)]
    libraries = {n: types.SimpleNamespace(name=n, version=v) for n, v in zip(names, versions)}
    chosen = nvrtc.select(names, libraries.__getitem__, lambda lib: lib.version, driver)
    assert chosen.name == expected


def test_nvrtc_selection_says_why_nothing_fits():
    def load(path):
        if path == "missing":
            raise OSError("cannot open shared object file")
        return types.SimpleNamespace(version=(13, 0))
    with pytest.raises(nvrtc.NvrtcUnavailable, match=r"missing: cannot open.*new: NVRTC 13.0 "
                                                     r"is newer than the driver's CUDA 12.2"):
        nvrtc.select(["missing", "new"], load, lambda lib: lib.version, (12, 2))


def test_the_cuda_13_wheel_layout_is_searched(monkeypatch, tmp_path):
    root = tmp_path / "nvidia"
    for layout in ("cuda_nvrtc", "cu13"):
        (root / layout / "lib").mkdir(parents=True)
        (root / layout / "lib" / "libnvrtc.so.1x").write_bytes(b"")
    monkeypatch.setitem(sys.modules, "nvidia", types.SimpleNamespace(__path__=[str(root)]))
    found = list(nvrtc._candidates())
    assert str(root / "cu13" / "lib" / "libnvrtc.so.1x") in found
    assert str(root / "cuda_nvrtc" / "lib" / "libnvrtc.so.1x") in found


def test_the_cuda_toolchain_key_has_the_driver(monkeypatch):
    monkeypatch.setattr(nvrtc, "driver_version", lambda: (12, 4))
    monkeypatch.setattr(nvrtc, "version", lambda: (12, 4))
    monkeypatch.setattr(cuda, "arch", lambda index: "sm_90")
    assert cuda.toolchain(0) == {"nvrtc": [12, 4], "arch": "sm_90", "driver": [12, 4]}


def test_a_program_per_layout_reused_and_shared_by_threads():
    """A call's program (runner.Program) is built once per geometry and input layout: a
    repeated call reuses it, bands in another layout get their own (the strides are baked
    in), and threads running one program concurrently do not share argument buffers.
    Outputs are compared bit for bit with the same call made alone."""
    t = wavegen.build(wavegen.Spec("dtcwt2d", biort="legall", qshift="qshift_a", levels=2))
    inv = t.inverse()
    x = torch.randn(2, 3, 20, 24, dtype=torch.float64)
    yl, yh = t(x)
    expected = inv(yl, yh)
    module = inv.module("cpu", "float64", x.device)
    count = len(module.programs._programs)
    assert torch.equal(inv(yl, yh), expected)
    assert len(module.programs._programs) == count
    # The same bands stored orientation-last: other strides, another program, same values.
    moved = [h.movedim(2, -1).contiguous().movedim(-1, 2) for h in yh]
    assert moved[0].stride() != yh[0].stride()
    assert torch.equal(inv(yl, moved), expected)
    assert len(module.programs._programs) == count + 1

    inputs = [torch.randn(2, 3, 20, 24, dtype=torch.float64) for _ in range(8)]
    alone = [t(z)[0] for z in inputs]
    with __import__("concurrent.futures").futures.ThreadPoolExecutor(4) as pool:
        together = list(pool.map(lambda z: t(z)[0], inputs * 4))
    for a, b in zip(alone * 4, together):
        assert torch.equal(a, b)
