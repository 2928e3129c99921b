"""Docs drift fails the tests: every CLI command is in the README with a --help text."""

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
