"""MkDocs hooks (mkdocs.yml `hooks:`): pages generated at build time, so they cannot go stale.

- ``guides/*.md``: sections of README.md, cut at its ``##`` headings (a heading that is missing
  fails the build); links into ``docs/`` are made relative to the page, links to other files of
  the repository become plain text, and ``#anchors`` point at the page that now holds the heading.
- ``cli/*.md``: ``slidenet --help`` and one page per command in ``slidenet.cli.COMMANDS``, from
  the parser that ``slidenet.cli.build_parser()`` builds (so a new command gets its page).

Array indexing in a docstring such as ``x[i, j][k]`` reads as a Markdown reference link; autorefs'
warning about such a "target" (one that is no Python name) is logged as info, so that --strict fails
on every broken reference to a real name and on nothing else.

The generated pages fill the nav's sections "Guides" and "Command line" (empty in mkdocs.yml).
"""

from __future__ import annotations

import argparse
import logging
import os
import re
from pathlib import Path

from mkdocs.exceptions import PluginError
from mkdocs.structure.files import File

ROOT = Path(__file__).resolve().parent.parent

#: (page, title, README headings (their text up to the first colon or parenthesis)).
GUIDES = (
    ("installation", "Installation", ("Install and test", "Demo")),
    ("quickstart", "Quickstart", ("Quickstart", "Graph models")),
    ("command-line", "Command line", ("Command line",)),
    ("filters", "Filters and conv arithmetic", ("Filters and the arithmetic of convolution",)),
    ("architectures", "Architectures and scanning", ("Architectures and scanning",)),
    ("see-inside", "Seeing inside the network", ("See inside the network",)),
    ("file-format", "File format", ("Model files are data, never code", "Crash-safe saving")),
    ("distributed", "Distributed training", ("Distributed training",)),
    ("interop", "Interop: ONNX", ("Interop",)),
    ("performance", "Performance", ("Performance",)),
    ("reliability", "Reliability", ("Reliability",)),
    ("layers", "Layer catalogue", ("What exists now", "Layers")),
    ("testing", "How the code is checked", ("How the code is checked",)),
    ("results", "Results on real data", ("Results on real data",)),
)

FILE_FORMAT_INTRO = """\
A model file is one zip of JSON and `.npy` arrays, written by `model.save(path)` and read by
`slidenet.load_model(path)`. The layout, from `slidenet.models.saving`:

::: slidenet.models.saving
    options:
      show_root_heading: false
      show_root_toc_entry: false
      members: false

"""

_HEADING = re.compile(r"^(#{2,6}) (.+?)\s*$")
_LINK = re.compile(r"(!?)\[([^\]]*)\]\(([^)\s]+)\)")


def _slug(text: str) -> str:
    """The anchor that MkDocs' toc extension (and GitHub) gives a heading."""
    text = re.sub(r"[^\w\s-]", "", text.strip().lower())
    return re.sub(r"[\s]+", "-", text)


def _sections(readme: str) -> list[tuple[int, str, list[str]]]:
    """(level, heading, lines) for every heading of README.md outside code fences."""
    sections, fence = [], False
    for line in readme.splitlines():
        if line.lstrip().startswith("```"):
            fence = not fence
        match = None if fence else _HEADING.match(line)
        if match:
            sections.append((len(match.group(1)), match.group(2), []))
        elif sections:
            sections[-1][2].append(line)
    return sections


def _section(sections, name: str) -> tuple[int, str, list[str]]:
    """The section whose heading starts with ``name``, with its subsections."""
    for i, (level, heading, _) in enumerate(sections):
        if re.split(r"[:(]", heading)[0].strip() == name or heading == name:
            lines = [f"{'#' * level} {heading}", *sections[i][2]]
            for sub_level, sub_heading, sub_lines in sections[i + 1 :]:
                if sub_level <= level:
                    break
                lines += [f"{'#' * sub_level} {sub_heading}", *sub_lines]
            return level, heading, lines
    raise PluginError(f"docs: README.md has no section '{name}' (scripts/mkdocs_hooks.py GUIDES)")


def _guides(readme: str) -> dict[str, str]:
    sections = _sections(readme)
    pages, where = {}, {}
    for page, title, names in GUIDES:
        parts = [_section(sections, name) for name in names]
        for _, _, lines in parts:
            for line in lines:
                match = _HEADING.match(line)
                if match:
                    where.setdefault(_slug(match.group(2)), page)
        # one README section: its heading is the page's title; several: each becomes a ## section
        body = [] if len(parts) == 1 else [f"# {title}", ""]
        top = 1 if len(parts) == 1 else 2
        for level, _, lines in parts:
            shift = level - top
            for line in lines:
                match = _HEADING.match(line)
                if match:
                    line = f"{'#' * (len(match.group(1)) - shift)} {match.group(2)}"
                body.append(line)
        text = "\n".join(body) + "\n"
        if page == "file-format":
            text = text.replace(f"# {title}\n\n", f"# {title}\n\n{FILE_FORMAT_INTRO}", 1)
        pages[page] = text
    return {page: _fix_links(text, page, where) for page, text in pages.items()}


def _fix_links(text: str, page: str, where: dict[str, str]) -> str:
    def fix(match):
        bang, label, target = match.groups()
        if re.match(r"[a-z]+://", target):
            return match.group(0)
        if target.startswith("#"):
            home = where.get(target[1:])
            if home is None:
                return label
            return match.group(0) if home == page else f"[{label}]({home}.md{target})"
        if target.startswith("docs/"):  # the docs folder is the site's root; pages are one deep
            return f"{bang}[{label}](../{target[len('docs/') :]})"
        return f"{label} (`{target}` in the repository)"

    return _LINK.sub(fix, text)


def _cli_pages() -> dict[str, str]:
    from slidenet.cli import COMMANDS, build_parser

    old = os.environ.get("COLUMNS")
    os.environ["COLUMNS"] = "100"  # argparse wraps help at the terminal's width
    try:
        parser = build_parser()
        parser.prog = "slidenet"
        (sub,) = (a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
        pages = {"index": _cli_index(parser, COMMANDS, sub)}
        for name in COMMANDS:
            help_text = sub.choices[name].format_help()
            pages[name] = f"# slidenet {name}\n\n```text\n{help_text.rstrip()}\n```\n"
    finally:
        if old is None:
            del os.environ["COLUMNS"]
        else:
            os.environ["COLUMNS"] = old
    return pages


def _cli_index(parser, commands, sub) -> str:
    helps = {a.dest: a.help for a in sub._choices_actions}
    rows = "\n".join(f"| [`{name}`]({name}.md) | {helps.get(name, '')} |" for name in commands)
    return (
        "# Command line\n\n`pip install -e .` installs the `slidenet` command (`python -m "
        "slidenet.cli` does the same). These pages are generated from the command's own "
        "`--help`; the [command-line guide](../guides/command-line.md) shows them at work.\n\n"
        f"| command | what it does |\n|---|---|\n{rows}\n\n"
        f"```text\n{parser.format_help().rstrip()}\n```\n"
    )


_TARGET = re.compile(r"Could not find cross-reference target '(.*)'$", re.S)
_NAME = re.compile(r"^[A-Za-z_][\w]*(\.[A-Za-z_][\w]*)*$")


class _NotANameFilter(logging.Filter):
    def filter(self, record):
        match = _TARGET.search(record.getMessage())
        if match and not _NAME.match(match.group(1)) and record.levelno == logging.WARNING:
            record.levelno, record.levelname = logging.INFO, "INFO"
            record.msg = f"{record.msg} (array indexing in a docstring, not a reference)"
        return True


def on_config(config):
    logger = logging.getLogger("mkdocs.plugins.mkdocs_autorefs._internal.plugin")
    if not any(isinstance(f, _NotANameFilter) for f in logger.filters):
        logger.addFilter(_NotANameFilter())
    return config


def on_files(files, config):
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    titles = {page: title for page, title, _ in GUIDES}
    sections = {"Guides": [], "Command line": []}
    for page, text in _guides(readme).items():
        files.append(File.generated(config, f"guides/{page}.md", content=text))
        sections["Guides"].append({titles[page]: f"guides/{page}.md"})
    for page, text in _cli_pages().items():
        files.append(File.generated(config, f"cli/{page}.md", content=text))
        title = "Overview" if page == "index" else f"slidenet {page}"
        sections["Command line"].append({title: f"cli/{page}.md"})
    # mkdocs.yml's nav holds "Guides: []" and "Command line: []"; fill them in.
    for item in config["nav"] or []:
        if isinstance(item, dict):
            for key in item:
                if key in sections:
                    item[key] = sections[key]
    return files
