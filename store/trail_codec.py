"""The audit trail's items: write-once records of the exact prompts and answers exchanged, moderator notes,
recorded files, and hash-chain entries."""

from __future__ import annotations

import hashlib
from typing import Any

from concord.store.codec import Record, round_key
from concord.store.ids import partition_key
from concord.store.model import AuditEntry, ModeratorNote, RecordedFile, TextRecord


def text_sk(kind: str, round: int, expert: str, repair: bool) -> str:
    """SK of a prompt or answer record: `{kind}#{RR}#{expert}[#repair]`."""
    return f"{kind}#{round_key(round)}#{expert}" + ("#repair" if repair else "")


def encode_text(dialogue_id: str, t: TextRecord) -> Record:
    clear = {
        "type": t.kind,
        "round": t.round,
        "expert": t.expert,
        "repair": t.repair,
        "sha256": t.sha256,
        "model": t.model,
        "input_tokens": t.input_tokens,
        "output_tokens": t.output_tokens,
        "created_at": t.created_at,
    }
    secret = {"text": t.text, "path": t.path}
    return Record(partition_key(dialogue_id), text_sk(t.kind, t.round, t.expert, t.repair), clear, secret)


def decode_text(item: dict[str, Any], secret: dict[str, Any]) -> TextRecord:
    return TextRecord(
        kind=item["type"],
        round=int(item["round"]),
        expert=item["expert"],
        repair=bool(item["repair"]),
        sha256=item["sha256"],
        model=item.get("model"),
        input_tokens=int(item.get("input_tokens", 0)),
        output_tokens=int(item.get("output_tokens", 0)),
        created_at=item["created_at"],
        text=secret["text"],
        path=secret.get("path"),
    )


def note_prefix(round: int) -> str:
    """SK prefix of the moderator notes for one round."""
    return f"note#{round_key(round)}#"


def encode_note(dialogue_id: str, n: ModeratorNote) -> Record:
    clear = {"type": "note", "round": n.round, "seq": n.seq, "created_at": n.created_at}
    secret = {"text": n.text, "author": n.author}
    return Record(partition_key(dialogue_id), f"{note_prefix(n.round)}{n.seq:03d}", clear, secret)


def decode_note(item: dict[str, Any], secret: dict[str, Any]) -> ModeratorNote:
    return ModeratorNote(
        round=int(item["round"]),
        seq=int(item["seq"]),
        text=secret["text"],
        author=secret.get("author", ""),
        created_at=item["created_at"],
    )


def file_sk(path: str, sha256: str) -> str:
    """SK of one version of a recorded file: `file#{16 hex of SHA-256(path)}#{16 hex of its content's SHA-256}`.

    The path stays sealed; a recording whose judge rewrote a file since the last import keeps both versions.
    """
    return f"file#{hashlib.sha256(path.encode()).hexdigest()[:16]}#{sha256[:16]}"


def encode_file(dialogue_id: str, f: RecordedFile) -> Record:
    clear = {"type": "file", "sha256": f.sha256, "created_at": f.created_at}
    secret = {"path": f.path, "content": f.content, "encoding": f.encoding}
    return Record(partition_key(dialogue_id), file_sk(f.path, f.sha256), clear, secret)


def decode_file(item: dict[str, Any], secret: dict[str, Any]) -> RecordedFile:
    return RecordedFile(
        path=secret["path"],
        content=secret["content"],
        encoding=secret.get("encoding", "utf-8"),
        sha256=item["sha256"],
        created_at=item["created_at"],
    )


def encode_audit(dialogue_id: str, a: AuditEntry) -> Record:
    clear = {"type": "audit", **vars(a)}
    return Record(partition_key(dialogue_id), f"audit#{a.seq:08d}", clear)


def decode_audit(item: dict[str, Any]) -> AuditEntry:
    return AuditEntry(
        seq=int(item["seq"]),
        ts=item["ts"],
        principal=item["principal"],
        operation=item["operation"],
        keys=list(item["keys"]),
        key_id=item.get("key_id"),
        envelopes_sha256=item["envelopes_sha256"],
        files=dict(item.get("files") or {}),
        previous=item["previous"],
        hash=item["hash"],
    )
