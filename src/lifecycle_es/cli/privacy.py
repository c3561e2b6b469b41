"""Privacy commands: ``erase`` one customer's personal data, and ``keys`` (the master key).

The master key itself never comes from the command line: it is read from the environment
or a key file (docs/privacy.md); ``keys new-master`` prints a new one for you to store.
"""

from __future__ import annotations

import getpass
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from lifecycle_es.cli.context import state
from lifecycle_es.cli.output import plural, print_json, say
from lifecycle_es.commands import build_erasure
from lifecycle_es.engine import (
    KEY_ENV_VAR,
    KEY_FILE_ENV_VAR,
    MasterKey,
    new_master_key_text,
    read_key_file,
)
from lifecycle_es.errors import LifecycleError, MasterKeyError

if TYPE_CHECKING:
    from lifecycle_es.domain.customer import Customer

#: where ``keys rotate-master`` reads the new key when no file is given
NEW_KEY_ENV_VAR = "LIFECYCLE_ES_NEW_MASTER_KEY"

keys = typer.Typer(help="The master key that wraps every customer's data key.",
                   no_args_is_help=True)


def register(app: typer.Typer) -> None:
    app.command("erase")(erase)
    app.add_typer(keys, name="keys")


def erase(
    ctx: typer.Context,
    customer: Annotated[str, typer.Argument(metavar="ID", help="external id of the customer")],
    reason: Annotated[str, typer.Option(
        help="why, e.g. the request's reference (recorded; no personal data)")],
    actor: Annotated[str | None, typer.Option(
        metavar="NAME", help="who erases it (default: the OS user)")] = None,
    yes: Annotated[bool, typer.Option(
        "--yes", "-y", help="erase without asking (needed when stdin is not a terminal)")]
    = False,
    dry_run: Annotated[bool, typer.Option(
        "--dry-run", help="only show what would be erased; write nothing")] = False,
    json: Annotated[bool, typer.Option("--json", help="print the result as JSON")] = False,
) -> None:
    """Erase one customer's personal data: its data key is deleted and the erasure recorded.

    Its names, notes, comments, documents and reasons read "\\[erased]" everywhere.
    Metrics, stages, handovers and the audit chain are unchanged.

    It cannot be undone: it shows what it will erase and asks on a terminal (--yes for
    scripts, --dry-run to only show).

    Backups made earlier still hold the key: see docs/privacy.md.
    """
    build_erasure({"customer": customer, "reason": reason,  # refused before anything is shown
                   "actor": actor if actor is not None else getpass.getuser()})
    engine = state(ctx).engine()
    found = engine.customer(customer)
    already = found.state.erased_at
    if dry_run:
        _show_plan(found, already is not None, err=json)
        if json:
            print_json({"customer": found.external_id, "events": found.version,
                        "stage": found.state.stage, "already_erased": already is not None,
                        "erased": False, "dry_run": True})
        return
    if not yes:
        if not sys.stdin.isatty():
            say("error: erase cannot be undone: pass --yes to erase without a terminal to "
                "confirm on (or --dry-run to only show)", err=True)
            raise typer.Exit(2)
        _show_plan(found, already is not None, err=True)
        if not typer.confirm(f"erase customer {found.external_id!r}?", default=False,
                             err=True):
            say("nothing erased", err=True)
            raise typer.Exit(1)
    try:
        version = engine.erase(customer=customer, reason=reason, actor=actor)
    except LifecycleError:
        if already is None and engine.customer(customer).state.erased_at is not None:
            say(f"erased customer {customer!r} (its key deleted, the erasure recorded), but "
                "the read models could not catch up: they keep its copies until they do "
                "(`lifecycle-es projections run --once`; docs/privacy.md)", err=True)
        raise
    erased = engine.customer(customer)
    if json:
        print_json({"customer": erased.external_id, "erased": True, "version": version})
    else:
        say(f"erased customer {erased.external_id!r}: its personal data reads \"[erased]\" "
            f"(erasure recorded as event {version})")


def _show_plan(found: Customer, already: bool, *, err: bool) -> None:
    """What ``erase`` would do to the customer ``found``, in one line."""
    say(f"erase customer {found.external_id!r} ({found.state.stage}, "
        f"{plural(found.version, 'event')}): its data key is deleted, so its name, notes, "
        "comments, handover documents and reasons read \"[erased]\" for good; metrics, "
        "stages and the audit chain stay" + (" (already erased)" if already else ""), err=err)


@keys.command("new-master")
def new_master() -> None:
    """Print a new random master key (URL-safe base64) to store in a key file or secret.

    Use it as $LIFECYCLE_ES_MASTER_KEY or in the file named by
    $LIFECYCLE_ES_MASTER_KEY_FILE; never pass it on a command line.
    """
    sys.stdout.write(new_master_key_text() + "\n")
    if sys.stdout.isatty():
        say(f"store it in a file readable only by you (chmod 600) and name it in "
            f"${KEY_FILE_ENV_VAR}, or set ${KEY_ENV_VAR}", err=True)


@keys.command("status")
def status(ctx: typer.Context,
           json: Annotated[bool, typer.Option("--json", help="print as JSON")] = False) -> None:
    """The fingerprint of the store's master key, and where this process got the key."""
    master = state(ctx).reader().master_key
    assert master is not None
    out = {"fingerprint": master.fingerprint, "source": master.source}
    if json:
        print_json(out)
    else:
        say(f"master key {out['fingerprint']}, from {out['source']}")


@keys.command("rotate-master")
def rotate_master(
    ctx: typer.Context,
    new_key_file: Annotated[Path | None, typer.Option(
        metavar="FILE", help=f"file holding the new key (else ${NEW_KEY_ENV_VAR})")] = None,
) -> None:
    """Re-wrap every data key under a new master key, in one transaction (events untouched).

    The current key is the configured one; the new key comes from FILE or
    $LIFECYCLE_ES_NEW_MASTER_KEY. Afterwards every process must use the new key.
    """
    if new_key_file is not None:
        new = read_key_file(new_key_file, "--new-key-file")
    elif (text := os.environ.get(NEW_KEY_ENV_VAR)) is not None:
        new = MasterKey.parse(text, f"${NEW_KEY_ENV_VAR}")
    else:
        raise MasterKeyError(f"new key: give --new-key-file FILE or set ${NEW_KEY_ENV_VAR} "
                             "(make one with `lifecycle-es keys new-master`)")
    engine = state(ctx).engine()
    assert engine.master_key is not None
    if new.fingerprint == engine.master_key.fingerprint:
        raise MasterKeyError(f"new key: it is the store's current key ({new.fingerprint})")
    count = engine.rotate_master_key(new)
    say(f"re-wrapped {count} data key{'s' if count != 1 else ''} under master key "
        f"{new.fingerprint}; configure that key (${KEY_ENV_VAR} or ${KEY_FILE_ENV_VAR}) "
        "for every process now")
