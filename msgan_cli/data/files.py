"""Image files under a folder, for the formats that read folders (image_folder, paired_folder, ...):
where a dataset's folder is, which files count as images, which errors mean "this file is not a
readable image", and what a scan left out (`Skipped`, which the run's start line and run_info.json
report)."""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from PIL import Image, UnidentifiedImageError

from msgan_cli.errors import UserError

log = logging.getLogger(__name__)

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".webp"}
# What PIL raises for a file that is not an image, is truncated or is damaged.
UNREADABLE_IMAGE = (OSError, UnidentifiedImageError, ValueError)


def image_files(folder: Path) -> list[Path]:
    """The image files under `folder` (recursively), sorted."""
    return sorted(p for p in folder.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)


@dataclass
class Skipped:
    """What a dataset's scan left out: files with an image's extension that cannot be read (only with
    `dataset.skip_unreadable=true`; otherwise the first one stops the run), and files of another kind
    (`notes.txt` beside the images), which are not the dataset's."""

    unreadable: list[str] = field(default_factory=list)
    not_images: list[str] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.unreadable or self.not_images)

    def describe(self) -> str:
        parts = [f"{len(self.unreadable)} unreadable images skipped"] if self.unreadable else []
        parts += [f"{len(self.not_images)} files that are not images ({', '.join(self.not_examples())}) ignored"
                  ] if self.not_images else []
        return "; ".join(parts)

    def not_examples(self) -> list[str]:
        suffixes = sorted({Path(name).suffix or Path(name).name for name in self.not_images})
        return suffixes[:5] + (["..."] if len(suffixes) > 5 else [])

    def record(self) -> dict:
        """For run_info.json: the counts and the first files of each kind."""
        return {"unreadable": len(self.unreadable), "not_images": len(self.not_images),
                "unreadable_files": self.unreadable[:20], "not_image_files": self.not_images[:20]}


def scan_images(folder: Path, skip_unreadable: bool, skipped: Skipped,
                read: Callable[[Path], object] = lambda path: None) -> list[tuple[Path, object]]:
    """Every file under `folder` (recursively, sorted) with an image's extension that PIL opens, with
    `read(path)` of it (a loader's check or decode). Files of another kind are noted in `skipped`. A file
    with an image's extension that cannot be opened or read stops the run with a sentence naming it, unless
    `skip_unreadable`: a truncated image must not silently change the data a result is measured on.
    With `skip_unreadable` every file is decoded whole here, so that one cut short after a sound header is
    skipped and counted too (without it, a loader that reads only headers meets such a file when it
    decodes it, and stops the run there with a sentence naming it)."""
    found = []
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        if path.suffix.lower() not in IMAGE_SUFFIXES:
            skipped.not_images.append(str(path))
            continue
        try:
            with Image.open(path) as image:
                if skip_unreadable:
                    image.load()
            found.append((path, read(path)))
        except UNREADABLE_IMAGE as error:
            if not skip_unreadable:
                raise UserError(f"{path} cannot be read as an image ({error}). Replace or remove it, or add "
                                f"dataset.skip_unreadable=true to train without it (the run's record counts it)."
                                ) from None
            skipped.unreadable.append(str(path))
            log.warning("Skipping %s: not a readable image (%s)", path, error)
    return found


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
