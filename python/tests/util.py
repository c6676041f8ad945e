"""Shared helpers for the commy Python tests."""

import os
import shutil
import tempfile
import unittest


def shm_dir():
    """A fresh directory for segment files (in /dev/shm when it exists: RAM, like production)."""
    base = "/dev/shm" if os.path.isdir("/dev/shm") and os.access("/dev/shm", os.W_OK) else None
    return tempfile.mkdtemp(prefix="commy-py-", dir=base)


class SegmentTest(unittest.TestCase):
    """Gives each test its own directory and a path() for segment files."""

    def setUp(self):
        self.dir = shm_dir()
        self._n = 0

    def tearDown(self):
        shutil.rmtree(self.dir, ignore_errors=True)

    def path(self, name=None):
        self._n += 1
        return os.path.join(self.dir, name or f"seg{self._n}.mem")
