"""Documents and section titles for the reports: the draft's and the RFCs' own tables of
contents (spec/*.txt), so a report groups clauses under "6 Home Agent Operation", not "6".

A document or section whose text is not in spec/ keeps its number alone.
"""

from __future__ import annotations

import re
from functools import cache
from pathlib import Path

DRAFT = "draft-sarikaya-mext-multicastdmm-01"
SPEC_DIR = Path(__file__).resolve().parent.parent / "spec"

# "   4.1.  Multicast State Mobility Option  . . . . . .  6" and "   10.3.1. Primary ....90"
_TOC_LINE = re.compile(
    r"^\s{2,}(?P<num>(?:[0-9]+|[A-Z])(?:\.[0-9]+)*)\.?\s+(?P<title>\S.*?)\s*(?:\.\s?){2,}\s*[0-9]+$"
)


def document(source: str) -> str:
    """The document a catalog `source` names: the draft's full name, "RFC 6275", "draft-..."."""
    return DRAFT if source.strip().lower() == "draft" else source.strip()


def _spec_file(source: str) -> Path | None:
    doc = document(source)
    rfc = re.fullmatch(r"RFC\s*([0-9]+)", doc, re.IGNORECASE)
    name = f"rfc{rfc[1]}.txt" if rfc else f"{doc}.txt"
    path = SPEC_DIR / name
    return path if path.is_file() else None


def parse_toc(text: str) -> dict[str, str]:
    """Section number -> title, from an RFC-style table of contents (dot leaders, page)."""
    titles: dict[str, str] = {}
    in_toc = False
    for line in text.splitlines():
        if line.strip() == "Table of Contents":
            in_toc = True
            continue
        if not in_toc:
            continue
        m = _TOC_LINE.match(line)
        if m:
            titles.setdefault(m["num"], " ".join(m["title"].split()))
        elif titles and re.match(r"^[0-9]+\.\s+\S", line):
            break  # the first section heading of the body (page headers are skipped)
    return titles


@cache
def titles(source: str) -> dict[str, str]:
    """The section titles of a catalog source's document ({} when its text is not bundled)."""
    path = _spec_file(source)
    if path is None:
        return {}
    return parse_toc(path.read_text(encoding="utf-8", errors="replace"))


def title(source: str, section: str) -> str | None:
    return titles(source).get(section.strip().rstrip("."))


def label(source: str, section: str) -> str:
    """The section with its title ("6 Home Agent Operation"), or its number alone."""
    name = title(source, section)
    return f"{section} {name}" if name else section


def top(section: str) -> str:
    """The top-level section a (sub)section belongs to: "7.1" -> "7"."""
    return section.split(".", 1)[0]


def sort_key(section: str) -> tuple[tuple[int, int | str], ...]:
    return tuple((0, int(p)) if p.isdigit() else (1, p) for p in section.split("."))


def document_key(source: str) -> tuple[int, int, str]:
    """The draft first, then RFCs by number, then anything else."""
    doc = document(source)
    rfc = re.fullmatch(r"RFC\s*([0-9]+)", doc, re.IGNORECASE)
    if doc == DRAFT:
        return (0, 0, doc)
    return (1, int(rfc[1]), doc) if rfc else (2, 0, doc)
