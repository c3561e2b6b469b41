"""Global options anywhere on the line, as kubectl and gh take them:
``lifecycle-es stage --store URL`` is ``lifecycle-es --store URL stage``."""

from __future__ import annotations

from typing import Any

from typer.core import TyperGroup, TyperOption


def hoisted(args: list[str], valued: set[str]) -> list[str]:
    """``args`` with each option of ``valued`` (global options taking a value) given after
    the sub-command moved before it, with its value (``--store URL`` or ``--store=URL``).
    Nothing after ``--`` moves."""
    front: list[str] = []
    rest: list[str] = []
    command_seen = False
    i = 0
    while i < len(args):
        arg = args[i]
        if arg == "--":
            rest.extend(args[i:])
            break
        name, equals, _ = arg.partition("=")
        if name in valued:
            taken = args[i:i + 1] if equals else args[i:i + 2]
            (front if command_seen else rest).extend(taken)
            i += len(taken)
            continue
        if not arg.startswith("-"):
            command_seen = True
        rest.append(arg)
        i += 1
    return front + rest


class GlobalOptionsGroup(TyperGroup):
    """The top-level group: its options that take a value are accepted after the
    sub-command too."""

    def parse_args(self, ctx: Any, args: list[str]) -> list[str]:
        valued = {opt for p in self.params if isinstance(p, TyperOption) and not p.is_flag
                  for opt in p.opts}
        return super().parse_args(ctx, hoisted(list(args), valued))
