"""Docs drift fails the tests: every CLI command is in the README with a --help text."""

import re
from pathlib import Path

import click

from monitor.cli import cli

README = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")


def commands(group: click.Group, prefix: str = "monitor"):
    for name, command in group.commands.items():
        path = f"{prefix} {name}"
        if isinstance(command, click.Group):
            yield from commands(command, path)
        else:
            yield path, command


def test_every_command_is_documented_in_the_readme():
    found = list(commands(cli))
    assert len(found) >= 13
    assert [path for path, _ in found if path not in README] == []
    assert [path for path, command in found if not command.help] == []


def test_the_shared_options_are_documented_where_they_go():
    """The README said "every command takes --config PATH": `monitor poll --config x.toml`
    is refused (the option belongs before the command's name)."""
    shared = ("--config", "--log-level", "--log-format")
    root = {opt for param in cli.params for opt in param.opts}
    assert set(shared) <= root
    for path, command in commands(cli):
        assert not set(shared) & {opt for param in command.params for opt in param.opts}, path
    assert "`monitor [--config PATH] [--log-level LEVEL] [--log-format text|json] COMMAND …`" in README
    assert "`monitor --config my.toml poll`" in README


def test_extras_go_into_the_checkouts_venv_editable():
    """`make run` installs monitor editable into .venv; the README's `.venv/bin/pip install
    '.[postgres]'` replaced it with a copy in site-packages, which then used its bundled model
    and templates (`monitor train` refused to write the checkout's model) and no edit or pull
    of the checkout reached the service. Into .venv an extra goes with -e."""
    import re

    plain = re.findall(r"\.venv/bin/pip install '\.\[\w+\]'", README)
    assert plain == [], plain
    from monitor.storage.store import _POSTGRES_HINT

    assert "pip install -e '.[postgres]'" in _POSTGRES_HINT


def test_every_command_and_group_help_shows_examples():
    """The README says `monitor COMMAND --help` shows examples: the `keywords`, `config` and
    `store` groups showed none."""
    def walk(group: click.Group, prefix: str = "monitor"):
        for name, command in group.commands.items():
            yield f"{prefix} {name}", command
            if isinstance(command, click.Group):
                yield from walk(command, f"{prefix} {name}")

    missing = [path for path, command in walk(cli)
               if not re.search(r"\x08\s*Examples?\b", command.help or "")]
    assert missing == []
