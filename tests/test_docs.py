"""The documentation stays usable: every ``physrefine`` command it shows parses, every relative link resolves.

Commands are read from fenced code blocks (continuation lines ending in ``\\`` joined) and from inline code
spans that start with ``physrefine``; each is parsed by the real CLI's click parser (``agent.cli.app``), so a
sub-command or option that does not exist fails here. Placeholders (``GENERATED_DIR``, ``N``, ``...``) are
allowed: only names are checked, values are not converted.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import typer

ROOT = Path(__file__).resolve().parents[1]
DOCS = sorted([ROOT / "README.md", ROOT / "CHANGELOG.md", *(ROOT / "docs").glob("*.md")])
COMMAND_DOCS = [p for p in DOCS if p.name != "CHANGELOG.md"]  # history may quote commands as they were

FENCE = re.compile(r"^\s*(```|~~~)")
INLINE_CODE = re.compile(r"(`+)(.+?)\1")
#: Shell operators that end one command; a single ``|`` only with spaces around it (``fast|compat`` is a value).
SEPARATORS = re.compile(r"\s*(?:;|&&|\|\|)\s*|\s+\|\s+")


@dataclass(frozen=True)
class DocCommand:
    """One ``physrefine`` command line found in a document."""

    where: str  # "FILE:LINE"
    argv: tuple[str, ...]  # the arguments after ``physrefine``


def _code_blocks(text: str) -> list[tuple[int, list[str]]]:
    """``(first line number, lines)`` of every fenced code block."""
    blocks: list[tuple[int, list[str]]] = []
    current: list[str] | None = None
    start = 0
    for number, line in enumerate(text.splitlines(), 1):
        if FENCE.match(line):
            if current is None:
                current, start = [], number + 1
            else:
                blocks.append((start, current))
                current = None
        elif current is not None:
            current.append(line)
    return blocks


def _prose(text: str) -> list[tuple[int, str]]:
    """``(line number, line)`` of every line outside fenced code blocks."""
    out, inside = [], False
    for number, line in enumerate(text.splitlines(), 1):
        if FENCE.match(line):
            inside = not inside
        elif not inside:
            out.append((number, line))
    return out


def _physrefine_argv(line: str) -> list[tuple[str, ...]]:
    """The argument lists of every ``physrefine`` invocation on one (joined) shell line."""
    found = []
    for segment in SEPARATORS.split(line):
        try:
            tokens = shlex.split(segment, comments=True)
        except ValueError:  # an unbalanced quote: not a command we can check
            continue
        for i, token in enumerate(tokens):
            if token.rsplit("/", 1)[-1] == "physrefine":
                # Synopsis brackets ("[--jobs N]") are not part of an option's name.
                args = [t.strip("[]") for t in tokens[i + 1 :]]
                found.append(tuple(a for a in args if a))
                break
    return found


def commands_in(text: str, name: str = "<text>") -> list[DocCommand]:
    """Every ``physrefine`` command of a Markdown text: in fenced code blocks and in inline code spans."""
    found: list[DocCommand] = []
    for start, lines in _code_blocks(text):
        joined, first = "", None
        for offset, line in enumerate(lines):
            if first is None:
                first = start + offset
            if line.rstrip().endswith("\\"):
                joined += line.rstrip()[:-1] + " "
                continue
            joined += line
            found += [DocCommand(f"{name}:{first}", argv) for argv in _physrefine_argv(joined)]
            joined, first = "", None
    for number, line in _prose(text):
        for match in INLINE_CODE.finditer(line):
            span = match.group(2).strip()
            if span.startswith("physrefine "):
                found += [DocCommand(f"{name}:{number}", argv) for argv in _physrefine_argv(span)]
    return found


def _cli() -> Any:
    from agent.cli import app

    return typer.main.get_command(app)


def check_command(argv: tuple[str, ...]) -> None:
    """Parse ``physrefine ARGV`` with the real CLI's parser: raise ``ValueError`` naming what is wrong.

    Option names (of the root command and of the sub-command), options missing their value and surplus
    positional arguments are errors; values are not converted, so placeholders such as ``N`` pass, and
    ``...`` may stand for elided options or for a value.
    """
    group = _cli()
    # Plain contexts, not resilient ones: resilient parsing would swallow the unknown-option errors.
    root_ctx = group.context_class(group, info_name="physrefine")
    try:
        _, rest, _ = group.make_parser(root_ctx).parse_args(list(argv))
    except Exception as exc:  # click's UsageError family (vendored by typer)
        raise ValueError(f"physrefine {' '.join(argv)}: {exc}") from exc
    if not rest:
        return  # "physrefine" or "physrefine --help"
    name, args = rest[0], rest[1:]
    command = group.get_command(root_ctx, name)
    if command is None:
        raise ValueError(f"physrefine {name}: no such sub-command (known: {', '.join(group.commands)})")
    ctx = command.context_class(command, info_name=name, parent=root_ctx)
    try:
        _, surplus, _ = command.make_parser(ctx).parse_args(list(args))
    except Exception as exc:
        raise ValueError(f"physrefine {name} {' '.join(args)}: {exc}") from exc
    surplus = [a for a in surplus if a != "..."]  # "..." elides options or stands for a value
    if surplus:
        raise ValueError(f"physrefine {name}: unexpected extra argument(s) {surplus}")


# -- links --------------------------------------------------------------------------------------------------

LINK = re.compile(r"!?\[(?:[^\]\[]|\[[^\]]*\])*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
REFERENCE = re.compile(r"^\s{0,3}\[[^\]]+\]:\s*<?(\S+?)>?(?:\s+.*)?$")
HEADING = re.compile(r"^\s{0,3}(#{1,6})\s+(.*?)\s*#*\s*$")
HTML_ANCHOR = re.compile(r"<a\s+[^>]*(?:id|name)=\"([^\"]+)\"")


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: formatting and punctuation dropped, lower case, spaces to hyphens.

    >>> slug("The Physics-IQ evaluator (`physrefine score`)")
    'the-physics-iq-evaluator-physrefine-score'
    >>> slug("Honest vs oracle: the rule")
    'honest-vs-oracle-the-rule'
    """
    text = re.sub(r"!?\[([^\]]*)\]\([^)]*\)", r"\1", heading)  # a link's text only
    text = re.sub(r"[^\w\- ]", "", text.lower())
    return text.replace(" ", "-")


def anchors(text: str) -> set[str]:
    """Every anchor a Markdown file offers: heading slugs (``-1``, ``-2`` for repeats) and HTML ids."""
    seen: dict[str, int] = {}
    out: set[str] = set()
    for _, line in _prose(text):
        heading = HEADING.match(line)
        if heading:
            base = slug(heading.group(2))
            n = seen.get(base, 0)
            seen[base] = n + 1
            out.add(base if n == 0 else f"{base}-{n}")
        out.update(HTML_ANCHOR.findall(line))
    return out


def broken_links(path: Path, text: str | None = None) -> list[str]:
    """Relative links of a Markdown file that point at no file or no anchor, as ``LINE: target (why)``."""
    text = path.read_text(encoding="utf-8") if text is None else text
    problems = []
    for number, line in _prose(text):
        code_free = INLINE_CODE.sub("", line)
        targets = [m.group(1) for m in LINK.finditer(code_free)]
        ref = REFERENCE.match(code_free)
        if ref:
            targets.append(ref.group(1))
        for target in targets:
            if re.match(r"^[a-z][a-z0-9+.-]*:", target, re.I):  # http:, https:, mailto: ...
                continue
            file_part, _, fragment = target.partition("#")
            dest = (path.parent / file_part).resolve() if file_part else path
            if file_part and not dest.exists():
                problems.append(f"{number}: {target} (no file {file_part})")
                continue
            if fragment:
                if dest.suffix != ".md":
                    problems.append(f"{number}: {target} (an anchor into a non-Markdown file)")
                    continue
                offered = anchors(text if not file_part else dest.read_text(encoding="utf-8"))
                if fragment not in offered:
                    problems.append(f"{number}: {target} (no heading '#{fragment}' in {dest.name})")
    return problems


# -- tests ----------------------------------------------------------------------------------------------------


def _all_commands() -> list[DocCommand]:
    found = []
    for path in COMMAND_DOCS:
        found += commands_in(path.read_text(encoding="utf-8"), str(path.relative_to(ROOT)))
    return found


def test_docs_show_commands() -> None:
    """The extraction finds the README's commands (a broken extractor would make the next test vacuous)."""
    readme = commands_in((ROOT / "README.md").read_text(encoding="utf-8"))
    subcommands = {c.argv[0] for c in readme if c.argv}
    assert {"demo", "refine", "score", "submit"} <= subcommands, subcommands
    assert len(_all_commands()) >= 40


@pytest.mark.parametrize("command", _all_commands(), ids=lambda c: c.where)
def test_every_documented_command_parses(command: DocCommand) -> None:
    check_command(command.argv)


def test_a_misspelt_option_fails() -> None:
    doc = "```bash\nphysrefine refine --dataset DATA --run-dir runs/x \\\n  --generator wan2.1-i2v --vlm-modle gpt-4o\n```\n"
    (command,) = commands_in(doc)
    assert command.argv[-2:] == ("--vlm-modle", "gpt-4o")
    with pytest.raises(ValueError, match="--vlm-modle"):
        check_command(command.argv)


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (("scroe", "GENERATED_DIR", "--dataset", "D"), "no such sub-command"),
        (("demo", "--dataset", "D"), "--dataset"),  # an option of another sub-command
        (("--verbos", "demo"), "--verbos"),  # a root option
        (("submit", "RUN", "--out"), "--out"),  # an option without its value
        (("report", "RUN", "EXTRA"), "unexpected extra"),
    ],
)
def test_wrong_commands_fail(argv: tuple[str, ...], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        check_command(argv)


def test_placeholders_and_synopsis_pass() -> None:
    doc = (
        "Run `physrefine score GENERATED_DIR -d DATASET --jobs N` or:\n\n```bash\n"
        "export OPENAI_API_KEY=...;  physrefine -vv refine ... --vlm openai  # a comment --not-an-option\n"
        "physrefine score GENERATED_DIR --dataset DATASET [--fps 8] [--mode fast|compat] [--no-cache]\n```\n"
    )
    commands = commands_in(doc)
    assert [c.argv[:2] for c in commands] == [
        ("-vv", "refine"),
        ("score", "GENERATED_DIR"),
        ("score", "GENERATED_DIR"),
    ]
    for command in commands:
        check_command(command.argv)


@pytest.mark.parametrize("path", DOCS, ids=lambda p: str(p.relative_to(ROOT)))
def test_relative_links_resolve(path: Path) -> None:
    assert broken_links(path) == []


def test_a_broken_link_is_reported(tmp_path: Path) -> None:
    (tmp_path / "a.md").write_text("# Title\n\n## Second part\n", encoding="utf-8")
    text = (
        "[ok](a.md) [ok](a.md#second-part) [ok](#here) `[not a link](nowhere.md)`\n"
        "[gone](b.md) [bad anchor](a.md#third-part) [bad here](#there) <https://example.org>\n\n## Here\n"
    )
    page = tmp_path / "page.md"
    assert broken_links(page, text) == [
        "2: b.md (no file b.md)",
        "2: a.md#third-part (no heading '#third-part' in a.md)",
        "2: #there (no heading '#there' in page.md)",
    ]


def test_ci_runs_the_readme_test_command() -> None:
    """``.ci/run`` runs exactly the README's test command (and the README still shows it)."""
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    (command,) = re.findall(r'^TEST_COMMAND="(.*)"$', ci, re.M)
    blocks = ["\n".join(lines).strip() for _, lines in _code_blocks((ROOT / "README.md").read_text())]
    assert command in blocks
