"""The command line: thin commands that open the store, call one function, and turn a
MonitorError into a message and an exit code (2 for bad input or config, 1 otherwise).

The group is defined here and only here; each module of this package holds a set of
subcommands (``COMMANDS``) and imports ``monitor.cli.context`` for what they share, never
this module."""

from __future__ import annotations

import re
import sys

import click

from monitor import __version__
from monitor.cli import model, review, service, web
from monitor.exceptions import MonitorError


class _Group(click.Group):
    """Turns every MonitorError into `error: …` on stderr and its exit code."""

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except MonitorError as exc:
            click.echo(f"error: {_with_file(ctx, exc)}", err=True)
            sys.exit(exc.exit_code)


_SECTION_KEY = re.compile(r"(store|poll|feeds|classifier|keywords|digest|smtp|serve)[.\[]")


def _with_file(ctx, exc: MonitorError) -> str:
    """A config error found after loading ("smtp.password_env: … is not set") named with
    its file too, as every config error is."""
    from monitor.config import config_path
    from monitor.exceptions import ConfigError

    message = str(exc)
    if isinstance(exc, ConfigError) and _SECTION_KEY.match(message):
        return f"{config_path((ctx.obj or {}).get('config_file'))}: {message}"
    return message


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--config", "config_file", metavar="PATH", envvar="MONITOR_CONFIG",
              help="Config file (default: $MONITOR_CONFIG, else config/monitor.toml in the "
                   "current folder, else the example config shipped with monitor).")
@click.option("--log-level", default="info", show_default=True,
              type=click.Choice(["debug", "info", "warning", "error"], case_sensitive=False))
@click.option("--log-format", default="text", show_default=True, type=click.Choice(["text", "json"]))
@click.version_option(__version__, prog_name="monitor")
@click.pass_context
def cli(ctx, config_file, log_level, log_format):
    """Watch news feeds for critical minerals and export controls.

    \b
    Examples:
      monitor config check          validate the config, print it with secrets masked
      monitor poll --all            poll every feed once and print what came in
      monitor feeds                 feed health, broken feeds first
    """
    from monitor.logs import setup_logging

    setup_logging(log_level, log_format)
    ctx.obj = {"config_file": config_file}


for _module in (service, model, review, web):
    for _command in _module.COMMANDS:
        cli.add_command(_command)


def main() -> None:
    cli(prog_name="monitor")
