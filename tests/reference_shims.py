"""Compatibility shims for the reference libraries on today's NumPy and setuptools
(../shared/contract.md). They live here, in the test harness, and never in wavegen: the
tests, the benchmarks and the demo import this module before the references."""
import sys
import types

import numpy as np

# pytorch_wavelets 1.3.0 imports pkg_resources (gone from setuptools >= 81) to read its
# DTCWT tables; a stand-in with the one function it uses keeps the reference importable.
try:
    import pkg_resources  # noqa: F401
except ImportError:
    import importlib.resources

    def _resource_stream(package, name):
        return importlib.resources.files(package).joinpath(name).open("rb")

    sys.modules["pkg_resources"] = types.SimpleNamespace(resource_stream=_resource_stream)

# dtcwt 0.14 calls np.asfarray and np.issubsctype, which NumPy 2 removed.
if not hasattr(np, "asfarray"):
    np.asfarray = lambda a, dtype=np.float64: np.asarray(a, dtype=dtype)
if not hasattr(np, "issubsctype"):
    np.issubsctype = lambda a, b: np.issubdtype(np.result_type(a), b)
