"""Image files under a folder, for the formats that read folders (image_folder, paired_folder, ...):
where a dataset's folder is, which files count as images, and which errors mean "this file is not a
readable image"."""
from __future__ import annotations

from pathlib import Path

from PIL import UnidentifiedImageError

from msgan_cli.errors import UserError

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".webp"}
# What PIL raises for a file that is not an image, is truncated or is damaged.
UNREADABLE_IMAGE = (OSError, UnidentifiedImageError, ValueError)


def image_files(folder: Path) -> list[Path]:
    """The image files under `folder` (recursively), sorted."""
    return sorted(p for p in folder.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)


def suffix_list() -> str:
    return ", ".join(sorted(IMAGE_SUFFIXES))


def dataset_root(cfg, name: str, layout: str) -> Path:
    """`dataset.root` as a path; a format that reads files cannot guess it, so its absence is the
    sentence that says what the folder holds (`layout`)."""
    if cfg.root is None:
        raise UserError(f"dataset={name} needs dataset.root=<{layout}>.")
    return Path(str(cfg.root)).expanduser()


def path_or(option, default: Path) -> Path:
    """A path option that may be left empty for its place in the dataset's usual layout."""
    return Path(str(option)).expanduser() if option else default
