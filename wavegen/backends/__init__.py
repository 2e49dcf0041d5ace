"""The backends: compile a kernel's source for a target and load it (host.py: the CPU and
the emulated CUDA target; cuda.py + nvrtc.py: CUDA). Both pass a kernel's arguments packed
in one buffer whose layout comes from the kernel's parameter declaration (plan.Param)."""
from __future__ import annotations

import ctypes
import functools

KIND_CTYPES = {"in": ctypes.c_void_p, "out": ctypes.c_void_p, "taps": ctypes.c_void_p,
               "tap_grad": ctypes.c_void_p, "int": ctypes.c_longlong, "real": ctypes.c_double}


@functools.lru_cache(maxsize=None)
def args_struct(params) -> type:
    """The ctypes struct of a parameter list: the layout of the generated ``*_args`` struct
    of the host entry points and of the CUDA parameter buffer (natural alignment, in
    declaration order)."""
    return type("Args", (ctypes.Structure,),
                {"_fields_": [(p.name, KIND_CTYPES[p.kind]) for p in params]})
