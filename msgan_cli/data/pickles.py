"""Pickles read without running code from them: a pickle can call any function its globals name, and
the pickled datasets (CIFAR-10's batches, StackGAN++'s CUB files) come from a user-given folder. The
unpickler rebuilds lists, dicts, strings and numbers, and only the globals a format needs (numpy's
array rebuilders); anything else stops with a sentence naming what the file asked for."""
from __future__ import annotations

import pickle
from typing import BinaryIO

# numpy's array rebuilders, under numpy 1's module name (what the files were written with) and numpy 2's.
NUMPY_ARRAYS = frozenset({("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
                          ("numpy", "ndarray"), ("numpy", "dtype")})


class RestrictedUnpickler(pickle.Unpickler):
    def __init__(self, file: BinaryIO, allowed: frozenset[tuple[str, str]], holds: str, **options):
        super().__init__(file, **options)
        self.allowed, self.holds = allowed, holds

    def find_class(self, module: str, name: str):
        if (module, name) not in self.allowed:
            raise pickle.UnpicklingError(f"it asks to load {module}.{name}, which {self.holds} never holds")
        return super().find_class(module, name)
