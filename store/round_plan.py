"""Planning a round batch: validate it against the snapshot (every problem at once) and lay out its records."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import replace
from typing import Any

from concord.store import codec
from concord.store.codec import Record
from concord.store.errors import Problem, ValidationFailed
from concord.store.ids import (
    ENTITY_KINDS,
    KIND_BY_PREFIX,
    PREFIX_BY_KIND,
    check_expert_slug,
    display_id,
    entity_sk,
    is_display_id,
    parse_display_id,
    parse_local_id,
    partition_key,
)
from concord.store.model import (
    ENTITY_CLASSES,
    STATUSES,
    UNRESOLVED_TENSION,
    Entity,
    Event,
    Expert,
    Ref,
    Round,
    RoundBatch,
    Signal,
)
from concord.store.rules import transition_allowed
from concord.store.snapshot import Snapshot
from concord.store.validation import ref_rule_problems, ref_shape_problems, transition_problem


class RoundPlan:
    """The records a validated round batch turns into."""

    def __init__(self) -> None:
        self.records: list[Record] = []
        self.status_records: list[Record] = []
        self.mapping: dict[str, str] = {}
        self.files: dict[str, str] = {}
        self.experts: list[Expert] = []
        self.ms = 0
        self.round_record: Record
        self.round: Round


def plan_round(snap: Snapshot, batch: RoundBatch, tenant: str, now: str, now_ms: int) -> RoundPlan:
    """Validate a batch against the snapshot (collecting every problem) and plan its records."""
    problems: list[Problem] = []
    dialogue_id = snap.dialogue.id
    expected = snap.dialogue.total_rounds
    if batch.round != expected:
        problems.append(
            Problem(
                "invalid_round",
                f"round {batch.round} cannot be registered now; the next round is {expected}",
                "round",
                f"register round {expected}",
            )
        )
    plan = RoundPlan()
    plan.ms = now_ms
    seqs: dict[str, int] = defaultdict(int)
    for e in snap.entities.values():
        if e.round == batch.round:
            seqs[e.kind] = max(seqs[e.kind], e.seq)
    local_kinds: dict[str, str] = {}
    for n, draft in enumerate(batch.entities):
        where = f"entities[{n}]"
        if draft.kind not in ENTITY_KINDS:
            problems.append(
                Problem(
                    "invalid_entity_type",
                    f"unknown entity kind {draft.kind!r}",
                    f"{where}.kind",
                    f"one of {', '.join(ENTITY_KINDS)}",
                )
            )
            continue
        if not draft.local_id:
            problems.append(
                Problem(
                    "missing_field",
                    "every entity needs a batch-unique local id",
                    f"{where}.local_id",
                    "use the author's local id, e.g. MUFFIN-P0101",
                )
            )
        elif draft.local_id in plan.mapping:
            problems.append(
                Problem(
                    "duplicate_local_id",
                    f"local id {draft.local_id} appears twice",
                    f"{where}.local_id",
                    "give each entity its own local id",
                )
            )
        if not draft.label.strip():
            problems.append(
                Problem("missing_field", f"a {draft.kind} needs a label", f"{where}.label", "add a short label")
            )
        if not draft.content.strip():
            name = "description" if draft.kind == "tension" else "content"
            problems.append(
                Problem("missing_field", f"a {draft.kind} needs its {name}", f"{where}.content", f"add the {name}")
            )
        letter = _local_letter(draft.local_id)
        if letter and letter != PREFIX_BY_KIND[draft.kind]:
            problems.append(
                Problem(
                    "type_id_mismatch",
                    f"local id {draft.local_id} names a {KIND_BY_PREFIX.get(letter, letter)}, not a {draft.kind}",
                    f"{where}.local_id",
                    f"use a {PREFIX_BY_KIND[draft.kind]} id",
                )
            )
        if draft.status is not None and draft.status not in STATUSES[draft.kind]:
            problems.append(
                Problem(
                    "invalid_status",
                    f"{draft.status!r} is not a {draft.kind} status",
                    f"{where}.status",
                    f"one of {', '.join(STATUSES[draft.kind])}",
                )
            )
        seqs[draft.kind] += 1
        if seqs[draft.kind] > 99:
            problems.append(
                Problem(
                    "too_many_entities",
                    f"more than 99 {draft.kind} entities in round {batch.round}",
                    where,
                    "split or merge entities",
                )
            )
            continue
        if draft.local_id and batch.round <= 99:
            plan.mapping[draft.local_id] = display_id(draft.kind, batch.round, seqs[draft.kind])
            local_kinds[draft.local_id] = draft.kind

    def resolve(value: str) -> str:
        return plan.mapping.get(value, value)

    refs: list[tuple[str, Ref]] = []
    for n, draft in enumerate(batch.entities):
        source = plan.mapping.get(draft.local_id or "")
        for m, drafted in enumerate(draft.references):
            refs.append(
                (f"entities[{n}].references[{m}]", Ref(source or "", drafted.ref_type, resolve(drafted.target)))
            )
    for n, drafted in enumerate(batch.refs):
        refs.append((f"refs[{n}]", Ref(resolve(drafted.source or ""), drafted.ref_type, resolve(drafted.target))))
    known = set(snap.entities) | set(plan.mapping.values())
    seen_refs: set[tuple[str, str, str]] = set()
    for where, ref in refs:
        if not ref.source:
            continue
        shape = ref_shape_problems(where, ref.source, ref.ref_type, ref.target)
        if shape:
            problems += shape
            continue
        if ref.target not in known:
            problems.append(
                Problem(
                    "target_not_found",
                    f"{ref.target} does not exist in dialogue {dialogue_id}",
                    f"{where}.target",
                    "refer to an earlier global id or a local id of this batch",
                )
            )
            continue
        rule = ref_rule_problems(where, ref.source, ref.ref_type, ref.target)
        if rule:
            problems += rule
            continue
        key = (ref.source, ref.ref_type, ref.target)
        if key not in seen_refs and not any((r.source, r.ref_type, r.target) == key for r in snap.refs):
            seen_refs.add(key)
            ref.created_at = now
            plan.records += list(codec.ref_records(dialogue_id, ref))

    statuses = {eid: e.status for eid, e in snap.entities.items()}
    new_entities: dict[str, Entity] = {}
    for draft in batch.entities:
        gid = plan.mapping.get(draft.local_id or "")
        if gid is None or draft.kind not in ENTITY_KINDS:
            continue
        status = draft.status or STATUSES[draft.kind][0]
        entity = ENTITY_CLASSES[draft.kind](
            id=gid,
            round=batch.round,
            seq=parse_display_id(gid)[2],
            label=draft.label,
            content=draft.content,
            status=status,
            contributors=list(draft.contributors),
            created_at=now,
            updated_at=now,
            local_id=draft.local_id,
            aliases=list(draft.aliases),
            warnings=list(draft.warnings),
            parameters=draft.parameters,
        )
        new_entities[gid] = entity
        statuses[gid] = status
        plan.records.append(codec.encode_entity(dialogue_id, entity, tenant))
        if draft.kind in ("perspective", "tension", "recommendation"):
            event = Event(draft.kind, gid, "created", batch.round, now, list(draft.contributors), seq=0)
            plan.records.append(codec.encode_event(dialogue_id, event, now_ms))

    event_seq: dict[str, int] = defaultdict(int)
    for n, change in enumerate(batch.status_changes):
        where = f"status_changes[{n}]"
        gid = resolve(change.id)
        if not is_display_id(gid):
            problems.append(
                Problem(
                    "invalid_display_id", f"{change.id!r} is not a display id", f"{where}.id", "use an id like T0101"
                )
            )
            continue
        if gid not in statuses:
            problems.append(
                Problem(
                    "target_not_found",
                    f"{gid} does not exist in dialogue {dialogue_id}",
                    f"{where}.id",
                    "refer to an existing entity",
                )
            )
            continue
        kind = KIND_BY_PREFIX[gid[0]]
        current = statuses[gid]
        if not transition_allowed(kind, current, change.status):
            problems.append(transition_problem(f"{where}.status", kind, gid, current, change.status))
            continue
        statuses[gid] = change.status
        event_seq[gid] += 1
        event = Event(
            kind,
            gid,
            change.status,
            batch.round,
            now,
            list(change.actors),
            change.reason,
            resolve(change.reference) if change.reference else None,
            change.result_id,
            seq=event_seq[gid],
        )
        plan.status_records.append(codec.encode_event(dialogue_id, event, now_ms))
        if gid in new_entities:
            continue
        plan.status_records.append(_status_update_record(snap, gid, change.status, now, tenant))

    # Several changes of one existing entity become one update to its last status (a transaction touches an
    # item once; the commit makes it conditional on the item as read).
    events = [record for record in plan.status_records if record.sk.startswith("event#")]
    updates = {record.sk: record for record in plan.status_records if not record.sk.startswith("event#")}
    plan.status_records = events + list(updates.values())
    for gid, entity in new_entities.items():
        if entity.status != statuses[gid]:
            entity.status = statuses[gid]
            plan.records = [
                codec.encode_entity(dialogue_id, entity, tenant) if r.sk == entity_sk(gid) else r for r in plan.records
            ]

    for n, expert in enumerate(batch.experts):
        try:
            check_expert_slug(expert.slug)
        except ValueError as exc:
            problems.append(Problem("invalid_expert", str(exc), f"experts[{n}].slug", "use the lowercase pastry name"))
            continue
        if expert.slug not in snap.experts:
            plan.experts.append(replace(expert, created_at=expert.created_at or now, first_round=batch.round))
    answered = list(
        dict.fromkeys(batch.answered or [s.name.lower() for s in batch.panel if s.name.lower() not in batch.absent])
    )
    seated = sorted({s.slug for s in batch.panel} or set(answered) | set(batch.absent))
    signals = sorted(set(batch.signals) & set(answered))
    for signaller in signals:
        plan.records.append(codec.encode_signal(dialogue_id, Signal(batch.round, signaller, now)))
    for move in batch.moves:
        plan.records.append(codec.encode_move(dialogue_id, move))
    if problems:
        raise ValidationFailed(problems)

    open_tensions = batch.open_tensions
    if open_tensions is None:
        open_tensions = sum(1 for eid, s in statuses.items() if eid.startswith("T") and s in UNRESOLVED_TENSION)
    new_perspectives = batch.new_perspectives
    if new_perspectives is None:
        new_perspectives = sum(1 for d in batch.entities if d.kind == "perspective")
    plan.round = Round(
        number=batch.round,
        status="completed",
        created_at=now,
        open_tensions=open_tensions,
        new_perspectives=new_perspectives,
        answered=len(answered),
        signals=len(signals),
        panel_size=len(seated),
        scores=dict(batch.scores),
        title=batch.title,
        summary=batch.summary,
        panel=list(batch.panel),
        absent=sorted(batch.absent),
        recorded=batch.recorded,
        notes=list(batch.notes),
        seated=seated,
    )
    plan.round_record = codec.encode_round(dialogue_id, plan.round)
    plan.round_record.clear["mapping"] = plan.mapping
    return plan


def _status_update_record(snap: Snapshot, gid: str, status: str, now: str, tenant: str) -> Record:
    entity = snap.entities[gid]
    set_: dict[str, Any] = {"status": status, "updated_at": now}
    remove: list[str] = []
    if entity.kind == "tension":
        if status in UNRESOLVED_TENSION:
            set_.update(codec.open_tension_index(tenant, snap.dialogue.id, gid))
        else:
            remove = ["gsi2pk", "gsi2sk"]
    return Record(partition_key(snap.dialogue.id), entity_sk(gid), {"set": set_, "remove": remove})


def _local_letter(local_id: str | None) -> str | None:
    if not local_id:
        return None
    parsed = parse_local_id(local_id)
    return parsed[1] if parsed else None
