"""A decrypted, consistent view of one dialogue partition."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from concord.store.model import (
    AuditEntry,
    Dialogue,
    Entity,
    Event,
    Expert,
    ModeratorNote,
    Move,
    RecordedFile,
    Ref,
    Round,
    Signal,
    TextRecord,
    Verdict,
)

#: Fields that differ between two equal histories written at different times.
VOLATILE_FIELDS = frozenset({"created_at", "updated_at", "converged_at", "signaled_at", "ts"})


@dataclass
class Snapshot:
    """Everything one partition holds, decrypted; equality ignores timestamps and envelope bytes."""

    dialogue: Dialogue
    experts: dict[str, Expert] = field(default_factory=dict)
    rounds: dict[int, Round] = field(default_factory=dict)
    signals: list[Signal] = field(default_factory=list)
    entities: dict[str, Entity] = field(default_factory=dict)
    refs: list[Ref] = field(default_factory=list)
    events: list[Event] = field(default_factory=list)
    verdicts: list[Verdict] = field(default_factory=list)
    moves: list[Move] = field(default_factory=list)
    texts: list[TextRecord] = field(default_factory=list)
    notes: list[ModeratorNote] = field(default_factory=list)
    files: list[RecordedFile] = field(default_factory=list)
    audit: list[AuditEntry] = field(default_factory=list)
    #: (audit seq, audit head) of the partition as loaded; every write moves it.
    version: tuple[int, str] = (0, "")

    def of_kind(self, kind: str, round: int | None = None) -> list[Entity]:
        """Entities of one kind (optionally one round), in round and seq order."""
        return [e for e in self.entities.values() if e.kind == kind and (round is None or e.round == round)]

    def events_of(self, entity_id: str) -> list[Event]:
        """Events of one entity, oldest first."""
        return [e for e in self.events if e.entity_id == entity_id]

    @property
    def last_round(self) -> Round | None:
        """The most recent registered round."""
        return self.rounds[max(self.rounds)] if self.rounds else None

    def comparable(self) -> dict[str, Any]:
        """Content as plain data, without timestamps, hashes over envelopes, or audit bytes."""
        return {
            "dialogue": _strip(asdict(self.dialogue)),
            "experts": _strip({k: asdict(v) for k, v in sorted(self.experts.items())}),
            "rounds": _strip({k: asdict(v) for k, v in sorted(self.rounds.items())}),
            "signals": _strip(sorted((asdict(s) for s in self.signals), key=lambda s: (s["round"], s["expert"]))),
            "entities": _strip({k: {"kind": v.kind, **asdict(v)} for k, v in sorted(self.entities.items())}),
            "refs": _strip(
                sorted((asdict(r) for r in self.refs), key=lambda r: (r["source"], r["ref_type"], r["target"]))
            ),
            "events": _strip([asdict(e) for e in self.events]),
            "verdicts": _strip(sorted((asdict(v) for v in self.verdicts), key=lambda v: v["id"])),
            "moves": _strip([asdict(m) for m in self.moves]),
            "texts": _strip([asdict(t) for t in self.texts]),
            "notes": _strip([asdict(n) for n in self.notes]),
            "files": _strip(sorted((asdict(f) for f in self.files), key=lambda f: (f["path"], f["sha256"]))),
            "audit": [(a.seq, a.operation, sorted(a.keys), a.files) for a in self.audit],
        }

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Snapshot):
            return NotImplemented
        return self.comparable() == other.comparable()


def _strip(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _strip(v) for k, v in value.items() if k not in VOLATILE_FIELDS}
    if isinstance(value, list):
        return [_strip(v) for v in value]
    return value
