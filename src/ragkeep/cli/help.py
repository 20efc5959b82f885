"""`--help` in the words the docs use: `add [OPTIONS] PATH...`, `watch [OPTIONS] [PATH...]`.

This typer renders a required argument as `{PATH...}...`, an optional one as `[[PATH...]]...`
and adds its Python type (`<list[Path]>`); a user reads those as syntax to type.

A query that starts with `-` (`--rebase-merges`) reads as an unknown option; the error then
shows how to search for it.
"""

from __future__ import annotations

import shlex
from typing import Any

import typer.core
from typer._click import Context, HelpFormatter, Parameter
from typer._click.exceptions import NoSuchOption


def _argument_name(param: Parameter) -> str:
    name = param.metavar or (param.name or "ARG").upper()
    if param.nargs != 1 and not name.endswith("..."):
        name += "..."
    return name if param.required else f"[{name}]"


class PlainHelpCommand(typer.core.TyperCommand):
    """A command whose usage line and Arguments section show `PATH...` / `[PATH...]`."""

    def collect_usage_pieces(self, ctx: Context) -> list[str]:
        pieces = [self.options_metavar] if self.options_metavar else []
        for param in self.get_params(ctx):
            if param.param_type_name == "argument":
                pieces.append(_argument_name(param))
            else:
                pieces.extend(param.get_usage_pieces(ctx))
        return pieces

    def format_options(self, ctx: Context, formatter: HelpFormatter) -> None:
        args: list[tuple[str, str]] = []
        opts: list[tuple[str, str]] = []
        for param in self.get_params(ctx):
            record: Any = param.get_help_record(ctx)
            if record is None:
                continue
            if param.param_type_name == "argument":
                args.append((_argument_name(param), record[1]))
            else:
                opts.append(record)
        for title, rows in (("Arguments", args), ("Options", opts)):
            if rows:
                with formatter.section(title):
                    formatter.write_dl(rows)

    def parse_args(self, ctx: Context, args: list[str]) -> list[str]:
        try:
            return super().parse_args(ctx, args)
        except NoSuchOption as exc:
            if any(p.name in ("query", "question") for p in self.params):
                # Display only, never run: shlex.quote shows how to type it.
                exc.message += (
                    f"\nTo search for text that starts with '-', put -- before it: "
                    f"ragkeep {ctx.info_name} -- {shlex.quote(exc.option_name)}"
                )
            raise
