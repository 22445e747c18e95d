"""Image files under a folder, for the formats that read folders (image_folder, paired_folder): which
files count as images, and which errors mean "this file is not a readable image"."""
from __future__ import annotations

from pathlib import Path

from PIL import UnidentifiedImageError

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".webp"}
# What PIL raises for a file that is not an image, is truncated or is damaged.
UNREADABLE_IMAGE = (OSError, UnidentifiedImageError, ValueError)


def image_files(folder: Path) -> list[Path]:
    """The image files under `folder` (recursively), sorted."""
    return sorted(p for p in folder.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)


def suffix_list() -> str:
    return ", ".join(sorted(IMAGE_SUFFIXES))
