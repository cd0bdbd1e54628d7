"""``mltrail`` command line. Each command group lives in its own module and is imported only when used,
so ``mltrail --version`` stays instant."""

from __future__ import annotations

import importlib
import importlib.util

import click

from mltrail.version import __version__

#: command name -> (module, attribute). Aliases point at the same command.
_COMMANDS: dict[str, tuple[str, str]] = {
    "experiments": ("mltrail.cli.experiments", "experiments"),
    "runs": ("mltrail.cli.runs", "runs"),
    "artifacts": ("mltrail.cli.artifacts", "artifacts"),
    "sync": ("mltrail.cli.sync", "sync"),
    "db": ("mltrail.cli.db", "db"),
    "gc": ("mltrail.cli.gc", "gc"),
    "server": ("mltrail.cli.server", "server"),
    "ui": ("mltrail.cli.server", "server"),
}


class _LazyGroup(click.Group):
    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(name for name, (module, _) in _COMMANDS.items() if importlib.util.find_spec(module))

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        target = _COMMANDS.get(cmd_name)
        if target is None or importlib.util.find_spec(target[0]) is None:
            return None
        return getattr(importlib.import_module(target[0]), target[1])


@click.group(cls=_LazyGroup)
@click.version_option(__version__, prog_name="mltrail")
def cli() -> None:
    """mltrail: ML experiment tracking, MLflow-compatible."""


def main() -> None:
    cli()
