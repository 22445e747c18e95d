"""The documentation that ships resolves: every reference the code, configs and tests make to a docs page
(`docs/methods.md#mode-seeking`, `docs/running.md#frontier`) names a page and a section it has, the
README's links reach files and sections that exist, and nothing cites the notes files the pages
replaced. (mkdocs build --strict checks the site's own links in CI.)"""
from __future__ import annotations

import re
import subprocess
from pathlib import Path

ROOT = Path(__file__).parents[1]
# `docs/methods.md#mode-seeking`, also `docs/methods.md#data-formats and #stargan`
REFERENCE = re.compile(r"(docs/[a-z0-9_/]+\.md)#([a-z0-9-]+)((?: and #[a-z0-9-]+)*)")


def shipped_files() -> list[Path]:
    listed = subprocess.run(["git", "ls-files", "msgan_cli", "conf", "scripts", "tests", ".ci", "README.md", "docs"],
                            cwd=ROOT, capture_output=True, text=True, check=True).stdout.split()
    files = [ROOT / name for name in listed if (ROOT / name).suffix in (".py", ".yaml", ".sh", ".md", "")
             and (ROOT / name).is_file()]
    assert len(files) > 100, f"git ls-files listed {len(files)} files: run the tests in the repository"
    return files


def section_ids(page: Path) -> set[str]:
    """A page's anchors: the explicit ids (`## Title {#id}`, `**term**{#id}`) and MkDocs' ids of headings without one."""
    text = page.read_text()
    explicit = set(re.findall(r"\{#([a-z0-9-]+)\}", text))
    headings = re.findall(r"^#+ (.*?)\s*$", text, flags=re.MULTILINE)
    generated = {re.sub(r"[\s]+", "-", re.sub(r"[^\w\s-]", "", heading.lower())).strip("-")
                 for heading in headings if "{#" not in heading}
    return explicit | generated


def test_every_reference_to_a_docs_page_names_one_of_its_sections():
    missing = []
    for path in shipped_files():
        for match in REFERENCE.finditer(path.read_text()):
            page = ROOT / match[1]
            if not page.is_file():
                missing.append(f"{path.relative_to(ROOT)}: {match[1]} (no such page)")
                continue
            ids = section_ids(page)
            for anchor in [match[2], *re.findall(r"#([a-z0-9-]+)", match[3])]:
                if anchor not in ids:
                    missing.append(f"{path.relative_to(ROOT)}: {match[1]}#{anchor}")
    assert not missing, "no such section:\n" + "\n".join(missing)


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
        elif anchor and path.endswith(".md") and anchor not in section_ids(ROOT / path):
            broken.append(f"{path}#{anchor}")
    assert not broken, broken


def test_the_project_speaks_to_users_not_of_how_it_was_made():
    talk = re.compile(r"earlier session|previous session|this session|sessions that|was lent to|no gpu was lent|"
                      r"issue \d+|the probe's|the reviewer|DESIGN\.md|\.\./shared/", re.IGNORECASE)
    found = [f"{p.relative_to(ROOT)}: {line.strip()[:100]}" for p in shipped_files()
             if p.suffix in (".md", ".py", ".yaml") and p.name != Path(__file__).name
             for line in p.read_text().splitlines() if talk.search(line)]
    assert not found, "\n".join(found)
