"""Every documentation citation in the code resolves to a page and section of the repository's docs/.

Code comments cite the format pages as ``docs/formats/crashdump.md §4.1`` (or, before the citations were
re-pointed, the bare ``crashdump.md §4.1``), often followed by further sections of the same page
(``§2, §3``), and sometimes by a numbered item of the section (``§11 item 1``, ``§15.2 step 11``,
``§16 q.10``, ``§4 row 3``; ``§8.3`` may also mean item 3 of §8).  Other pages are cited by name
(``docs/sharing.md``, ``performance.md, "Building blocks"``).  This test reads the pages' headings,
numbered lists and table rows and checks each citation in memfs/, scripts/ and tests/:

- a section cited right after a page name (``crashdump.md §4.1``, ``xpress.md (§2.1, §4 row 8)``) must
  exist in that page;
- any other ``§N`` must exist in one of the format pages the same file names (all of them if it names
  none), since a file keeps citing the page it introduced;
- a cited item, step, question or row must exist in that section;
- a page cited by name must exist in docs/, and a quoted heading after it must be one of its headings.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
DOCS = REPO / "docs"
REQUIRED_PAGES = ("crashdump", "hibernation", "xpress")
"""Format pages the code has cited since before docs/ existed; later formats add their own pages."""
FORMAT_PAGES = tuple(sorted({p.stem for p in (DOCS / "formats").glob("*.md")} | set(REQUIRED_PAGES)))
SCANNED = ("memfs", "scripts", "tests")
SUFFIXES = {".py", ".c", ".h"}

_HEADING = re.compile(r"^(#{1,6})\s+(.*?)\s*$")
_HEADING_NUMBER = re.compile(r"^(\d+(?:\.\d+)*)\.?(?:\s|$)")
_LIST_ITEM = re.compile(r"^\s{0,4}(\d+)\.\s")
_TABLE_ROW = re.compile(r"^\|\s*(\d+)\s*\|")
_PARAGRAPH = re.compile(r"^(\d+(?:\.\d+)+)\s")  # "1.3 The central directory …": a numbered paragraph
_SECTION = r"§\s?(\d+(?:\.\d+)*)"
_ITEM = r"(?:\s+(?:items?|steps?|rows?)\s+(\d+)|\s+q\.(\d+))?"
_CITATION = re.compile(_SECTION + _ITEM)
_PAGE_NAME = re.compile(r"(?<![\w/.-])(?:docs/formats/)?(" + "|".join(FORMAT_PAGES) + r")\.md")
# A page name, then section citations separated only by punctuation, "and" or comment markers.
_CHAIN = re.compile(
    r"(?:docs/formats/)?(" + "|".join(FORMAT_PAGES) + r")\.md"
    r"((?:[\s(#*/,;–-]|and\b)*" + _SECTION + _ITEM + r"(?:(?:[\s,/;–-]|and\b)*" + _SECTION + _ITEM + r")*)"
)
# Any docs/ path, and the bare names of the project pages; an optional quoted heading follows.
_DOCS_PATH = re.compile(r"(?<![\w.-])docs/([\w/-]+)\.md(?:,\s*\"([^\"]+)\")?")
_BARE_PAGE = re.compile(r"(?<![\w/.-])(architecture|performance|sharing|benchmarks)\.md(?:,\s*\"([^\"]+)\")?")


@dataclass
class Page:
    """The section numbers of one docs page, with the numbered items and table rows of each."""

    headings: set[str] = field(default_factory=set)
    sections: dict[str, set[int]] = field(default_factory=dict)

    def resolves(self, section: str, item: int | None) -> bool:
        if section in self.sections:
            return item is None or item in self.sections[section]
        # "§8.3" for item 3 of §8 (a numbered list without sub-headings).
        parent, _, last = section.rpartition(".")
        listed = self.sections.get(parent, set()) if parent else set()
        return item is None and int(last) in listed


def parse_page(text: str) -> Page:
    """Headings, and for each numbered section the numbers of its list items and table rows."""
    page = Page()
    current: str | None = None
    in_fence = False
    for line in text.splitlines():
        if line.startswith("```"):
            in_fence = not in_fence
            continue
        if in_fence:
            continue
        match = _HEADING.match(line)
        if match:
            title = match.group(2)
            page.headings.add(title)
            number = _HEADING_NUMBER.match(title)
            current = number.group(1) if number else None
            if current is not None:
                page.sections.setdefault(current, set())
            continue
        paragraph = _PARAGRAPH.match(line)
        if paragraph:
            page.sections.setdefault(paragraph.group(1), set())
            continue
        if current is None:
            continue
        item = _LIST_ITEM.match(line) or _TABLE_ROW.match(line)
        if item:
            page.sections[current].add(int(item.group(1)))
    return page


def load_pages() -> dict[str, Page]:
    pages = {}
    for name in FORMAT_PAGES:
        path = DOCS / "formats" / f"{name}.md"
        pages[name] = parse_page(path.read_text()) if path.is_file() else Page()
    return pages


def _item(groups: tuple[str | None, str | None]) -> int | None:
    value = groups[0] or groups[1]
    return int(value) if value else None


def unresolved_citations(text: str, pages: dict[str, Page]) -> list[str]:
    """The format-page citations in ``text`` that name no existing section (or item) of their page."""
    problems: list[str] = []
    explicit: set[int] = set()
    for chain in _CHAIN.finditer(text):
        name = chain.group(1)
        start = chain.start(2)
        for cite in _CITATION.finditer(chain.group(2)):
            explicit.add(start + cite.start())
            section, item = cite.group(1), _item(cite.group(2, 3))
            if not pages[name].resolves(section, item):
                problems.append(f"{name}.md {cite.group(0)}")
    named = {m.group(1) for m in _PAGE_NAME.finditer(text)} or set(FORMAT_PAGES)
    for cite in _CITATION.finditer(text):
        if cite.start() in explicit:
            continue
        section, item = cite.group(1), _item(cite.group(2, 3))
        if not any(pages[name].resolves(section, item) for name in named):
            problems.append(f"{'/'.join(sorted(named))}.md {cite.group(0)}")
    return problems


def unresolved_page_references(text: str) -> list[str]:
    """Citations of other docs pages that do not exist, or whose quoted heading does not."""
    problems = []
    for ref in [*_DOCS_PATH.finditer(text), *_BARE_PAGE.finditer(text)]:
        name, heading = ref.group(1), ref.group(2)
        path = DOCS / f"{name}.md"
        missing_heading = heading and path.is_file() and heading not in parse_page(path.read_text()).headings
        if not path.is_file() or missing_heading:
            problems.append(ref.group(0))
    return problems


def source_files() -> list[Path]:
    files = []
    for top in SCANNED:
        files += [p for p in sorted((REPO / top).rglob("*")) if p.suffix in SUFFIXES and p.is_file()]
    return [p for p in files if p.resolve() != Path(__file__).resolve()]


@pytest.fixture(scope="module")
def pages() -> dict[str, Page]:
    return load_pages()


def test_format_pages_exist():
    for name in REQUIRED_PAGES:
        assert (DOCS / "formats" / f"{name}.md").is_file(), f"docs/formats/{name}.md is missing"


@pytest.mark.parametrize("path", source_files(), ids=lambda p: str(p.relative_to(REPO)))
def test_citations_resolve(path: Path, pages: dict[str, Page]):
    text = path.read_text(errors="replace")
    problems = unresolved_citations(text, pages) + unresolved_page_references(text)
    assert not problems, f"{path.relative_to(REPO)} cites what docs/ does not have: {problems}"


_BARE_CITATION = re.compile(
    r"(?<![\w/.-])(?:(?:" + "|".join(FORMAT_PAGES) + r")|architecture|performance|sharing|benchmarks)\.md"
)
_OUTSIDE = re.compile(r"shared/docs/")


@pytest.mark.parametrize(
    "path",
    [p for p in source_files() if p.parts[len(REPO.parts)] == "memfs"],
    ids=lambda p: str(p.relative_to(REPO)),
)
def test_package_cites_the_repository_docs_by_path(path: Path):
    """Under memfs/ a citation names the page by its path in the repository (``docs/formats/x.md``), so a
    reader of the code finds it, and nothing points at documents outside the repository."""
    text = path.read_text(errors="replace")
    bare = sorted({m.group(0) for m in _BARE_CITATION.finditer(text)})
    assert not bare, f"{path.relative_to(REPO)}: cite docs/… paths, not bare page names: {bare}"
    assert not _OUTSIDE.search(text), f"{path.relative_to(REPO)} refers to documents outside the repository"


def test_every_page_is_indexed():
    index = (DOCS / "README.md").read_text()
    for page in sorted(DOCS.rglob("*.md")):
        rel = page.relative_to(DOCS).as_posix()
        if rel != "README.md":
            assert f"({rel})" in index, f"docs/README.md does not link {rel}"


# The checker itself: citations that must fail, and forms that must pass.

SAMPLE = """\
## 4. Structures
### 4.1 Runs
## 8. Open
1. first
2. second
## 11. Scans
1. low stub
2. self-map
| # | a |
|---|---|
| 5 | row |
"""


def test_checker_resolves_the_citation_forms():
    pages = {name: parse_page(SAMPLE) for name in FORMAT_PAGES}
    good = (
        "crashdump.md §4.1; docs/formats/xpress.md (§4, §11 item 2) and §8.2; hibernation.md\n"
        "    # §11 row 5, §4.1–§8 q.1"
    )
    assert unresolved_citations(good, pages) == []


def test_checker_reports_missing_sections_and_items():
    pages = {name: parse_page(SAMPLE) for name in FORMAT_PAGES}
    assert unresolved_citations("crashdump.md §4.2", pages) == ["crashdump.md §4.2"]
    assert unresolved_citations("xpress.md §11 item 3", pages) == ["xpress.md §11 item 3"]
    assert unresolved_citations("(hibernation.md §4) then §12", pages) == ["hibernation.md §12"]
    assert unresolved_citations("§8.3", pages) == [f"{'/'.join(FORMAT_PAGES)}.md §8.3"]
    assert sorted(unresolved_page_references('docs/nowhere.md, performance.md, "No such heading"')) == [
        "docs/nowhere.md",
        'performance.md, "No such heading"',
    ]
