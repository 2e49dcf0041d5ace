"""The Kingsbury filter tables wavegen ships equal the dtcwt package's, bit for bit."""
import dtcwt.coeffs
import numpy as np

from wavegen.kingsbury import BIORT, BIORT_KEYS, QSHIFT, QSHIFT_KEYS, filter_set


def test_shipped_tables_equal_the_dtcwt_package_bit_for_bit():
    for names, keys, load in ((BIORT, BIORT_KEYS, dtcwt.coeffs.biort),
                              (QSHIFT, QSHIFT_KEYS, dtcwt.coeffs.qshift)):
        for name in names:
            reference = load(name)                 # dtcwt's tuple order: keys[:len]
            ours = filter_set(name, "biort" if keys is BIORT_KEYS else "qshift")
            assert sorted(k for k, _ in ours.taps) == sorted(keys[:len(reference)]), name
            for key, ref in zip(keys, reference):
                got = np.asarray(ours[key], dtype=np.float64)
                ref = np.asarray(ref, dtype=np.float64).ravel()
                assert got.tobytes() == ref.tobytes(), (name, key)
