"""The requirement catalog: its loader, and the catalog held against the texts it quotes."""

from __future__ import annotations

import os
import re
from collections import Counter
from pathlib import Path

import pytest

from harness import catalog
from harness.catalog import LEVELS, CatalogError, Clause, normalise, parse

ROOT = Path(__file__).resolve().parents[2]
SPEC_DIR = Path(os.environ.get("DMMCONF_SPEC_DIR", ROOT / "spec"))
DRAFT = "draft-sarikaya-mext-multicastdmm-01.txt"
INTERPRETATIONS = ROOT / "docs" / "interpretations.md"

GOOD = """
[[clause]]
id = "DMM-HA-1"
level = "MUST"
role = "HA"
source = "draft"
section = "6"
text = '''Home agent MUST
   support MLD.'''

[[clause]]
id = "RFC6275-MH-1"
level = "BEHAVIOUR"
role = ["MN", "HA"]
source = "RFC 6275"
section = "9.2"
text = "x"
note = "how to see it"
interpretations = ["INT-2", "OPEN-1"]
"""


def entry(**fields: object) -> str:
    """One [[clause]] table: a valid one, with `fields` replaced (None drops a field)."""
    base: dict[str, object] = {
        "id": "DMM-X-1",
        "level": "MUST",
        "role": "HA",
        "source": "draft",
        "section": "6",
        "text": "Home agent MUST do it.",
    }
    base.update(fields)
    lines = ["[[clause]]"]
    for key, value in base.items():
        if value is None:
            continue
        if isinstance(value, str):
            lines.append(f"{key} = {value!r}".replace("'", '"'))
        elif isinstance(value, list):
            lines.append(f"{key} = [{', '.join(repr(v).replace(chr(39), chr(34)) for v in value)}]")
        else:
            lines.append(f"{key} = {value}")
    return "\n".join(lines) + "\n"


# --- the loader ----------------------------------------------------------------------------------


def test_parse_good() -> None:
    cat = parse(GOOD)
    assert len(cat) == 2
    assert "DMM-HA-1" in cat and "DMM-HA-2" not in cat
    ha = cat["DMM-HA-1"]
    assert ha == Clause("DMM-HA-1", "MUST", ("HA",), "draft", "6", "Home agent MUST support MLD.")
    assert ha.mandatory
    mh = cat["RFC6275-MH-1"]
    assert mh.roles == ("MN", "HA")
    assert not mh.mandatory
    assert mh.note == "how to see it"
    assert mh.interpretations == ("INT-2", "OPEN-1")
    assert [c.id for c in cat] == ["DMM-HA-1", "RFC6275-MH-1"]


def test_parse_empty_file_is_an_empty_catalog() -> None:
    assert len(parse("# nothing yet\n")) == 0


@pytest.mark.parametrize("level", LEVELS)
def test_every_level_parses(level: str) -> None:
    clause = parse(entry(level=level))["DMM-X-1"]
    assert clause.mandatory == (level in ("MUST", "MUST NOT"))


@pytest.mark.parametrize("missing", ["id", "level", "role", "source", "section", "text"])
def test_missing_field(missing: str) -> None:
    with pytest.raises(CatalogError, match=rf"clause #1\b.*missing {missing}"):
        parse(entry(**{missing: None}))


def test_missing_field_names_the_clause() -> None:
    with pytest.raises(CatalogError, match=r"clause #2 \(DMM-X-2\): missing text"):
        parse(entry() + entry(id="DMM-X-2", text=None))


def test_bad_level() -> None:
    with pytest.raises(CatalogError, match=r"\(DMM-X-1\): level 'must'"):
        parse(entry(level="must"))


@pytest.mark.parametrize("role", ["MAG", ["HA", "LMA"]])
def test_bad_role(role: object) -> None:
    with pytest.raises(CatalogError, match=r"\(DMM-X-1\): role \[.*\] not in"):
        parse(entry(role=role))


def test_empty_or_repeated_roles() -> None:
    with pytest.raises(CatalogError, match=r"\(DMM-X-1\): role list is empty"):
        parse(entry(role=[]))
    with pytest.raises(CatalogError, match=r"\(DMM-X-1\): .* names a role twice"):
        parse(entry(role=["HA", "HA"]))


def test_duplicate_id() -> None:
    with pytest.raises(CatalogError, match=r"clause #3: duplicate id DMM-X-1"):
        parse(entry() + entry(id="DMM-X-2") + entry())


@pytest.mark.parametrize("bad", ["dmm-ha-1", "DMM", "DMM-HA-", "DMM HA 1"])
def test_bad_id(bad: str) -> None:
    with pytest.raises(CatalogError, match="is not like"):
        parse(entry(id=bad))


def test_section_must_be_a_string() -> None:
    # section = 7.10 would silently become "7.1"
    with pytest.raises(CatalogError, match=r"\(DMM-X-1\): section must be a string"):
        parse(entry(section=7.1))


def test_bad_source() -> None:
    with pytest.raises(CatalogError, match=r"\(DMM-X-1\): source 'rfc6275'"):
        parse(entry(source="rfc6275"))
    assert parse(entry(source="draft-perkins-mext-hatunaddr-02"))["DMM-X-1"]


def test_unknown_field_is_a_typo() -> None:
    with pytest.raises(CatalogError, match=r"\(DMM-X-1\): unknown field\(s\) roles"):
        parse(entry(roles="HA"))


def test_bad_interpretations() -> None:
    with pytest.raises(CatalogError, match=r"\(DMM-X-1\): interpretations must be a list"):
        parse(entry(interpretations=["point 5"]))


def test_empty_text() -> None:
    with pytest.raises(CatalogError, match=r"\(DMM-X-1\): text must be a non-empty string"):
        parse(entry(text="  "))


def test_toml_syntax_error() -> None:
    with pytest.raises(CatalogError, match="requirements.toml"):
        parse("[[clause]\nid = 1\n")


def test_clause_not_an_array_of_tables() -> None:
    with pytest.raises(CatalogError, match="array of tables"):
        parse('clause = "x"\n')


def test_normalise() -> None:
    assert normalise("  a\n   b\tc  ") == "a b c"


# --- the catalog itself ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def cat() -> catalog.Catalog:
    return catalog.load()


def test_catalog_loads(cat: catalog.Catalog) -> None:
    assert len(cat) > 100
    assert catalog.load() is cat  # cached


def test_every_section_of_the_draft_is_represented(cat: catalog.Catalog) -> None:
    sections = {c.section for c in cat if c.source == "draft"}
    assert {"3", "4.1", "5", "6", "7", "7.1", "8", "9"} <= sections


def test_every_referenced_rfc_is_represented(cat: catalog.Catalog) -> None:
    sources = Counter(c.source for c in cat)
    for rfc in ("6275", "5648", "6089", "5555", "5026", "4285", "3810", "3376"):
        assert sources[f"RFC {rfc}"] > 0, rfc


def test_draft_ids_follow_the_section_tags(cat: catalog.Catalog) -> None:
    tags = {"1": "INTRO", "3": "OVW", "4.1": "OPT", "5": "CN", "6": "HA", "7": "MN",
            "7.1": "MIF", "8": "V4", "9": "CPDP"}  # fmt: skip
    for c in cat:
        if c.source == "draft":
            assert re.fullmatch(rf"DMM-{tags[c.section]}-[1-9][0-9]*", c.id), c.id
        else:
            number = c.source.removeprefix("RFC ")
            assert c.id.startswith(f"RFC{number}-"), c.id


def test_ids_are_numbered_without_gaps(cat: catalog.Catalog) -> None:
    numbers: dict[str, list[int]] = {}
    for c in cat:
        prefix, n = c.id.rsplit("-", 1)
        numbers.setdefault(prefix, []).append(int(n))
    for prefix, ns in numbers.items():
        assert sorted(ns) == list(range(1, len(ns) + 1)), prefix


_KEYWORDS = {
    "MUST": r"\bMUST\b|\bmust\b",
    "MUST NOT": r"\bMUST NOT\b|\bmust not\b",
    "SHOULD": r"\bSHOULD\b|\bshould\b|normally must",
    "SHOULD NOT": r"\bSHOULD NOT\b|\bshould not\b",
    "MAY": r"\bMAY\b|\bmay\b|\bcan\b|\bcould\b",
}


def test_level_matches_the_quoted_keyword(cat: catalog.Catalog) -> None:
    for c in cat:
        if c.level in _KEYWORDS:
            assert re.search(_KEYWORDS[c.level], c.text), f"{c.id}: {c.level} but {c.text!r}"


# --- the catalog against the specification texts -------------------------------------------------

_PAGE_BREAK = re.compile(r"^(Sarikaya|Internet-Draft|RFC \d+ |.*\[Page \d+\]$)")
_FIGURE = re.compile(r"\||\+-|--|^\s*[*./\\`]|\\\s*$|^\s*Figure \d+:")


def spec_text(raw: str, *, figures: bool = True) -> str:
    """A specification as one line: page headers and footers, section headings (all the
    lines that start in column 0) and list bullets gone, words split at a line-end
    hyphen joined, whitespace normalised. `figures=False` also drops ASCII-art lines."""
    lines: list[str] = []
    for line in raw.replace("\f", "\n").splitlines():
        if not line.strip():
            lines.append("")
        elif (
            line[0].isspace()
            and not _PAGE_BREAK.match(line)
            and (figures or not _FIGURE.search(line))
        ):
            lines.append(re.sub(r"^(o|\*)\s+", "", line.strip()))
    text = "\n".join(lines)
    text = re.sub(r"(?<=[A-Za-z0-9])-\n\s*(?=[A-Za-z0-9])", "-", text)
    return normalise(text)


def spec_file(source: str) -> Path:
    if source == "draft":
        return SPEC_DIR / DRAFT
    if source.startswith("RFC "):
        return SPEC_DIR / f"rfc{source.removeprefix('RFC ')}.txt"
    return SPEC_DIR / f"{source}.txt"


needs_spec = pytest.mark.skipif(
    not (SPEC_DIR / DRAFT).is_file(), reason=f"specification texts not found in {SPEC_DIR}"
)


def draft_body() -> str:
    """Sections 1 to 9 of the draft (from the heading of §1 to that of §10)."""
    raw = (SPEC_DIR / DRAFT).read_text(encoding="utf-8")
    start = re.search(r"^1\.  Introduction$", raw, re.M)
    end = re.search(r"^10\.  Security Considerations$", raw, re.M)
    assert start and end
    return raw[start.start() : end.start()]


def sentences(text: str) -> list[str]:
    return re.split(r'(?<=\.)\s+(?=[A-Z\["])', text)


_NORMATIVE = re.compile(
    r"\b(MUST|SHOULD|MAY|SHALL|REQUIRED|RECOMMENDED|OPTIONAL|must|should|may|need to|needs to)\b"
)


def test_spec_text_joins_page_breaks_and_hyphens() -> None:
    raw = (
        "1.  Heading\n\n   Mobile node also MUST assign a BID-\n   PRI for this BID.  On\n\n\n\n"
        "Sarikaya                Expires February 14, 2012              [Page 10]\n\f\n"
        "Internet-Draft             DMM with Multicast                August 2011\n\n\n"
        "   the new link, nothing.\n      o  A bullet.\n"
    )
    assert spec_text(raw) == (
        "Mobile node also MUST assign a BID-PRI for this BID. On the new link, nothing. A bullet."
    )


@needs_spec
def test_every_normative_sentence_of_the_draft_is_quoted(cat: catalog.Catalog) -> None:
    """Each sentence of draft §1-§9 with MUST, SHOULD, MAY (or must/should/may/need to)
    appears, whole, in the text of some draft clause."""
    quotes = [c.text for c in cat if c.source == "draft"]
    found = [s for s in sentences(spec_text(draft_body(), figures=False)) if _NORMATIVE.search(s)]
    assert len(found) >= 30
    must = [s for s in found if "MUST" in s]
    assert len(must) >= 20
    missing = [s for s in found if not any(s in q for q in quotes)]
    assert not missing, "not quoted by any draft clause:\n" + "\n".join(missing)


@needs_spec
def test_every_uppercase_keyword_of_the_draft_is_catalogued_at_its_level(
    cat: catalog.Catalog,
) -> None:
    body = spec_text(draft_body(), figures=False)
    counts = Counter(re.findall(r"\b(MUST|SHOULD|MAY)\b", body))
    for keyword in counts:
        quoted = [c for c in cat if c.source == "draft" and keyword in c.text]
        assert quoted, keyword
        assert any(c.level.startswith(keyword) for c in quoted), keyword
    assert counts["MUST"] >= 20


_HEADING = re.compile(r"^(\d+(?:\.\d+)*)\.? {1,2}[A-Z]", re.M)


def spec_sections(raw: str) -> dict[str, str]:
    """Section number -> that section's text (up to the next heading), as `spec_text`."""
    marks = [(m.start(), m.group(1)) for m in _HEADING.finditer(raw)]
    sections: dict[str, str] = {}
    for (start, number), (end, _) in zip(marks, [*marks[1:], (len(raw), "")], strict=True):
        sections.setdefault(number, spec_text(raw[start:end]))
    return sections


@needs_spec
def test_every_clause_quotes_its_source(cat: catalog.Catalog) -> None:
    """The text of every clause is found, word for word, in the section it names of the
    document it names."""
    docs: dict[str, dict[str, str]] = {}
    wrong: list[str] = []
    for c in cat:
        path = spec_file(c.source)
        if not path.is_file():
            wrong.append(f"{c.id}: no file {path.name} for source {c.source!r}")
            continue
        if c.source not in docs:
            docs[c.source] = spec_sections(path.read_text(encoding="utf-8", errors="replace"))
        sections = docs[c.source]
        if c.text in sections.get(c.section, ""):
            continue
        elsewhere = [n for n, text in sections.items() if c.text in text]
        where = f"found in section(s) {elsewhere}" if elsewhere else "not found"
        wrong.append(f"{c.id}: {where}, not in {path.name} section {c.section}: {c.text!r}")
    assert not wrong, "\n".join(wrong)


def interpretation_ids() -> set[str]:
    text = INTERPRETATIONS.read_text(encoding="utf-8")
    return set(re.findall(r"^#{2,4} +((?:INT|OPEN)-\d+)\b", text, re.M))


def test_interpretations_document_has_the_decided_points() -> None:
    ids = interpretation_ids()
    assert {f"INT-{n}" for n in range(1, 13)} <= ids


def test_every_interpretation_a_clause_cites_exists(cat: catalog.Catalog) -> None:
    ids = interpretation_ids()
    for c in cat:
        for ref in c.interpretations:
            assert ref in ids, f"{c.id} cites {ref}, which docs/interpretations.md lacks"
        for ref in re.findall(r"\b(?:INT|OPEN)-\d+\b", c.note):
            assert ref in c.interpretations or ref in ids, f"{c.id} note cites unknown {ref}"


def test_clause_ids_cited_in_notes_exist(cat: catalog.Catalog) -> None:
    for c in cat:
        for ref in re.findall(r"\b(?:DMM-[A-Z0-9]+|RFC\d+(?:-[A-Z]+)?)-\d+\b", c.note):
            assert ref in cat, f"{c.id} note cites unknown clause {ref}"
