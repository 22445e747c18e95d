"""The documentation that ships resolves: every reference the code and configs make to docs/methods.md
names a section it has, the README's links reach files (and methods.md sections) that exist, and
nothing cites the notes file the methods page replaced. (mkdocs build --strict checks the site's own
links in CI.)"""
from __future__ import annotations

import re
import subprocess
from pathlib import Path

ROOT = Path(__file__).parents[1]
METHODS = ROOT / "docs" / "methods.md"
# `docs/methods.md#mode-seeking`, also `docs/methods.md#data-formats and #stargan`
REFERENCE = re.compile(r"docs/methods\.md#([a-z0-9-]+)((?: and #[a-z0-9-]+)*)")


def shipped_files() -> list[Path]:
    listed = subprocess.run(["git", "ls-files", "msgan_cli", "conf", "scripts", "tests", ".ci", "README.md", "docs"],
                            cwd=ROOT, capture_output=True, text=True).stdout.split()
    return [ROOT / name for name in listed if (ROOT / name).suffix in (".py", ".yaml", ".sh", ".md", "")
            and (ROOT / name).is_file()]


def section_ids() -> set[str]:
    return set(re.findall(r"\{#([a-z0-9-]+)\}", METHODS.read_text()))


def test_every_reference_to_the_methods_page_names_one_of_its_sections():
    ids, missing = section_ids(), []
    for path in shipped_files():
        for match in REFERENCE.finditer(path.read_text()):
            for anchor in [match[1], *re.findall(r"#([a-z0-9-]+)", match[2])]:
                if anchor not in ids:
                    missing.append(f"{path.relative_to(ROOT)}: #{anchor}")
    assert not missing, "no such section in docs/methods.md:\n" + "\n".join(missing)


def test_nothing_cites_the_notes_file_the_methods_page_replaced():
    citing = [str(p.relative_to(ROOT)) for p in shipped_files() if p.name != Path(__file__).name
              and "METHODS.md" in p.read_text()]
    assert not citing, f"cite docs/methods.md#<section> instead: {citing}"


def test_the_readme_links_reach_what_exists():
    broken = []
    for target in re.findall(r"\]\(([^)#\s]+)(?:#([^)\s]+))?\)", (ROOT / "README.md").read_text()):
        path, anchor = target
        if path.startswith(("http://", "https://")):
            continue
        if not (ROOT / path).exists():
            broken.append(path)
        elif anchor and path == "docs/methods.md" and anchor not in section_ids():
            broken.append(f"{path}#{anchor}")
    assert not broken, broken


def test_the_project_speaks_to_users_not_of_how_it_was_made():
    talk = re.compile(r"earlier session|previous session|this session|sessions that|was lent to|no gpu was lent|"
                      r"issue \d+", re.IGNORECASE)
    found = [f"{p.relative_to(ROOT)}: {line.strip()[:100]}" for p in shipped_files()
             if p.suffix in (".md", ".py", ".yaml") and p.name != Path(__file__).name
             for line in p.read_text().splitlines() if talk.search(line)]
    assert not found, "\n".join(found)
