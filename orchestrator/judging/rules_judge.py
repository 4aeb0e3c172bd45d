"""The rules judge: one round of expert answers in, one RoundBatch out, deterministically.

Entities. Every PERSPECTIVE, TENSION and extended R/E/C marker (`[MUFFIN-R0101: …]`) becomes an
entity of that kind. A REFINEMENT with any text becomes a perspective that points at what it
refines: `address` for a tension, `refine` for a perspective, `depend` for anything else. An
entity's local id is `{AUTHOR}-{letter}{round:02}{n:02}`, where n is the number the author wrote
(`P02`, `T04-R1`, `MUFFIN-P0102`) or, for markers without one (`[REFINEMENT: …]`, `T-NEW`), the
lowest number the author left free in that answer. A marker with neither label nor body makes no
entity and is reported.

References. Marker targets resolve through `IdRegistry` (protocol §3.2 order: global id or a
recorded judge's alias, namespaced id, the author's own earlier local id). `[RE:TYPE id]` adds a ref
from the nearest entity written before it in the same answer. A RESOLVED adds a `resolve` ref from
the author's first entity of the round (its anchor) when there is one. Anything that does not
resolve, or that would break a ref rule, is a warning on the entity concerned and on the round;
it never fails the round. CONCESSION and `[MOVE:…]` markers are stored as moves.

Tension lifecycle (DESIGN §6 authority rule), applied in panel order:
- RESOLVED, RE:RESOLVE or CONCESSION by the tension's author → resolved (the author settles or
  withdraws it); by anyone else → addressed.
- REFINEMENT or RE:ADDRESS on a tension → addressed (from open or reopened).
- RE:REOPEN → a resolved tension is reopened, an addressed one open again.
- Confirmation: a tension that was addressed before this round becomes resolved when no expert
  re-opens it or opposes it (`[RE:OPPOSE]`) in this round; every addressed tension becomes
  resolved when the whole panel signals `[MOVE:CONVERGE]` (every seated expert answered and signalled:
  with anyone absent, the few who answered cannot close the others' tensions this way).

New perspectives. In round 0 every perspective is new. Later, a perspective is not new when it
comes from a REFINEMENT, when it has a refine/address/resolve/support/depend ref, when its label
names an earlier entity (`T01 resolves with …`), or when it restates what was said before: its
novelty, the share of its distinct content words (label and body, stemmed, stop words dropped;
see `orchestrator.similarity`) that appear in no perspective, tension or recommendation of an
earlier round, is below NEW_PERSPECTIVE_NOVELTY = 0.25.
Why novelty against everything said before, not pairwise Jaccard: a restatement rewords a point
gathered from several earlier answers, so its best pairwise match stays low; on the rfc-0058 run
the best Jaccard of a round-3 perspective's label against any earlier label (all restatements to
its recorded judge) spans 0.17-0.25, inside round 1's 0.05-0.25, while novelty separates them. Why 0.25: that run
is the one recorded run with complete files and per-round counts; every round-3 perspective there
has novelty 0.18 or less (its judge: 0 new), novelty alone counts 3 new in round 2 (its judge: 3;
the label rule then removes 2 that name earlier tensions) and 12 of 16 in round 1 (its judge: 9).
Only earlier rounds are compared, so the count does not depend on the order answers are read.

Scores, per answering expert per round (absent experts get none):
- W = 3·perspectives + 2·refinements (perspectives: PERSPECTIVE and recommendation markers that
  made an entity; refinements: REFINEMENT markers that made one);
- C = 2·resolutions + concessions (resolutions: RESOLVED or RE:RESOLVE markers naming at least
  one known tension; concessions: CONCESSION and MOVE:CONCEDE markers);
- T = 2·evidence + claims + grounded (grounded: the author's other entities whose text cites a
  specific: a code span, a link, or a number of two digits or more);
- R = distinct entities of other experts that the author's markers point at + distinct other
  experts of the dialogue the answer names ("Strudel's reframe", `to Strudel`).
Round totals are summed from these in code. Velocity = open tensions (open, addressed, reopened)
+ new perspectives; converge % = answering experts who signalled converge / experts who answered.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from concord.orchestrator.judging.markers import Marker, ParsedAnswer, parse_answer
from concord.orchestrator.judging.references import IdRegistry, resolve_all
from concord.orchestrator.judging.similarity import content_words, novelty
from concord.orchestrator.judging.written_ids import ids_in_prose, parse_reference
from concord.store.ids import PREFIX_BY_KIND, is_display_id, kind_of, parse_local_id
from concord.store.model import (
    UNRESOLVED_TENSION,
    EntityDraft,
    Expert,
    Move,
    PanelSeat,
    RefDraft,
    RoundBatch,
    Score,
    StatusChange,
    sum_scores,
)
from concord.store.rules import ref_target_problem, transition_allowed
from concord.store.snapshot import Snapshot

NEW_PERSPECTIVE_NOVELTY = 0.25
#: Ref types by which a perspective builds on an earlier entity, so it is not new.
BUILDS_ON = frozenset({"refine", "address", "resolve", "support", "depend"})
AUTHORITY_RULE = (
    "Authority: a RESOLVED from a tension's author resolves it; anyone else's marks it addressed, "
    "and it is resolved once a round passes with no one re-opening or opposing it, or the whole panel "
    "signals converge."
)
LABEL_LENGTH = 120

_ENTITY_KIND = {
    "perspective": "perspective",
    "tension": "tension",
    "refinement": "perspective",
    "recommendation": "recommendation",
    "evidence": "evidence",
    "claim": "claim",
}
_ACT_WORDS = {"resolve": "resolved", "concede": "conceded", "address": "addressed", "reopen": "re-opened"}
_GROUNDED = re.compile(r"`[^`\n]+`|https?://|\b[0-9]{2,}\b")
_DECORATION = re.compile(r"^[\s#>*_\-+]+")


@dataclass
class ExpertAnswer:
    """One expert's answer for the round; `text` None means absent (nothing is invented for it)."""

    expert: str
    text: str | None


@dataclass
class JudgedRound:
    """The judge's verdict on one round: the batch to register plus its headline figures."""

    batch: RoundBatch
    velocity: int
    converge_percent: float
    warnings: list[str]
    per_expert: dict[str, Score]


@dataclass(frozen=True)
class PlannedEntity:
    """An entity one marker of an answer will become."""

    index: int
    kind: str
    local_id: str
    label: str
    content: str


@dataclass
class _Act:
    """One expert acting on one existing tension."""

    tension: str
    actor: str
    act: str
    line: int
    source: str | None


@dataclass
class _Tally:
    """What one expert's answer contributed, for scoring."""

    perspectives: int = 0
    refinements: int = 0
    resolutions: int = 0
    concessions: int = 0
    evidence: int = 0
    claims: int = 0
    grounded: int = 0
    others: set[str] = field(default_factory=set)
    named: set[str] = field(default_factory=set)

    def score(self) -> Score:
        """W/C/T/R by the formula in the module docstring."""
        return Score(
            w=3 * self.perspectives + 2 * self.refinements,
            c=2 * self.resolutions + self.concessions,
            t=2 * self.evidence + self.claims + self.grounded,
            r=len(self.others) + len(self.named),
        )


def build_registry(snapshot: Snapshot) -> IdRegistry:
    """Every entity of the snapshot under its global id, author's local id and aliases."""
    registry = IdRegistry()
    for entity in sorted(snapshot.entities.values(), key=lambda e: (e.round, e.id)):
        parsed = parse_local_id(entity.local_id) if entity.local_id else None
        author = parsed[0] if parsed else (entity.contributors[0] if entity.contributors else "")
        registry.add(entity.id, author=author, round=entity.round, local_id=entity.local_id, aliases=entity.aliases)
    return registry


def plan_entities(expert: str, round: int, parsed: ParsedAnswer) -> list[PlannedEntity]:
    """The entities an answer's markers become, with their batch-unique local ids."""
    chosen: dict[int, tuple[str, int | None]] = {}
    taken: dict[str, set[int]] = {}
    for index, marker in enumerate(parsed.markers):
        kind = _ENTITY_KIND.get(marker.kind)
        if kind is None or not (marker.label.strip() or marker.body.strip()):
            continue
        letter = PREFIX_BY_KIND[kind]
        used = taken.setdefault(letter, set())
        written = parse_reference(marker.local_id) if marker.local_id else None
        number = written.number if written and written.kind == letter and 1 <= written.number <= 99 else None
        if number in used:
            number = None
        if number is not None:
            used.add(number)
        chosen[index] = (kind, number)
    planned = []
    for index, (kind, number) in chosen.items():
        letter = PREFIX_BY_KIND[kind]
        if number is None:
            number = next(n for n in range(1, 100) if n not in taken[letter])
            taken[letter].add(number)
        marker = parsed.markers[index]
        label = _label(marker)
        planned.append(
            PlannedEntity(
                index, kind, f"{expert.upper()}-{letter}{round:02d}{number:02d}", label, marker.body.strip() or label
            )
        )
    return planned


def judge_round(
    snapshot: Snapshot,
    round: int,
    panel: Sequence[PanelSeat],
    answers: Sequence[ExpertAnswer],
    *,
    aliases: Mapping[str, str] | None = None,
) -> JudgedRound:
    """Judge one round against the snapshot of the rounds before it.

    `aliases` maps a recorded judge's id (`T01`, `MACARON-T01`) to the local id of an entity drafted
    in this round (stored on it) or to the global id of an earlier entity (used for this round).
    """
    work = _Round(snapshot, round, panel, aliases or {})
    for answer in answers:
        work.read(answer)
    return work.finish()


class _Round:
    """The state of judging one round."""

    def __init__(self, snapshot: Snapshot, round: int, panel: Sequence[PanelSeat], aliases: Mapping[str, str]) -> None:
        self.snapshot = snapshot
        self.round = round
        self.panel = list(panel)
        self.seats = {seat.slug: seat for seat in panel}
        self.registry = build_registry(snapshot)
        self.aliases = dict(aliases)
        self.warnings: list[str] = []
        self.notes: list[str] = []
        self.drafts: list[EntityDraft] = []
        self.refined: set[str] = set()
        self.acts: list[_Act] = []
        self.moves: list[Move] = []
        self.signals: list[str] = []
        self.answered: list[str] = []
        self.tallies: dict[str, _Tally] = {}
        self.mentions: dict[str, list[str]] = {}
        names = sorted(set(snapshot.experts) | set(self.seats))
        self.names = re.compile(r"\b(" + "|".join(n.capitalize() for n in names) + r")\b") if names else None
        for alias, target in self.aliases.items():
            if is_display_id(target) and target in self.registry:
                self._alias(target, alias)

    def _alias(self, global_id: str, alias: str) -> None:
        try:
            self.registry.add_alias(global_id, alias)
        except ValueError as exc:
            self.warnings.append(f"alias {alias!r} ignored: {exc}")

    def warn(self, message: str, draft: EntityDraft | None = None) -> None:
        """Record a warning on the round and, when given, on the entity it concerns."""
        self.warnings.append(message)
        if draft is not None:
            draft.warnings.append(message)

    # --- one answer -------------------------------------------------------------------

    def read(self, answer: ExpertAnswer) -> None:
        """Turn one expert's answer into drafts, refs, acts on tensions, moves and a tally."""
        author = answer.expert.lower()
        if answer.text is None:
            return
        if author not in self.seats:
            self.warn(f"{author} answered in round {self.round} but is not on its panel; the answer is not judged")
            return
        if author in self.answered:
            self.warn(f"{author} answered twice in round {self.round}; only the first answer is judged")
            return
        self.answered.append(author)
        parsed = parse_answer(answer.text)
        tally = self.tallies[author] = _Tally()
        planned = {p.index: p for p in plan_entities(author, self.round, parsed)}
        drafts = {index: self._draft(author, p) for index, p in planned.items()}
        anchor = next((drafts[i] for i, p in planned.items() if parsed.markers[i].kind == "perspective"), None)
        anchor = anchor or next(iter(drafts.values()), None)
        latest: EntityDraft | None = None
        for index, marker in enumerate(parsed.markers):
            if index in drafts:
                latest = drafts[index]
                self._entity_marker(author, marker, latest, tally)
            elif marker.kind in _ENTITY_KIND:
                self._empty(author, marker, anchor, tally)
            elif marker.kind == "resolved":
                self._resolved(author, marker, anchor, tally)
            elif marker.kind == "concession" or (marker.kind == "move" and marker.name == "concede"):
                self._concession(author, marker, anchor, tally)
            elif marker.kind == "ref":
                self._ref_marker(author, marker, latest or anchor, tally)
            elif marker.kind == "move":
                ids = self._resolve(author, marker, anchor, tally)
                self._move(author, marker.name, ids, marker.label)
            elif marker.kind == "unknown":
                self.warn(
                    f"unknown marker {marker.raw} on line {marker.line} of {author}'s answer in round {self.round}"
                )
            elif marker.kind in ("stance", "dissent", "minority_verdict"):
                self.notes.append(f"{author} {marker.kind} on line {marker.line}: {marker.label}".rstrip(": "))
        if parsed.converge:
            self.signals.append(author)
        if self.names is not None:
            tally.named = {name.lower() for name in self.names.findall(answer.text)} - {author}

    def _draft(self, author: str, planned: PlannedEntity) -> EntityDraft:
        draft = EntityDraft(planned.kind, planned.local_id, planned.label, planned.content, contributors=[author])
        draft.aliases = sorted(alias for alias, target in self.aliases.items() if target == planned.local_id)
        self.drafts.append(draft)
        return draft

    def _entity_marker(self, author: str, marker: Marker, draft: EntityDraft, tally: _Tally) -> None:
        if _GROUNDED.search(draft.content) and draft.kind not in ("evidence", "claim"):
            tally.grounded += 1
        if marker.kind == "refinement":
            tally.refinements += 1
            self.refined.add(draft.local_id)
            for target in self._resolve(author, marker, draft, tally):
                ref_type = _refinement_ref(draft.kind, kind_of(target))
                draft.references.append(RefDraft(ref_type, target))
                if ref_type == "address":
                    self.acts.append(_Act(target, author, "address", marker.line, draft.local_id))
            return
        if draft.kind in ("perspective", "recommendation"):
            tally.perspectives += 1
        elif draft.kind == "evidence":
            tally.evidence += 1
        elif draft.kind == "claim":
            tally.claims += 1
        if draft.kind == "perspective":
            self.mentions[draft.local_id] = self._mentioned(author, draft.label)

    def _empty(self, author: str, marker: Marker, anchor: EntityDraft | None, tally: _Tally) -> None:
        """A marker with no text makes no entity; a bare refinement still addresses the tensions it names."""
        self.warn(f"{author}'s {marker.kind} marker on line {marker.line} has no text; no entity made", anchor)
        if marker.kind == "refinement":
            for tension in self._tensions_only(author, marker, self._resolve(author, marker, anchor, tally), anchor):
                self.acts.append(_Act(tension, author, "address", marker.line, anchor.local_id if anchor else None))

    def _resolved(self, author: str, marker: Marker, anchor: EntityDraft | None, tally: _Tally) -> None:
        targets = self._resolve(author, marker, anchor, tally)
        tensions = self._tensions_only(author, marker, targets, anchor)
        if not marker.targets:
            self.warn(f"{author}'s RESOLVED on line {marker.line} names no tension; no status changed", anchor)
        if tensions:
            tally.resolutions += 1
        for tension in tensions:
            self.acts.append(_Act(tension, author, "resolve", marker.line, anchor.local_id if anchor else None))
            if anchor is not None:
                anchor.references.append(RefDraft("resolve", tension))

    def _concession(self, author: str, marker: Marker, anchor: EntityDraft | None, tally: _Tally) -> None:
        tally.concessions += 1
        targets = self._resolve(author, marker, anchor, tally)
        for target in targets:
            if kind_of(target) == "tension":
                self.acts.append(_Act(target, author, "concede", marker.line, anchor.local_id if anchor else None))
        self._move(author, "concede", targets, marker.label)

    def _ref_marker(self, author: str, marker: Marker, source: EntityDraft | None, tally: _Tally) -> None:
        ref_type = marker.name
        targets = self._resolve(author, marker, source, tally)
        if source is None:
            self.warn(f"{author}'s [RE:{ref_type.upper()}] on line {marker.line} comes before any entity; no ref made")
            return
        act = {"resolve": "resolve", "address": "address", "reopen": "reopen", "oppose": "dispute"}.get(ref_type)
        acted = False
        for target in targets:
            problem = ref_target_problem(ref_type, source.kind, kind_of(target))
            if problem:
                self.warn(
                    f"{author}'s [RE:{ref_type.upper()} {target}] on line {marker.line} is not kept: {problem}", source
                )
                continue
            source.references.append(RefDraft(ref_type, target))
            if act and kind_of(target) == "tension":
                self.acts.append(_Act(target, author, act, marker.line, source.local_id))
                acted = True
        if acted and act == "resolve":
            tally.resolutions += 1

    def _move(self, author: str, move_type: str, targets: list[str], context: str) -> None:
        seq = 1 + sum(1 for m in self.moves if m.expert == author)
        self.moves.append(Move(self.round, author, seq, move_type, list(targets), context))

    def _resolve(self, author: str, marker: Marker, draft: EntityDraft | None, tally: _Tally) -> list[str]:
        ids, problems = resolve_all(marker, author=author, round=self.round, registry=self.registry)
        for problem in problems:
            self.warn(problem, draft)
        tally.others.update(i for i in ids if self._author_of(i) not in (author, None))
        return ids

    def _tensions_only(self, author: str, marker: Marker, ids: list[str], draft: EntityDraft | None) -> list[str]:
        tensions = [i for i in ids if kind_of(i) == "tension"]
        for other in sorted(set(ids) - set(tensions)):
            self.warn(f"{author}'s {marker.kind} on line {marker.line} names {other}, which is not a tension", draft)
        return tensions

    def _mentioned(self, author: str, label: str) -> list[str]:
        """Earlier entities a label names by id (prose mentions that resolve; the rest is ignored)."""
        found = []
        for ref in ids_in_prose(label):
            target = self.registry.resolve(ref, author=author, round=self.round)
            if target and target not in found:
                found.append(target)
        return found

    def _author_of(self, entity_id: str) -> str | None:
        entity = self.snapshot.entities.get(entity_id)
        return entity.contributors[0] if entity and entity.contributors else None

    # --- the round --------------------------------------------------------------------

    def finish(self) -> JudgedRound:
        """Apply the lifecycle, count new perspectives, score, and assemble the batch."""
        changes, statuses = self._lifecycle()
        new = self._mark_new()
        open_tensions = sum(s in UNRESOLVED_TENSION for s in statuses.values())
        open_tensions += sum(1 for d in self.drafts if d.kind == "tension")
        signals = [s for s in self.signals if s in self.answered]
        percent = 100.0 * len(signals) / len(self.answered) if self.answered else 0.0
        scores = {expert: self.tallies[expert].score() for expert in self.answered}
        absent = [seat.slug for seat in self.panel if seat.slug not in self.answered]
        batch = RoundBatch(
            round=self.round,
            entities=self.drafts,
            status_changes=changes,
            experts=[_expert(seat, self.round) for seat in self.panel if seat.slug not in self.snapshot.experts],
            panel=list(self.panel),
            scores=scores,
            signals=signals,
            answered=list(self.answered),
            absent=absent,
            moves=self.moves,
            open_tensions=open_tensions,
            new_perspectives=new,
            notes=self.warnings + self.notes,
        )
        velocity = open_tensions + new
        batch.summary = _summary(batch, changes, velocity, percent)
        return JudgedRound(batch, velocity, percent, list(self.warnings), scores)

    def _lifecycle(self) -> tuple[list[StatusChange], dict[str, str]]:
        """Status changes of existing tensions, in panel order, then confirmations."""
        before = {t.id: t.status for t in self.snapshot.of_kind("tension")}
        statuses = dict(before)
        changes: list[StatusChange] = []

        def move(tension: str, status: str, actors: list[str], reason: str, source: str | None = None) -> None:
            if status != statuses[tension] and transition_allowed("tension", statuses[tension], status):
                changes.append(StatusChange(tension, status, actors, source, reason))
                statuses[tension] = status

        order = {slug: n for n, slug in enumerate(self.answered)}
        for act in sorted(self.acts, key=lambda a: order[a.actor]):
            is_author = self._author_of(act.tension) == act.actor
            status = _next_status(statuses[act.tension], act.act, is_author)
            if status:
                who = f"{act.actor}, its author" if is_author else act.actor
                move(act.tension, status, [act.actor], f"{_ACT_WORDS[act.act]} by {who} (line {act.line})", act.source)
        disputed = {a.tension for a in self.acts if a.act in ("reopen", "dispute")}
        for tension, status in before.items():
            if status == "addressed" and tension not in disputed:
                move(tension, "resolved", [], f"confirmed: no one re-opened or opposed it in round {self.round}")
        seated = {seat.slug for seat in self.panel}
        if self.answered and set(self.answered) >= seated and set(self.signals) >= seated:
            for tension, status in list(statuses.items()):
                if status == "addressed":
                    move(
                        tension, "resolved", [], f"confirmed: the whole panel signalled converge in round {self.round}"
                    )
        return changes, statuses

    def _mark_new(self) -> int:
        """Flag each perspective new or not (rule in the module docstring); return how many are new."""
        known = frozenset().union(
            *(
                content_words(f"{e.label} {e.content}")
                for e in self.snapshot.entities.values()
                if e.kind in ("perspective", "tension", "recommendation") and e.round < self.round
            )
        )
        count = 0
        for draft in self.drafts:
            if draft.kind != "perspective":
                continue
            if self.round == 0:
                draft.parameters = {"new": True}
                count += 1
                continue
            share = novelty(content_words(f"{draft.label} {draft.content}"), known)
            builds_on = sorted(
                {r.target for r in draft.references if r.ref_type in BUILDS_ON}
                | set(self.mentions.get(draft.local_id, []))
            )
            refined = draft.local_id in self.refined
            is_new = not refined and not builds_on and share >= NEW_PERSPECTIVE_NOVELTY
            draft.parameters = {
                "new": is_new,
                "novelty": round(share, 2),
                "builds_on": builds_on,
                "refinement": refined,
            }
            count += is_new
        return count


def _next_status(current: str, act: str, is_author: bool) -> str | None:
    """The status one act moves a tension to, or None when it changes nothing."""
    if act == "reopen":
        return {"resolved": "reopened", "addressed": "open"}.get(current)
    if act in ("resolve", "concede") and is_author:
        return "resolved" if current in UNRESOLVED_TENSION else None
    if act in ("resolve", "concede", "address"):
        return "addressed" if current in ("open", "reopened") else None
    return None


def _refinement_ref(source_kind: str, target_kind: str) -> str:
    if target_kind == "tension":
        return "address"
    return "refine" if target_kind == source_kind else "depend"


def _label(marker: Marker) -> str:
    """The marker's label, else the first sentence of its body, cut to LABEL_LENGTH."""
    label = " ".join(marker.label.split())
    if not label:
        line = next((ln for ln in marker.body.splitlines() if ln.strip()), "")
        label = " ".join(_DECORATION.sub("", line).replace("**", "").split())
        label = re.split(r"(?<=[.!?])\s", label, maxsplit=1)[0]
    label = label or marker.raw.strip("[]")
    if len(label) > LABEL_LENGTH:
        label = label[:LABEL_LENGTH].rsplit(" ", 1)[0] + "…"
    return label


def _expert(seat: PanelSeat, round: int) -> Expert:
    return Expert(seat.slug, seat.role, seat.tier, seat.source, seat.relevance, round, focus=seat.focus)


def _summary(batch: RoundBatch, changes: list[StatusChange], velocity: int, percent: float) -> str:
    """A short plain-text account of the round, in the judge's words."""
    totals = sum_scores(batch.scores.values())
    kinds = [d.kind for d in batch.entities]
    lines = [
        f"Round {batch.round}: {len(batch.answered)} of {len(batch.panel)} experts answered"
        + (f"; absent: {', '.join(batch.absent)}." if batch.absent else "."),
        f"Perspectives {kinds.count('perspective')} ({batch.new_perspectives} new), tensions raised {kinds.count('tension')}.",
        f"Open tensions {batch.open_tensions}, velocity {velocity}, converge {percent:.0f}% "
        f"({len(batch.signals)}/{len(batch.answered)}).",
        f"ALIGNMENT {totals.total} (W:{totals.w} C:{totals.c} T:{totals.t} R:{totals.r}).",
    ]
    lines += [f"{c.id} -> {c.status}: {c.reason}" for c in changes]
    lines.append(AUTHORITY_RULE)
    return "\n".join(lines)
