"""A CPU stand-in for `torch.cuda.set_sync_debug_mode("error")`: inside `no_host_syncs()`, msgan's own
code may not call what would make the host wait for a GPU (reading a value back, or an operation
whose output shape depends on the data). Torch's own internals are not checked here (on the CPU
they cannot be told apart from what syncs on a GPU): the GPU test (`test_gpu.py`) checks everything,
where a GPU is lent.
"""
from __future__ import annotations

import sys
from pathlib import Path

import torch
from torch.overrides import TorchFunctionMode

import msgan_cli

PACKAGE = str(Path(msgan_cli.__file__).parent)

# Read a value back to the host.
READ_BACK = {"item", "tolist", "numpy", "cpu", "__bool__", "__float__", "__int__", "__index__", "__complex__"}
# An output whose shape depends on the values (the host waits to size it).
DATA_DEPENDENT_SHAPE = {"nonzero", "argwhere", "masked_select", "unique", "unique_consecutive", "repeat_interleave"}


class HostSync(AssertionError):
    pass


# torch's thin Python wrappers (Tensor.unique, torch.unique, the dispatch to a mode): their caller is the caller.
WRAPPERS = tuple(str(Path(torch.__file__).parent / name) for name in ("_tensor.py", "functional.py", "overrides.py"))


def called_from_package() -> str | None:
    """`file:line` of the msgan frame that called torch, when msgan called it directly (not through
    torch's own internals, such as an optimiser's step), else None."""
    frame = sys._getframe(2)   # the caller of __torch_function__
    while frame is not None and frame.f_code.co_filename in WRAPPERS:
        frame = frame.f_back
    if frame is not None and frame.f_code.co_filename.startswith(PACKAGE):
        return f"{frame.f_code.co_filename.removeprefix(PACKAGE + '/')}:{frame.f_lineno}"
    return None


def boolean_index(args) -> bool:
    index = args[1] if len(args) > 1 else None
    parts = index if isinstance(index, tuple) else (index,)
    return any(isinstance(p, torch.Tensor) and p.dtype == torch.bool for p in parts)


class no_host_syncs(TorchFunctionMode):
    """Raises HostSync at the first host synchronisation msgan's code asks for."""

    def __torch_function__(self, func, types, args=(), kwargs=None):
        name = getattr(func, "__name__", "")
        syncs = (name in READ_BACK or name in DATA_DEPENDENT_SHAPE or (name == "where" and len(args) == 1)
                 or (name == "__getitem__" and boolean_index(args)))
        if syncs and (where := called_from_package()) is not None:
            raise HostSync(f"{name} at msgan_cli/{where} synchronises with the host inside a step")
        return func(*args, **(kwargs or {}))
