"""The code's references to the documentation resolve, and nothing cites the old design brief.

A reference is ``docs/<file>.md`` or ``docs/<file>.md#<anchor>`` anywhere in a tracked ``.py``,
``.yaml``, ``.ipynb``, ``Makefile`` or ``README.md`` file (``git ls-files``). It must name an
existing file and, with an anchor, a heading of that file, by the slug GitHub gives the heading
(:func:`slug`).
"""

from __future__ import annotations

import re
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"

REFERENCE = re.compile(r"(?<![\w./-])docs/((?:[\w-]+/)*[\w-]+\.md)(?:#([\w-]+))?")
"""``docs/<file>.md`` with an optional ``#<anchor>``; not part of a longer path or URL."""
HEADING = re.compile(r"^(#{1,6})\s+(.+?)\s*#*\s*$")
FENCE = re.compile(r"^\s*(```|~~~)")
OLD_BRIEF = "DESIGN" + ".md"
"""The design brief that lived outside the repository (spelt in two parts: this file is code)."""

REFERENCE_SUFFIXES = (".py", ".yaml", ".yml", ".ipynb")
REFERENCE_NAMES = ("Makefile", "README.md")
CODE_SUFFIXES = (".py", ".yaml", ".yml", ".ipynb", ".toml")
CODE_NAMES = ("Makefile",)


def slug(heading: str) -> str:
    """GitHub's anchor of a Markdown heading: lowercase, punctuation other than ``-`` and ``_``
    dropped (inline-code backticks included), each space turned into ``-``."""
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return text.replace(" ", "-")


def heading_slugs(markdown: str) -> set[str]:
    """The anchors of every heading outside fenced code blocks; a repeated slug gets ``-1``,
    ``-2``... as on GitHub."""
    seen: dict[str, int] = {}
    slugs: set[str] = set()
    in_fence = False
    for line in markdown.splitlines():
        if FENCE.match(line):
            in_fence = not in_fence
            continue
        match = None if in_fence else HEADING.match(line)
        if match is None:
            continue
        base = slug(match.group(2))
        count = seen.get(base, 0)
        seen[base] = count + 1
        slugs.add(base if count == 0 else f"{base}-{count}")
    return slugs


def tracked_files(suffixes: tuple[str, ...], names: tuple[str, ...]) -> list[Path]:
    """Tracked files of the project with one of ``suffixes`` or ``names`` that exist on disk."""
    try:
        out = subprocess.run(
            ["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True, timeout=60
        ).stdout.decode()
    except (OSError, subprocess.SubprocessError) as exc:
        pytest.skip(f"git ls-files is not available here: {exc}")
    paths = [ROOT / name for name in out.split("\0") if name]
    return [p for p in paths if (p.suffix in suffixes or p.name in names) and p.is_file()]


def numbered_lines(path: Path) -> Iterator[tuple[int, str]]:
    """``(1-based line number, text)`` of a text file, as an editor shows them."""
    text = path.read_text(encoding="utf-8", errors="replace")
    yield from enumerate(text.splitlines(), start=1)


def references() -> list[tuple[str, int, str, str | None]]:
    """Every ``(file, line, docs file, anchor or None)`` reference of the tracked files."""
    found = []
    for path in tracked_files(REFERENCE_SUFFIXES, REFERENCE_NAMES):
        where = path.relative_to(ROOT).as_posix()
        for number, line in numbered_lines(path):
            for match in REFERENCE.finditer(line):
                found.append((where, number, match.group(1), match.group(2)))
    return found


def test_every_docs_reference_names_an_existing_file_and_heading():
    refs = references()
    assert refs, "no docs/<file>.md reference found in the tracked code"
    anchors: dict[str, set[str]] = {}
    bad = []
    for where, number, doc, anchor in refs:
        target = DOCS / doc
        if not target.is_file():
            bad.append(f"{where}:{number}: docs/{doc} does not exist")
            continue
        if anchor is None:
            continue
        if doc not in anchors:
            anchors[doc] = heading_slugs(target.read_text(encoding="utf-8"))
        if anchor not in anchors[doc]:
            known = ", ".join(sorted(anchors[doc]))
            bad.append(f"{where}:{number}: docs/{doc} has no heading #{anchor} (it has: {known})")
    assert not bad, "broken documentation references:\n" + "\n".join(bad)


def test_no_code_cites_the_old_design_brief():
    bad = [
        f"{path.relative_to(ROOT).as_posix()}:{number}: {line.strip()}"
        for path in tracked_files(CODE_SUFFIXES, CODE_NAMES)
        for number, line in numbered_lines(path)
        if OLD_BRIEF in line
    ]
    assert not bad, f"cite docs/<file>.md#<heading> instead of {OLD_BRIEF}:\n" + "\n".join(bad)


@pytest.mark.parametrize(
    ("heading", "expected"),
    [
        ("The agent's orders", "the-agents-orders"),
        ("Standard errors and recovery", "standard-errors-and-recovery"),
        ("Seeding and reproducibility", "seeding-and-reproducibility"),
        ("`Policy` interface", "policy-interface"),
        ("Env API", "env-api"),
        ("Trade-off: speed/accuracy (v2)", "trade-off-speedaccuracy-v2"),
        ("snake_case names", "snake_case-names"),
    ],
)
def test_slug_is_githubs_heading_anchor(heading, expected):
    assert slug(heading) == expected


def test_heading_slugs_skip_code_blocks_and_number_repeats():
    markdown = "\n".join(
        [
            "# Title",
            "## Usage",
            "```bash",
            "# not a heading",
            "```",
            "## Usage",
            "### The agent's orders",
        ]
    )
    assert heading_slugs(markdown) == {"title", "usage", "usage-1", "the-agents-orders"}
