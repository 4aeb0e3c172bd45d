"""Domain records <-> items: keys, cleartext attributes, and the field group that gets sealed.

The audit trail's items (prompt and answer records, audit entries) are in `trail_codec`.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from concord.store.ids import KIND_BY_PREFIX, display_of_sk, entity_sk, parse_display_id, partition_key
from concord.store.model import (
    ENTITY_CLASSES,
    UNRESOLVED_TENSION,
    Dialogue,
    Entity,
    Event,
    Expert,
    Move,
    PanelSeat,
    Ref,
    Round,
    Score,
    Signal,
    Verdict,
    VerdictDissent,
    VerdictReason,
    VerdictTension,
)


@dataclass
class Record:
    """An item before sealing: keys, cleartext attributes, and the secret fields (None: nothing to seal)."""

    pk: str
    sk: str
    clear: dict[str, Any]
    secret: dict[str, Any] | None = None


def round_key(number: int) -> str:
    """Two-digit round token used inside SKs."""
    return f"{number:02d}"


# --- meta -------------------------------------------------------------------------------


def status_index(tenant: str, status: str, updated_at: str, dialogue_id: str) -> dict[str, str]:
    """GSI1 keys of a meta item."""
    return {"gsi1pk": f"status#{tenant}#{status}", "gsi1sk": f"{updated_at}#{dialogue_id}"}


def encode_dialogue(d: Dialogue) -> Record:
    clear = {
        "type": "meta",
        "status": d.status,
        "created_at": d.created_at,
        "updated_at": d.updated_at,
        "converged_at": d.converged_at,
        "total_rounds": d.total_rounds,
        "total_alignment": d.total_alignment,
        "epoch": d.epoch,
        "dek_version": d.dek_version,
        "origin": d.origin,
        **status_index(d.tenant, d.status, d.updated_at, d.id),
    }
    secret = {
        "title": d.title,
        "question": d.question,
        "output_dir": d.output_dir,
        "background": d.background,
        "pool": d.pool,
        "settings": d.settings,
    }
    return Record(partition_key(d.id), "meta", clear, secret)


def decode_dialogue(item: dict[str, Any], secret: dict[str, Any]) -> Dialogue:
    return Dialogue(
        id=item["pk"].removeprefix("dialogue#"),
        tenant=item["tenant"],
        title=secret["title"],
        question=secret["question"],
        status=item["status"],
        created_at=item["created_at"],
        updated_at=item["updated_at"],
        converged_at=item.get("converged_at"),
        total_rounds=int(item.get("total_rounds", 0)),
        total_alignment=int(item.get("total_alignment", 0)),
        epoch=int(item.get("epoch", 1)),
        dek_version=int(item.get("dek_version", 1)),
        origin=item.get("origin", "live"),
        output_dir=secret.get("output_dir"),
        background=secret.get("background"),
        pool=secret.get("pool"),
        settings=secret.get("settings") or {},
    )


# --- experts ----------------------------------------------------------------------------


def encode_expert(dialogue_id: str, e: Expert, tenant: str, blind: str) -> Record:
    clear = {
        "type": "expert",
        "tier": e.tier,
        "source": e.source,
        "relevance": e.relevance,
        "first_round": e.first_round,
        "created_at": e.created_at,
        "gsi3pk": f"role#{tenant}#{blind}",
        "gsi3sk": f"{dialogue_id}#{round_key(e.first_round)}",
    }
    secret = {"role": e.role, "description": e.description, "focus": e.focus}
    return Record(partition_key(dialogue_id), f"expert#{e.slug}", clear, secret)


def decode_expert(item: dict[str, Any], secret: dict[str, Any]) -> Expert:
    return Expert(
        slug=item["sk"].removeprefix("expert#"),
        role=secret["role"],
        tier=item["tier"],
        source=item["source"],
        relevance=float(item["relevance"]),
        first_round=int(item["first_round"]),
        description=secret.get("description"),
        focus=secret.get("focus"),
        created_at=item["created_at"],
    )


# --- rounds and signals -----------------------------------------------------------------


def encode_round(dialogue_id: str, r: Round) -> Record:
    totals = r.totals
    clear = {
        "type": "round",
        "round": r.number,
        "status": r.status,
        "created_at": r.created_at,
        "open_tensions": r.open_tensions,
        "new_perspectives": r.new_perspectives,
        "answered": r.answered,
        "signals": r.signals,
        "panel_size": r.panel_size,
        "scores": {name: score.to_list() for name, score in sorted(r.scores.items())},
        "score_wisdom": totals.w,
        "score_consistency": totals.c,
        "score_truth": totals.t,
        "score_relationships": totals.r,
        "score": totals.total,
        "absent": sorted(r.absent),
        "seated": sorted(r.seated),
    }
    secret = {
        "title": r.title,
        "summary": r.summary,
        "panel": [vars(seat) for seat in r.panel],
        "recorded": r.recorded,
        "notes": r.notes,
    }
    return Record(partition_key(dialogue_id), f"round#{round_key(r.number)}", clear, secret)


def decode_round(item: dict[str, Any], secret: dict[str, Any]) -> Round:
    panel = [PanelSeat(**seat) for seat in secret.get("panel", [])]
    scores = {name: Score(*map(int, value)) for name, value in item.get("scores", {}).items()}
    absent = list(item.get("absent", []))
    return Round(
        number=int(item["round"]),
        status=item["status"],
        created_at=item["created_at"],
        open_tensions=int(item["open_tensions"]),
        new_perspectives=int(item["new_perspectives"]),
        answered=int(item["answered"]),
        signals=int(item["signals"]),
        panel_size=int(item["panel_size"]),
        scores=scores,
        absent=absent,
        title=secret.get("title", ""),
        summary=secret.get("summary", ""),
        panel=panel,
        recorded=secret.get("recorded"),
        notes=list(secret.get("notes", [])),
        seated=list(item["seated"]) if "seated" in item else _seated_fallback(panel, scores, absent),
    )


def _seated_fallback(panel: list[PanelSeat], scores: dict[str, Score], absent: list[str]) -> list[str]:
    """The seated panel of a round item stored before `seated` was: its sealed panel, else scored + absent experts.

    Every answering expert is scored, so scored + absent is answered + absent when the panel cannot be opened.
    """
    return sorted({seat.slug for seat in panel} or set(scores) | set(absent))


def encode_signal(dialogue_id: str, s: Signal) -> Record:
    clear = {"type": "signal", "round": s.round, "expert": s.expert, "signaled_at": s.signaled_at}
    return Record(partition_key(dialogue_id), f"signal#{round_key(s.round)}#{s.expert}", clear)


def decode_signal(item: dict[str, Any]) -> Signal:
    return Signal(round=int(item["round"]), expert=item["expert"], signaled_at=item["signaled_at"])


# --- entities ---------------------------------------------------------------------------


def open_tension_index(tenant: str, dialogue_id: str, display: str) -> dict[str, str]:
    """GSI2 keys of a tension that is not resolved."""
    return {"gsi2pk": f"open_tension#{tenant}", "gsi2sk": f"{dialogue_id}#{display}"}


def encode_entity(dialogue_id: str, e: Entity, tenant: str) -> Record:
    clear: dict[str, Any] = {
        "type": e.kind,
        "round": e.round,
        "seq": e.seq,
        "status": e.status,
        "created_at": e.created_at,
        "updated_at": e.updated_at,
        "adopted_in_verdict": e.adopted_in_verdict,
    }
    if e.kind == "tension" and e.status in UNRESOLVED_TENSION:
        clear.update(open_tension_index(tenant, dialogue_id, e.id))
    secret = {
        "label": e.label,
        "content": e.content,
        "contributors": e.contributors,
        "local_id": e.local_id,
        "aliases": e.aliases,
        "warnings": e.warnings,
        "parameters": e.parameters,
    }
    return Record(partition_key(dialogue_id), entity_sk(e.id), clear, secret)


def decode_entity(item: dict[str, Any], secret: dict[str, Any]) -> Entity:
    cls = ENTITY_CLASSES[item["type"]]
    return cls(
        id=display_of_sk(item["sk"]),
        round=int(item["round"]),
        seq=int(item["seq"]),
        label=secret["label"],
        content=secret["content"],
        status=item["status"],
        contributors=list(secret.get("contributors") or []),
        created_at=item["created_at"],
        updated_at=item.get("updated_at", item["created_at"]),
        local_id=secret.get("local_id"),
        aliases=list(secret.get("aliases") or []),
        warnings=list(secret.get("warnings") or []),
        parameters=secret.get("parameters"),
        adopted_in_verdict=item.get("adopted_in_verdict"),
    )


# --- refs, events, moves, verdicts ------------------------------------------------------


def ref_records(dialogue_id: str, ref: Ref) -> tuple[Record, Record]:
    """The `ref#` item and its `rin#` mirror, both cleartext."""
    pk = partition_key(dialogue_id)
    clear = {
        "type": "ref",
        "source": ref.source,
        "target": ref.target,
        "ref_type": ref.ref_type,
        "source_type": KIND_BY_PREFIX[parse_display_id(ref.source)[0]],
        "target_type": KIND_BY_PREFIX[parse_display_id(ref.target)[0]],
        "created_at": ref.created_at,
    }
    out = Record(pk, f"ref#{ref.source}#{ref.ref_type}#{ref.target}", clear)
    mirror = Record(pk, f"rin#{ref.target}#{ref.ref_type}#{ref.source}", {**clear, "type": "rin"})
    return out, mirror


def decode_ref(item: dict[str, Any]) -> Ref:
    return Ref(source=item["source"], ref_type=item["ref_type"], target=item["target"], created_at=item["created_at"])


def event_sk(e: Event, ts_ms: int) -> str:
    return f"event#{e.entity_type}#{e.entity_id}#{ts_ms:013d}#{e.seq:03d}"


def encode_event(dialogue_id: str, e: Event, ts_ms: int) -> Record:
    clear = {
        "type": "event",
        "entity_type": e.entity_type,
        "entity_id": e.entity_id,
        "event_type": e.event_type,
        "event_round": e.round,
        "created_at": e.created_at,
    }
    secret = {"actors": e.actors, "reason": e.reason, "reference": e.reference, "result_id": e.result_id}
    return Record(partition_key(dialogue_id), event_sk(e, ts_ms), clear, secret)


def decode_event(item: dict[str, Any], secret: dict[str, Any]) -> Event:
    return Event(
        entity_type=item["entity_type"],
        entity_id=item["entity_id"],
        event_type=item["event_type"],
        round=int(item["event_round"]),
        created_at=item["created_at"],
        actors=list(secret.get("actors") or []),
        reason=secret.get("reason"),
        reference=secret.get("reference"),
        result_id=secret.get("result_id"),
        seq=int(item["sk"].rsplit("#", 1)[1]),
    )


def encode_move(dialogue_id: str, m: Move) -> Record:
    clear = {"type": "move", "round": m.round, "expert": m.expert, "seq": m.seq, "move_type": m.move_type}
    secret = {"targets": m.targets, "context": m.context}
    return Record(partition_key(dialogue_id), f"move#{round_key(m.round)}#{m.expert}#{m.seq:02d}", clear, secret)


def decode_move(item: dict[str, Any], secret: dict[str, Any]) -> Move:
    return Move(
        round=int(item["round"]),
        expert=item["expert"],
        seq=int(item["seq"]),
        move_type=item["move_type"],
        targets=list(secret.get("targets") or []),
        context=secret.get("context", ""),
    )


def encode_verdict(dialogue_id: str, v: Verdict) -> Record:
    clear = {
        "type": "verdict",
        "verdict_type": v.verdict_type,
        "round": v.round,
        "confidence": v.confidence,
        "forced": v.forced,
        "created_at": v.created_at,
    }
    secret = {
        "recommendation": v.recommendation,
        "description": v.description,
        "author_expert": v.author_expert,
        "conditions": v.conditions,
        "vote": v.vote,
        "supporting_experts": v.supporting_experts,
        "tensions_accepted": v.tensions_accepted,
        "adopted": v.adopted,
        "warning": v.warning,
        "question": v.question,
        "reasons": [asdict(r) for r in v.reasons],
        "tensions": [asdict(t) for t in v.tensions],
        "dissent": [asdict(d) for d in v.dissent],
        "risks": v.risks,
        "notes": v.notes,
    }
    return Record(partition_key(dialogue_id), f"verdict#{v.id}", clear, secret)


def decode_verdict(item: dict[str, Any], secret: dict[str, Any]) -> Verdict:
    return Verdict(
        id=item["sk"].removeprefix("verdict#"),
        verdict_type=item["verdict_type"],
        round=int(item["round"]),
        confidence=item["confidence"],
        forced=bool(item.get("forced", False)),
        created_at=item["created_at"],
        recommendation=secret["recommendation"],
        description=secret.get("description", ""),
        author_expert=secret.get("author_expert"),
        conditions=list(secret.get("conditions") or []),
        vote=secret.get("vote"),
        supporting_experts=list(secret.get("supporting_experts") or []),
        tensions_accepted=list(secret.get("tensions_accepted") or []),
        adopted=list(secret.get("adopted") or []),
        warning=secret.get("warning"),
        question=secret.get("question", ""),
        reasons=[VerdictReason(r["text"], list(r.get("cites") or [])) for r in secret.get("reasons") or []],
        tensions=[
            VerdictTension(t["id"], t["status"], t["how"], list(t.get("cites") or []), t.get("round"))
            for t in secret.get("tensions") or []
        ],
        dissent=[
            VerdictDissent(d["expert"], d["why"], list(d.get("cites") or [])) for d in secret.get("dissent") or []
        ],
        risks=list(secret.get("risks") or []),
        notes=list(secret.get("notes") or []),
    )
