"""Verifying a stored partition: its audit chain, every item's signature, that nothing recorded is gone, a checkpoint."""

from __future__ import annotations

from pathlib import Path

from concord.store import trail_codec
from concord.store.audit import GENESIS, AuditReport, verify_chain
from concord.store.crypto.signing import SignedBackend
from concord.store.ids import partition_key
from concord.store.reads import owned, owned_meta


async def verify_partition(
    items: SignedBackend,
    tenant: str,
    dialogue_id: str,
    *,
    files_root: Path | None = None,
    checkpoint: tuple[int, str] | None = None,
) -> AuditReport:
    """Check the audit chain, every item's signature, that no recorded item is gone, and recorded files.

    With `checkpoint` (seq, head) from a signed checkpoint, also check the chain still extends it.
    """
    await owned_meta(items, tenant, dialogue_id)  # before the partition is read: another tenant's id costs no more
    reads = await items.query_raw(partition_key(dialogue_id), consistent=True)
    raw = [item for item, _ in reads]
    meta = owned(tenant, dialogue_id, next((i for i in raw if i["sk"] == "meta"), None))
    entries = [trail_codec.decode_audit(i) for i in raw if i["sk"].startswith("audit#")]
    head = (int(meta.get("audit_seq", 0)), str(meta.get("audit_head", GENESIS)))
    report = verify_chain(dialogue_id, entries, recorded_head=head, files_root=files_root)
    if not report.ok:
        return report
    forged = [i["sk"] for i, stored in reads if not await items.is_authentic(i, stored)]
    if forged:
        return _broken(
            report,
            None,
            f"item {forged[0]}: attributes do not match their signature "
            f"(changed, inserted or replaced outside Concord; {len(forged)} item(s) in all)",
        )
    present = {i["sk"] for i in raw}
    expected: dict[str, int] = {}
    for entry in entries:
        for key in entry.keys:
            if entry.operation == "destroy_keys":
                expected.pop(key, None)
            else:
                expected[key] = entry.seq
    missing = sorted((seq, key) for key, seq in expected.items() if key not in present)
    if missing:
        seq, key = missing[0]
        return _broken(report, seq, f"item {key}, written by audit entry {seq}, is missing (deleted outside Concord)")
    if checkpoint is not None:
        seq, digest = checkpoint
        if seq > len(entries) or (seq and entries[seq - 1].hash != digest):
            return _broken(
                report,
                min(seq, len(entries) + 1),
                f"the chain no longer extends the checkpoint (seq {seq}): rolled back or rewritten",
            )
    return report


def _broken(report: AuditReport, entry: int | None, problem: str) -> AuditReport:
    """The report marked broken at `entry` with `problem`."""
    report.ok, report.first_broken, report.problem = False, entry, problem
    return report
