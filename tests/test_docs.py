"""The documentation holds together: links resolve, the README stays a short manual, figures carry dates.

* Every relative link in every tracked Markdown file (``[text](path)``, ``![alt](path)``, ``[name]: path``)
  points at a file or folder of the repository, and every ``#anchor`` (in the same file or another
  Markdown file) names a heading there, made the way GitHub makes heading anchors.
* README.md has at most 300 lines and links every ``docs/*.md`` page.
* No tracked text file dates a figure or a decision by a round of work (an ordinal or "this", "last",
  "earlier"... before "session" or "round") instead of a date and a commit.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
README_MAX_LINES = 300
TEXT_SUFFIXES = {".md", ".py", ".yaml", ".yml", ".txt", ".toml", ".cfg", ".ini", ".sh", ".html", ".js", ".css"}
TEXT_NAMES = {"Makefile", "run"}

# an ordinal or relative word, then the word session or round (hyphenated or possessive too);
# "round trip" and "round-robin" are not rounds of work
ROUND_DATING = re.compile(
    r"\b(first|second|third|fourth|fifth|sixth|seventh|eighth|ninth|tenth|eleventh|twelfth|this|last|previous"
    r"|next|earlier|later|another|same)[\s-]+(work[\s-]+)?(session|round)s?\b(?![\s-]*(trip|robin))",
    re.IGNORECASE,
)

FENCE = re.compile(r"^\s*(```|~~~)")
INLINE_CODE = re.compile(r"(`+)(.+?)\1")
INLINE_LINK = re.compile(
    r"!?\[((?:[^\[\]]|\[[^\]]*\])*)\]"  # [text] or ![alt], one level of nested brackets
    r"\(\s*(<[^>]*>|[^()\s]*(?:\([^()]*\)[^()\s]*)*)(\s+\"[^\"]*\")?\s*\)"  # (target "title")
)
REFERENCE_DEF = re.compile(r"^\s{0,3}\[[^\]]+\]:\s*(<[^>]*>|\S+)")
HEADING = re.compile(r"^\s{0,3}(#{1,6})\s+(.*?)\s*#*\s*$")
HTML_ANCHOR = re.compile(r"<a\s+(?:name|id)=\"([^\"]+)\"", re.IGNORECASE)


def tracked_files() -> list[Path]:
    """The repository's tracked files (every file under ROOT when git or its metadata is missing)."""
    try:
        out = subprocess.run(["git", "-C", str(ROOT), "ls-files", "-z"], capture_output=True, check=True,
                             timeout=60).stdout.decode()
        files = [ROOT / name for name in out.split("\0") if name]
    except (OSError, subprocess.SubprocessError):
        files = []
    if not files:
        skip = {".git", ".venv", "out", ".cache", ".pytest_cache", "__pycache__", ".ruff_cache"}
        files = [p for p in ROOT.rglob("*") if p.is_file() and not skip & set(p.relative_to(ROOT).parts)]
    return sorted(p for p in files if p.exists())


def markdown_files() -> list[Path]:
    return [p for p in tracked_files() if p.suffix.lower() == ".md"]


def prose_lines(text: str) -> list[tuple[int, str]]:
    """(line number, line) outside fenced code blocks."""
    out, fenced = [], False
    for number, line in enumerate(text.splitlines(), 1):
        if FENCE.match(line):
            fenced = not fenced
            continue
        if not fenced:
            out.append((number, line))
    return out


def github_anchor(heading: str) -> str:
    """The anchor GitHub gives a heading: its text without markup, lower case, punctuation dropped,
    spaces turned into hyphens."""
    text = INLINE_LINK.sub(lambda m: m.group(1), heading)
    text = INLINE_CODE.sub(lambda m: m.group(2), text)
    text = re.sub(r"<[^>]+>", "", text).strip().lower()
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


def anchors(path: Path) -> set[str]:
    found, seen = set(), {}
    for _, line in prose_lines(path.read_text(encoding="utf-8")):
        found.update(m.lower() for m in HTML_ANCHOR.findall(line))
        match = HEADING.match(line)
        if not match:
            continue
        base = github_anchor(match.group(2))
        count = seen.get(base, 0)
        seen[base] = count + 1
        found.add(base if count == 0 else f"{base}-{count}")
    return found


def links(path: Path) -> list[tuple[int, str]]:
    """(line number, target) of every link in a Markdown file, outside code."""
    out = []
    for number, line in prose_lines(path.read_text(encoding="utf-8")):
        line = INLINE_CODE.sub("", line)
        out.extend((number, m.group(2).strip("<>")) for m in INLINE_LINK.finditer(line))
        ref = REFERENCE_DEF.match(line)
        if ref:
            out.append((number, ref.group(1).strip("<>")))
    return out


def is_external(target: str) -> bool:
    return bool(re.match(r"^[a-z][a-z0-9+.-]*:", target, re.IGNORECASE)) or target.startswith("//")


def broken_links(path: Path, anchor_cache: dict[Path, set[str]], root: Path = ROOT) -> list[str]:
    problems = []
    for number, target in links(path):
        if not target or is_external(target):
            continue
        file_part, _, fragment = target.partition("#")
        dest = (path.parent / file_part).resolve() if file_part else path.resolve()
        where = f"{path.relative_to(root)}:{number}: {target}"
        if not dest.exists():
            problems.append(f"{where}: no such file")
            continue
        if root.resolve() not in (dest, *dest.parents):
            problems.append(f"{where}: outside the repository")
            continue
        if fragment and dest.suffix.lower() == ".md":
            if dest not in anchor_cache:
                anchor_cache[dest] = anchors(dest)
            if fragment.lower() not in anchor_cache[dest]:
                problems.append(f"{where}: no heading with anchor #{fragment}")
    return problems


def test_every_relative_link_and_anchor_resolves():
    files = markdown_files()
    assert any(p.name == "README.md" and p.parent == ROOT for p in files)
    cache: dict[Path, set[str]] = {}
    problems = [problem for path in files for problem in broken_links(path, cache)]
    assert not problems, "broken links:\n" + "\n".join(problems)


def test_link_check_finds_missing_files_and_anchors(tmp_path):
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "b.md").write_text("# Tried, not kept\n\n## `livemask run` flags\n", encoding="utf-8")
    page = tmp_path / "a.md"
    page.write_text("\n".join([
        "# Top", "[ok](sub/b.md#tried-not-kept) [ok](sub/b.md#livemask-run-flags) [ok](#top)",
        "[gone](sub/c.md) ![gone](pic.png) [bad anchor](sub/b.md#tried) [bad](#nowhere)",
        "`[in code](nowhere.md)` [web](https://example.com/x.md)", "```", "[fenced](nowhere.md)", "```",
        "[out](../../outside.md)",
    ]), encoding="utf-8")
    problems = broken_links(page, {}, root=tmp_path)
    assert [p.split(": ")[1] for p in problems] == [
        "sub/c.md", "pic.png", "sub/b.md#tried", "#nowhere", "../../outside.md"], problems


def test_readme_is_a_short_manual_linking_every_docs_page():
    readme = ROOT / "README.md"
    lines = readme.read_text(encoding="utf-8").splitlines()
    assert len(lines) <= README_MAX_LINES, f"README.md has {len(lines)} lines (at most {README_MAX_LINES})"
    linked = {(ROOT / target.partition("#")[0]).resolve() for _, target in links(readme) if not is_external(target)}
    pages = [p for p in markdown_files() if p.parent == ROOT / "docs"]
    assert pages, "no docs/*.md pages"
    missing = [str(p.relative_to(ROOT)) for p in pages if p.resolve() not in linked]
    assert not missing, f"docs pages not linked from README.md: {missing}"


def round_dating(text: str) -> list[str]:
    return [f"{number}: {line.strip()}" for number, line in enumerate(text.splitlines(), 1)
            if ROUND_DATING.search(line)]


def test_round_dating_pattern_catches_rounds_and_spares_round_trips():
    session, rnd = "session", "round"  # split so that this file does not match its own pattern
    caught = [f"measured in the fifth {session}", f"this {session}'s lanes", f"Up to the seventh {session} the",
              f"every seventh-{session} run", f"in an earlier {session})", f"the last {rnd} of work",
              f"Tried in the Ninth {session}, not kept", f"the previous work {session}"]
    spared = ["one X round trip per check", "5 runs each, round-robin", "an explanation session is shut down",
              "a 2-core machine, 2026-11-27, commit 6bb9f9d", "rounded to 0.1 px", "session-scoped fixture"]
    assert all(round_dating(text) for text in caught), [t for t in caught if not round_dating(t)]
    assert not any(round_dating(text) for text in spared), [t for t in spared if round_dating(t)]


def test_no_figure_is_dated_by_a_round_of_work():
    found = []
    for path in tracked_files():
        if path.suffix.lower() not in TEXT_SUFFIXES and path.name not in TEXT_NAMES:
            continue
        try:
            text = path.read_text(encoding="utf-8")
        except (UnicodeDecodeError, OSError):
            continue
        found.extend(f"{path.relative_to(ROOT)}:{hit}" for hit in round_dating(text))
    assert not found, "dated by a round of work instead of a date and a commit:\n" + "\n".join(found)


@pytest.mark.parametrize("heading, anchor", [
    ("Explanations: why did it say *no mask*?", "explanations-why-did-it-say-no-mask"),
    ("Browser page and HTTP API: `livemask serve`", "browser-page-and-http-api-livemask-serve"),
    ("Plan for 1,000 camera-hours a day", "plan-for-1000-camera-hours-a-day"),
    ("Tried, not kept", "tried-not-kept"),
    ("`min_face_px` and [the kiosk](x.md)", "min_face_px-and-the-kiosk"),
])
def test_anchors_are_made_as_github_makes_them(heading, anchor):
    assert github_anchor(heading) == anchor
