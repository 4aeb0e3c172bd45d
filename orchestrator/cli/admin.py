"""`concord keys`, `store` and `tokens`: key files and rotation, the database or table, API tokens."""

from __future__ import annotations

import argparse
import asyncio
from dataclasses import asdict

from concord.orchestrator.cli.command import ExitCode, emit, with_stores
from concord.orchestrator.cli.parser import Commands, add_command, add_group, duration
from concord.store.config import Settings
from concord.store.factory import Stores, check_key_file, open_backend


def add_commands(commands: Commands) -> None:
    """Add the keys, store and tokens groups."""
    keys = add_group(commands, "keys", "manage the encryption keys")
    add_command(keys, "init", "create the local key file (0600); back it up, it cannot be recreated").set_defaults(
        func=keys_init_command
    )
    rotate = add_command(keys, "rotate", "give a dialogue a new data key version for its next writes")
    rotate.add_argument("--dialogue", required=True, metavar="ID", help="the dialogue whose data key to rotate")
    rotate.set_defaults(func=keys_rotate_command)
    sweep = add_command(keys, "sweep", "re-encrypt items still under older data key versions")
    sweep.add_argument("--dialogue", metavar="ID", help="only this dialogue (default: every dialogue of the tenant)")
    sweep.set_defaults(func=keys_sweep_command)

    store = add_group(commands, "store", "set up the storage backend")
    add_command(store, "init", "create the SQLite database or the DynamoDB table and its indexes").set_defaults(
        func=store_init_command
    )

    tokens = add_group(commands, "tokens", "manage the API's bearer tokens")
    add = add_command(tokens, "add", "create a bearer token; it is printed once, only its hash is kept")
    add.add_argument("--tenant", help="the tenant the token reads and writes (default: CONCORD_TENANT, or local)")
    add.add_argument(
        "--scopes", default="read", help="comma-separated scopes, read and/or write (default: %(default)s)"
    )
    add.add_argument("--name", default="token", help="a name for the token, recorded as the API's principal")
    add.add_argument(
        "--expires", type=duration, metavar="DURATION", help="refuse the token after this long: 90m, 12h, 30d, 2w"
    )
    add.set_defaults(func=tokens_add_command)
    add_command(tokens, "list", "every token's name, tenant, scopes, creation, expiry and last use").set_defaults(
        func=tokens_list_command
    )
    revoke = add_command(tokens, "revoke", "delete a token: refused from then on, open websockets closed")
    revoke.add_argument("name", metavar="NAME", help="the token's name")
    revoke.set_defaults(func=tokens_revoke_command)


def keys_init_command(args: argparse.Namespace) -> int:
    """`concord keys init`: a new local UMK file; refused if one exists."""
    from concord.store.crypto.keys import LocalKeyProvider

    settings = Settings.from_env()
    LocalKeyProvider.create_key_file(settings.key_file)
    emit(
        args,
        {"key_file": str(settings.key_file)},
        f"created {settings.key_file} (mode 0600); back it up: it cannot be recreated",
    )
    return ExitCode.OK


def keys_rotate_command(args: argparse.Namespace) -> int:
    """`concord keys rotate`: the next data key version of one dialogue."""

    async def action(stores: Stores) -> int:
        version = await stores.dialogues.rotate_key(args.dialogue)
        emit(
            args,
            {"dialogue_id": args.dialogue, "version": version},
            f"{args.dialogue}: new data key v{version}; run `concord keys sweep --dialogue {args.dialogue}`",
        )
        return ExitCode.OK

    return asyncio.run(with_stores(Settings.from_env(), action))


def keys_sweep_command(args: argparse.Namespace) -> int:
    """`concord keys sweep`: re-seal what older key versions still hold."""

    async def action(stores: Stores) -> int:
        ids = [args.dialogue] if args.dialogue else await stores.analytics.dialogue_ids()
        counts = {dialogue_id: await stores.dialogues.sweep_keys(dialogue_id) for dialogue_id in ids}
        emit(
            args,
            {"rewritten": counts},
            "\n".join(f"{k}: {v} item(s) re-encrypted" for k, v in counts.items()) or "nothing to sweep",
        )
        return ExitCode.OK

    return asyncio.run(with_stores(Settings.from_env(), action))


def store_init_command(args: argparse.Namespace) -> int:
    """`concord store init`: the table or database; refused when data exists but the local key file is missing."""
    settings = Settings.from_env()

    async def run() -> int:
        backend = await open_backend(settings)
        try:
            if settings.store == "dynamodb":
                from concord.store.backends.dynamodb import DynamoDBBackend

                created = isinstance(backend, DynamoDBBackend) and await backend.create_table()
                text = f"table {settings.table} {'created' if created else 'already exists'}"
            else:
                text = f"database {settings.database} ready"
            await check_key_file(settings, backend)
        finally:
            await backend.close()
        if settings.key_provider == "local" and not settings.key_file.exists():
            text += f"; no key file yet: the first write creates {settings.key_file}, or run `concord keys init`"
        emit(args, {"store": settings.store, "message": text}, text)
        return ExitCode.OK

    return asyncio.run(run())


def tokens_add_command(args: argparse.Namespace) -> int:
    """`concord tokens add`: a new token, shown once."""
    from concord.resolvers.tokens import add_token

    scopes = [s.strip() for s in args.scopes.split(",") if s.strip()]
    settings = Settings.from_env()
    tenant = args.tenant or settings.tenant
    token = add_token(settings.tokens_file, tenant, scopes, args.name, expires_in=args.expires)
    emit(
        args,
        {"token": token, "name": args.name, "tenant": tenant, "scopes": scopes},
        f"{token}\n(shown once; only its hash is stored in {settings.tokens_file})",
    )
    return ExitCode.OK


def tokens_list_command(args: argparse.Namespace) -> int:
    """`concord tokens list`: what each token is for, never the token or its hash."""
    from concord.resolvers.tokens import list_tokens

    listed = list_tokens(Settings.from_env().tokens_file)
    rows = [
        f"{t.name}  tenant {t.tenant}  scopes {','.join(t.scopes)}  created {t.created_at or '?'}  "
        f"expires {t.expires_at or 'never'}{' (expired)' if t.expired else ''}  last used {t.last_used_at or 'never'}"
        for t in listed
    ]
    emit(args, {"tokens": [asdict(t) for t in listed]}, "\n".join(rows) or "no tokens")
    return ExitCode.OK


def tokens_revoke_command(args: argparse.Namespace) -> int:
    """`concord tokens revoke NAME`: the token is refused from the server's next check on."""
    from concord.resolvers.tokens import revoke_token

    settings = Settings.from_env()
    revoke_token(settings.tokens_file, args.name)
    emit(args, {"revoked": args.name}, f"revoked {args.name}; servers refuse it and close its websockets within 5 s")
    return ExitCode.OK
