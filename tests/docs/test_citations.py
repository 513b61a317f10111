"""Code, tests and docs cite only what ships in the repository."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[2]
#: A document outside the repository (the design notes beside it), in any spelling seen so far.
OUTSIDE = re.compile(r"DESIGN(\.md| \d| section)|\.\./shared/")
#: ``docs/<name>.md, section <n>`` as the code cites the project's documents.
SECTION_CITATION = re.compile(r"(docs/[\w-]+\.md), section (\d+)")


def tracked_text_files() -> list[Path]:
    out = subprocess.run(["git", "ls-files", "-co", "--exclude-standard"], cwd=PROJECT_ROOT, capture_output=True, text=True, check=True).stdout
    files = []
    for name in out.splitlines():
        path = PROJECT_ROOT / name
        if path.is_file() and path.suffix in {".py", ".md", ".txt", ".toml", ".yaml", ".yml", ".json", ".sh", ""}:
            files.append(path)
    return files


def test_nothing_cites_a_document_outside_the_repository():
    this = Path(__file__).resolve()
    found = [
        f"{path.relative_to(PROJECT_ROOT)}:{n}: {line.strip()}"
        for path in tracked_text_files() if path != this
        for n, line in enumerate(path.read_text(errors="replace").splitlines(), 1)
        if OUTSIDE.search(line)
    ]
    assert not found, "\n".join(found)


def test_every_cited_section_of_a_project_document_exists():
    cited = {
        m.groups()
        for path in tracked_text_files()
        for m in SECTION_CITATION.finditer(path.read_text(errors="replace"))
    }
    assert cited, "the code cites docs/architecture.md"
    for doc, section in cited:
        text = (PROJECT_ROOT / doc).read_text()
        assert re.search(rf"^## {section}\. ", text, re.M), f"{doc} has no section {section}"
