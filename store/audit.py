"""The per-dialogue audit hash chain: entry hashing and verification."""

from __future__ import annotations

import hashlib
from dataclasses import asdict, dataclass, field
from pathlib import Path

from concord.store.crypto.envelope import canonical_json
from concord.store.model import AuditEntry

GENESIS = "0" * 64


def entry_hash(entry: AuditEntry) -> str:
    """SHA-256 of 0x00 followed by the canonical JSON of the entry without its hash."""
    fields = asdict(entry)
    fields.pop("hash")
    return hashlib.sha256(b"\x00" + canonical_json(fields)).hexdigest()


def envelopes_digest(hashes: list[str]) -> str:
    """SHA-256 over the sorted envelope hashes of one write operation."""
    return hashlib.sha256("\n".join(sorted(hashes)).encode()).hexdigest()


def file_sha256(path: Path) -> str:
    """SHA-256 of a file's bytes."""
    return hashlib.sha256(path.read_bytes()).hexdigest()


@dataclass
class AuditReport:
    """Outcome of verifying one dialogue's chain and the files it records."""

    dialogue_id: str
    ok: bool
    entries: int
    head: str
    first_broken: int | None = None
    problem: str | None = None
    files_checked: int = 0
    file_problems: list[str] = field(default_factory=list)


def verify_chain(
    dialogue_id: str,
    entries: list[AuditEntry],
    *,
    recorded_head: tuple[int, str] | None = None,
    files_root: Path | None = None,
) -> AuditReport:
    """Recompute every entry hash and link; name the first broken entry; check recorded files."""
    previous = GENESIS
    report = AuditReport(dialogue_id, True, len(entries), GENESIS)
    for position, entry in enumerate(entries, start=1):
        problem = None
        if entry.seq != position:
            problem = f"entry {position} carries seq {entry.seq}: an entry was deleted or reordered"
        elif entry.previous != previous:
            problem = f"entry {position} does not link to entry {position - 1} (deleted, reordered or edited)"
        elif entry_hash(entry) != entry.hash:
            problem = f"entry {position} was edited: its hash does not match its content"
        if problem:
            report.ok, report.first_broken, report.problem = False, position, problem
            return report
        previous = entry.hash
    report.head = previous
    if recorded_head is not None:
        seq, head = recorded_head
        if seq != len(entries) or (seq and head != previous):
            report.ok = False
            report.first_broken = min(seq, len(entries)) + 1
            report.problem = (
                f"the dialogue records {seq} audit entries but {len(entries)} remain: "
                f"the chain was truncated or rolled back after entry {min(seq, len(entries))}"
            )
            return report
    if files_root is not None:
        check_files(report, entries, files_root)
    return report


def check_files(report: AuditReport, entries: list[AuditEntry], root: Path) -> None:
    """Compare each recorded prompt/answer file on disk with the hash written at the time."""
    for entry in entries:
        for relative, digest in entry.files.items():
            report.files_checked += 1
            path = root / relative
            if not path.exists():
                report.file_problems.append(f"{relative}: missing (recorded in audit entry {entry.seq})")
            elif file_sha256(path) != digest:
                report.file_problems.append(f"{relative}: changed since audit entry {entry.seq} recorded it")
    if report.file_problems:
        report.ok = False
        report.problem = report.problem or report.file_problems[0]
