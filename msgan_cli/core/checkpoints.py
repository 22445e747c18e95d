"""Checkpoint files: written atomically, read with `torch.load(..., weights_only=True)` after their
archive's checksums are verified.

A run's checkpoint holds everything a resume needs (train/resume.py) and the resolved config, as
plain tensors, numbers, strings, lists and dicts; the metrics' cached classifiers use the same files.
"""
from __future__ import annotations

import io
import os
import zipfile
from pathlib import Path

import torch

from msgan_cli.core.jsonfiles import temporary_beside
from msgan_cli.errors import UserError

CHECKPOINT_FORMAT = 1


def save_checkpoint(state: dict, path: Path) -> None:
    """Write to a temporary file beside `path`, flush it to disk, then rename over `path`.

    A rename within one folder is atomic, so a kill at any moment leaves either the previous
    checkpoint or the new one, never a half-written file under the real name. The archive is built in
    memory first and written with one plain write: a full disk is then the OS's OSError (ENOSPC), said
    in one sentence, rather than torch's writer failing mid-archive with a chained RuntimeError.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = temporary_beside(path)
    archive = io.BytesIO()
    torch.save({"format": CHECKPOINT_FORMAT, **state}, archive)
    try:
        with open(temporary, "wb") as f:
            f.write(archive.getbuffer())
            f.flush()
            os.fsync(f.fileno())
        os.replace(temporary, path)
    except BaseException as error:
        temporary.unlink(missing_ok=True)   # the previous file stays; no stray half-written copy either
        if isinstance(error, OSError):     # disk full, quota, read-only: the user can fix it
            raise UserError(f"The checkpoint {path} could not be written ({error.strerror or error}); the previous "
                            f"one is intact. Free space there (or choose another hydra.run.dir), then run the "
                            f"same command again to resume.") from None
        raise
    directory = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(directory)
    finally:
        os.close(directory)


def load_checkpoint(path: Path, map_location: str | torch.device = "cpu") -> dict:
    """Load a checkpoint; an unreadable one is a UserError that says how to proceed (nothing is deleted).
    The archive's checksums are verified first: torch.load would read damaged tensor bytes silently."""
    problem = archive_problem(path)
    if problem is None:
        try:
            state = torch.load(path, map_location=map_location, weights_only=True)
        except Exception:  # any failure to unpickle means the file is not a usable checkpoint
            problem = "it holds objects other than tensors, numbers and strings, so msgan did not write it"
    if problem is not None:
        raise UserError(f"Checkpoint {path} cannot be read: {problem}. Move it away to start this run afresh "
                        f"(nothing was deleted).")
    if not isinstance(state, dict) or state.get("format") != CHECKPOINT_FORMAT:
        raise UserError(f"{path} is not a msgan checkpoint of format {CHECKPOINT_FORMAT}: move it away to start afresh.")
    return state


def archive_problem(path: Path) -> str | None:
    """What is wrong with a checkpoint file as an archive, in our words (torch's own messages are about
    its internals), or None when it is whole and every entry's checksum matches."""
    size = path.stat().st_size
    if size == 0:
        return "the file is empty"
    if not zipfile.is_zipfile(path):
        with open(path, "rb") as f:
            starts_as_zip = f.read(4) == b"PK\x03\x04"
        if starts_as_zip:   # the archive's directory, at its end, is missing or broken
            return f"it is a PyTorch checkpoint cut short or damaged at its end ({size:,} bytes)"
        return f"it is not a PyTorch checkpoint (a zip archive), {size:,} bytes of something else"
    try:
        with zipfile.ZipFile(path) as archive:
            damaged = archive.testzip()
    except (zipfile.BadZipFile, OSError, EOFError) as error:
        return f"the archive is damaged ({error})"
    return None if damaged is None else f"its entry {damaged} is damaged (checksum mismatch)"
