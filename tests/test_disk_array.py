"""DiskArray: an array kept in an anonymous temporary file, read back bit for bit."""

from __future__ import annotations

import os
import pickle
import tempfile

import numpy as np
import pytest

from rednmf._memory import DiskArray


@pytest.mark.parametrize("order", ["C", "F"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_load_gives_the_array_back_bit_for_bit(order, dtype):
    a = np.asarray(np.random.default_rng(0).standard_normal((7, 130)), dtype=dtype, order=order)
    a[0, 0] = np.nextafter(dtype(1), dtype(2))
    parked = DiskArray(a)
    assert parked._array is None and parked.shape == a.shape and parked.dtype == a.dtype
    back = parked.load()
    np.testing.assert_array_equal(back, a)
    assert back.dtype == a.dtype and back.flags.f_contiguous == a.flags.f_contiguous
    np.testing.assert_array_equal(parked.load(), a)  # read again


def test_the_file_has_no_name_and_pickling_keeps_the_values(tmp_path, monkeypatch):
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    a = np.arange(12.0).reshape(3, 4)
    parked = DiskArray(a)
    assert os.listdir(tmp_path) == []  # unlinked at creation: nothing to clean up
    copy = pickle.loads(pickle.dumps(parked))
    assert isinstance(copy, DiskArray)
    np.testing.assert_array_equal(copy.load(), a)


def test_without_a_writable_temporary_folder_the_array_stays_in_memory(monkeypatch):
    def refuse(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(tempfile, "TemporaryFile", refuse)
    a = np.ones((2, 3), dtype=np.float32)
    parked = DiskArray(a)
    assert parked._array is a
    assert parked.load() is a
