"""`concord audit verify` and `audit checkpoint`: the per-dialogue hash chains and signed checkpoints of them."""

from __future__ import annotations

import argparse
import asyncio
import json
from pathlib import Path
from typing import Any

from concord.orchestrator.cli.command import ExitCode, emit, with_stores
from concord.orchestrator.cli.parser import Commands, add_command, add_group
from concord.store.config import Settings
from concord.store.factory import Stores


def add_commands(commands: Commands) -> None:
    """Add the audit group: verify and checkpoint."""
    audit = add_group(commands, "audit", "verify the audit chains and sign checkpoints of them")
    verify = add_command(
        audit, "verify", "recompute audit chains and check the recorded files; exit 1 if one is broken"
    )
    verify.add_argument("dialogue_id", nargs="?", help="only this dialogue (default: every dialogue of the tenant)")
    verify.add_argument(
        "--checkpoint", metavar="FILE", help="a signed checkpoint every chain must still extend, none deleted"
    )
    verify.set_defaults(func=verify_command)
    checkpoint = add_command(audit, "checkpoint", "sign every dialogue's chain head (Ed25519) into a checkpoint file")
    checkpoint.add_argument(
        "--out", default="concord-checkpoint.json", metavar="FILE", help="where to write it (default: %(default)s)"
    )
    checkpoint.set_defaults(func=checkpoint_command)


def verify_command(args: argparse.Namespace) -> int:
    """`concord audit verify`: 0 when every chain checks out, 1 naming the first broken entry otherwise."""
    from concord.store.checkpoint import load_signing_key, read_checkpoint, verify_checkpoint
    from concord.store.errors import NotFound

    async def action(stores: Stores) -> int:
        heads: dict[str, tuple[int, str]] = {}
        if args.checkpoint:
            key = load_signing_key(stores.settings.checkpoint_key)
            heads = verify_checkpoint(read_checkpoint(Path(args.checkpoint)), key, stores.dialogues.tenant)
        ids = (
            [args.dialogue_id] if args.dialogue_id else sorted(set(await stores.analytics.dialogue_ids()) | set(heads))
        )
        results: list[dict[str, Any]] = []
        for dialogue_id in ids:
            try:
                dialogue = await stores.dialogues.get_dialogue(dialogue_id)
            except NotFound:
                results.append(
                    {
                        "dialogue_id": dialogue_id,
                        "ok": False,
                        "entries": 0,
                        "files_checked": 0,
                        "problem": "in the checkpoint but gone from the store (deleted)",
                    }
                )
                continue
            root = Path(dialogue.output_dir) if dialogue.output_dir else None
            report = await stores.dialogues.verify_audit(
                dialogue_id, files_root=root, checkpoint=heads.get(dialogue_id)
            )
            results.append(vars(report))
        ok = all(r["ok"] for r in results)
        lines = [
            f"{r['dialogue_id']}: {'ok' if r['ok'] else 'BROKEN'} ({r['entries']} entries, {r['files_checked']} files)"
            + ("" if r["ok"] else f" - {r['problem']}")
            for r in results
        ]
        emit(args, {"ok": ok, "checkpoint": args.checkpoint, "dialogues": results}, "\n".join(lines) or "no dialogues")
        return ExitCode.OK if ok else ExitCode.ERROR

    return asyncio.run(with_stores(Settings.from_env(), action))


def checkpoint_command(args: argparse.Namespace) -> int:
    """`concord audit checkpoint`: a signed snapshot of every chain head (the signing key is made on first use)."""
    from concord.store.checkpoint import create_signing_key, load_signing_key, sign_checkpoint

    async def action(stores: Stores) -> int:
        key_path = stores.settings.checkpoint_key
        if not key_path.exists():
            create_signing_key(key_path)
        heads = await stores.analytics.chain_heads()
        document = sign_checkpoint(load_signing_key(key_path), stores.dialogues.tenant, heads)
        out = Path(args.out)
        out.write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")
        emit(
            args,
            {"path": str(out), "dialogues": len(heads)},
            f"signed checkpoint of {len(heads)} dialogue chain(s) -> {out}",
        )
        return ExitCode.OK

    return asyncio.run(with_stores(Settings.from_env(), action))
