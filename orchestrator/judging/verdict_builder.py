"""The rules judge's final verdict: a pure function of the Snapshot, in fixed sections.

Recommendation. Every perspective and recommendation not conceded, merged or rejected is a
candidate, scored by `SUPPORT_RULE`: +2 for each `[RE:SUPPORT]` and −2 for each `[RE:OPPOSE]`
from another expert's entity, +1 for each refinement of it by another expert, +1 for each
concession made to it (a concession on a tension counts for the tension author's entities that
resolve or address it), +1 for each tension it resolved that stayed resolved, +1 when its author
signalled converge in the last round. Ties go to recommendations before perspectives, then the
lower id. The recommendation quotes the top candidate's label and opening sentences, and names the
runners-up; the reasons cite each recommended entity and the ids behind its points.

Tensions: each one's final status, with the round and entities that resolved it or why it stays
open. Dissent: `[DISSENT]` / `[MINORITY VERDICT]` markers not followed by a converge signal, opposing
refs into what is recommended, and seated experts of the last round who did not signal converge.
Risks: open tensions, dissent and a forced stop. Every cited id is an entity of the snapshot.
"""

from __future__ import annotations

import re
from collections import defaultdict
from dataclasses import dataclass, field

from concord.orchestrator.judging.markers import parse_answer
from concord.store.model import (
    UNRESOLVED_TENSION,
    Entity,
    Event,
    Round,
    TextRecord,
    Verdict,
    VerdictDissent,
    VerdictReason,
    VerdictTension,
)
from concord.store.snapshot import Snapshot

SUPPORT_RULE = (
    "recommendation = the panel's most-supported perspective or recommendation (+2 per support ref, "
    "-2 per oppose ref, +1 per refinement, concession, lasting resolution, and author's converge signal)"
)
CANDIDATE_KINDS = ("recommendation", "perspective")
DROPPED_STATUSES = frozenset({"conceded", "merged", "rejected"})
#: Entities the recommendation and its reasons draw on: the top one and the runners-up.
RECOMMENDED = 3
LEAD_CHARS = 400
_SENTENCE = re.compile(r"(?<=[.!?])\s+")


@dataclass
class Standing:
    """One candidate's points and the ids and experts behind them."""

    entity: Entity
    points: int = 0
    cites: list[str] = field(default_factory=list)
    why: list[str] = field(default_factory=list)

    def add(self, points: int, why: str, *cites: str) -> None:
        """Count points for a reason, citing the ids behind it."""
        self.points += points
        self.why.append(why)
        self.cites.extend(c for c in cites if c not in self.cites)


def build_verdict(snap: Snapshot, *, converged: bool) -> Verdict:
    """The final verdict of a dialogue whose last round is registered (converged, or stopped at the cap)."""
    last = snap.last_round
    if last is None:
        raise ValueError("a verdict needs at least one registered round")
    top = recommended(rank_candidates(snap))
    tensions = tension_outcomes(snap)
    dissent = dissenters(snap, last, {s.entity.id for s in top})
    risks = [f"{t.id} stays {t.status}: {t.how}" for t in tensions if t.status in UNRESOLVED_TENSION]
    risks += [f"{d.expert.capitalize()} does not stand behind the verdict: {d.why}" for d in dissent]
    if not converged:
        risks.append(
            f"The panel did not converge by round {last.number}: this is where it stood when stopped, not an agreement."
        )
    return Verdict(
        id="final",
        verdict_type="final",
        round=last.number,
        recommendation=recommendation_text(top),
        confidence=("unanimous" if not dissent else "strong") if converged else "contested",
        description=last.summary,
        vote=f"{last.signals}-{len(last.seated) - last.signals}",
        supporting_experts=sorted(s.expert for s in snap.signals if s.round == last.number),
        adopted=[s.entity.id for s in top if s.entity.kind == "recommendation"],
        question=snap.dialogue.question,
        reasons=[_reason(s) for s in top],
        tensions=tensions,
        dissent=dissent,
        risks=risks,
        notes=[f"Drawn by the rules judge from the dialogue's own entities: {SUPPORT_RULE}."],
    )


def rank_candidates(snap: Snapshot) -> list[Standing]:
    """Every candidate with its points, best first (ties: recommendations first, then the lower id)."""
    standings = {
        e.id: Standing(e)
        for e in snap.entities.values()
        if e.kind in CANDIDATE_KINDS and e.status not in DROPPED_STATUSES
    }
    for ref in sorted(snap.refs, key=lambda r: (r.source, r.ref_type, r.target)):
        target, source = standings.get(ref.target), snap.entities.get(ref.source)
        if target is not None and source is not None and _author(source) != _author(target.entity):
            if ref.ref_type == "support":
                target.add(2, f"supported in {source.id}", source.id)
            elif ref.ref_type == "oppose":
                target.add(-2, f"opposed in {source.id}", source.id)
            elif ref.ref_type == "refine":
                target.add(1, f"refined in {source.id}", source.id)
        tension = snap.entities.get(ref.target)
        mine = standings.get(ref.source)
        if ref.ref_type == "resolve" and mine is not None and tension is not None and tension.status == "resolved":
            mine.add(1, f"resolved {tension.id}", tension.id)
    for move in snap.moves:
        if move.move_type != "concede":
            continue
        for target_id in move.targets:
            for standing in _conceded_to(snap, standings, target_id):
                if _author(standing.entity) != move.expert:
                    standing.add(1, f"{move.expert.capitalize()} conceded on {target_id}", target_id)
    last = snap.last_round
    signalled = {s.expert for s in snap.signals if last is not None and s.round == last.number}
    for standing in standings.values():
        if _author(standing.entity) in signalled:
            standing.add(1, f"{_author(standing.entity).capitalize()} signalled converge")
    kind_rank = {kind: n for n, kind in enumerate(CANDIDATE_KINDS)}
    return sorted(standings.values(), key=lambda s: (-s.points, kind_rank[s.entity.kind], s.entity.id))


def recommended(ranked: list[Standing]) -> list[Standing]:
    """The top candidate and up to RECOMMENDED - 1 runners-up with points, one per distinct label."""
    chosen: list[Standing] = []
    for standing in ranked:
        if len(chosen) == RECOMMENDED or (chosen and standing.points <= 0):
            break
        if all(_same(standing.entity.label) != _same(c.entity.label) for c in chosen):
            chosen.append(standing)
    return chosen


def _same(label: str) -> str:
    return " ".join(label.casefold().rstrip(".").split())


def _conceded_to(snap: Snapshot, standings: dict[str, Standing], target_id: str) -> list[Standing]:
    """The candidates a concession on `target_id` counts for: itself, or for a tension its author's settlements."""
    if target_id in standings:
        return [standings[target_id]]
    tension = snap.entities.get(target_id)
    if tension is None or tension.kind != "tension":
        return []
    settling = {r.source for r in snap.refs if r.target == target_id and r.ref_type in ("resolve", "address")}
    return [
        standings[s] for s in sorted(settling) if s in standings and _author(standings[s].entity) == _author(tension)
    ]


def recommendation_text(top: list[Standing]) -> str:
    """The top candidate's label and opening sentences, then the runners-up by label and id."""
    if not top:
        return "The panel recorded no perspective or recommendation to recommend; see the tensions below."
    first = top[0].entity
    label, body = first.label.strip().rstrip("."), lead(first.content)
    if not body or _same(body).startswith(_same(label)):  # a label that is the text's first words says nothing more
        text = f"{body or label} ({first.id})."
    else:
        text = f"{label} ({first.id}): {body}".rstrip(".") + "."
    if len(top) > 1:
        text += (
            " The panel also backs " + "; ".join(f"{s.entity.label.rstrip('.')} ({s.entity.id})" for s in top[1:]) + "."
        )
    return text


def lead(content: str) -> str:
    """The opening sentences of a text, up to about LEAD_CHARS (at least one whole sentence)."""
    kept: list[str] = []
    for sentence in _SENTENCE.split(" ".join(content.split())):
        if kept and len(" ".join([*kept, sentence])) > LEAD_CHARS:
            break
        kept.append(sentence)
    return " ".join(kept)


def _reason(standing: Standing) -> VerdictReason:
    entity = standing.entity
    who = ", ".join(c.capitalize() for c in entity.contributors) or "the panel"
    why = "; ".join(standing.why) or "no support or opposition recorded"
    return VerdictReason(
        f"{entity.label.rstrip('.')} ({who}, round {entity.round}): {why}.", [entity.id, *standing.cites]
    )


def tension_outcomes(snap: Snapshot) -> list[VerdictTension]:
    """Each tension's end: the round and entities that resolved it, or why it stays open."""
    outcomes = []
    for tension in sorted(snap.of_kind("tension"), key=lambda t: t.id):
        into = [r for r in snap.refs if r.target == tension.id and r.source in snap.entities]
        events = [e for e in snap.events_of(tension.id) if e.event_type != "created"]
        if tension.status == "resolved":
            done = [e for e in events if e.event_type == "resolved"][-1:]
            resolved_in = done[0].round if done else None
            cites = list(
                dict.fromkeys([*_references(done, snap), *sorted(r.source for r in into if r.ref_type == "resolve")])
            )
            by = ", ".join(a.capitalize() for a in done[0].actors) if done and done[0].actors else "the judge"
            through = f" through {', '.join(cites)} ({snap.entities[cites[0]].label.rstrip('.')})" if cites else ""
            how = f"Resolved in round {resolved_in} by {by}{through}." if done else "Resolved."
            outcomes.append(VerdictTension(tension.id, tension.status, how, cites, resolved_in))
            continue
        cites = sorted({r.source for r in into if r.ref_type in ("address", "resolve", "reopen")})
        latest = events[-1] if events else None
        if latest is None:
            why = f"{tension.label}: no expert resolved or addressed it"
        else:
            why = f"{tension.label}: {latest.event_type} in round {latest.round}, not confirmed resolved"
        outcomes.append(VerdictTension(tension.id, tension.status, why, cites, None))
    return outcomes


def _references(events: list[Event], snap: Snapshot) -> list[str]:
    return [e.reference for e in events if e.reference and e.reference in snap.entities]


def dissenters(snap: Snapshot, last: Round, recommended: set[str]) -> list[VerdictDissent]:
    """Who does not stand behind the verdict: dissent markers, opposing refs, no converge signal in the last round."""
    reasons: dict[str, list[str]] = defaultdict(list)
    cites: dict[str, list[str]] = defaultdict(list)
    signalled_in: dict[str, set[int]] = defaultdict(set)
    for signal in snap.signals:
        signalled_in[signal.expert].add(signal.round)
    for record in _judged_answers(snap):
        for marker in parse_answer(record.text).markers:
            if marker.kind not in ("dissent", "minority_verdict"):
                continue
            if any(r > record.round for r in signalled_in[record.expert]):
                continue
            said = (marker.label or marker.body).strip() or "no reason given"
            what = "minority verdict" if marker.kind == "minority_verdict" else "dissent"
            reasons[record.expert].append(f"{what} in round {record.round}: {said}")
    for ref in sorted(snap.refs, key=lambda r: (r.source, r.target)):
        source = snap.entities.get(ref.source)
        if ref.ref_type == "oppose" and ref.target in recommended and source is not None:
            expert = _author(source)
            reasons[expert].append(f"opposed {ref.target} in {source.id}")
            cites[expert] += [ref.target, source.id]
    signalled = {s.expert for s in snap.signals if s.round == last.number}
    for expert in last.seated:
        if expert not in signalled:
            state = "was absent" if expert in last.absent else "answered without [MOVE:CONVERGE]"
            reasons[expert].append(f"{state} in round {last.number}, so did not signal convergence")
    return [
        VerdictDissent(expert, "; ".join(reasons[expert]), list(dict.fromkeys(cites[expert])))
        for expert in sorted(reasons)
    ]


def _judged_answers(snap: Snapshot) -> list[TextRecord]:
    """The answer judged for each expert and round: the repair when there is one, else the first answer."""
    chosen: dict[tuple[int, str], TextRecord] = {}
    for record in sorted(snap.texts, key=lambda t: (t.round, t.expert, t.repair)):
        if record.kind == "answer" and record.expert in snap.experts:
            chosen[(record.round, record.expert)] = record
    return list(chosen.values())


def _author(entity: Entity) -> str:
    return entity.contributors[0] if entity.contributors else ""
