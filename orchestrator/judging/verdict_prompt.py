"""The llm judge's verdict request, rendered from prompts/verdict.md: the record it may cite, and the rules draft."""

from __future__ import annotations

from concord.orchestrator.engine.prompts import RenderedPrompt, template_sections
from concord.store.model import Ref, Verdict
from concord.store.snapshot import Snapshot

LEAD_CHARS = 300


def verdict_prompt(snap: Snapshot, draft: Verdict, status: str) -> RenderedPrompt:
    """The request to write the final verdict of a dialogue, with the rules judge's draft to start from."""
    sections = template_sections("verdict")
    user = sections["user"].substitute(
        question=snap.dialogue.question.strip(),
        status=status,
        entities=_entities(snap),
        refs="\n".join(f"- {r.source} {r.ref_type} {r.target}" for r in sorted(snap.refs, key=_ref_key)) or "- none",
        draft=_draft(draft),
    )
    return RenderedPrompt(system=sections["system"].substitute(), user=user)


def _ref_key(ref: Ref) -> tuple[str, str, str]:
    return (ref.source, ref.ref_type, ref.target)


def _entities(snap: Snapshot) -> str:
    """One table row per entity: id, kind, status, authors, round, label and the opening of its text."""
    rows = ["| id | kind | status | by | round | label | text |", "|---|---|---|---|---|---|---|"]
    for entity in sorted(snap.entities.values(), key=lambda e: e.id):
        text = " ".join(entity.content.split())
        text = text if len(text) <= LEAD_CHARS else text[:LEAD_CHARS].rstrip() + "..."
        by = ", ".join(c.capitalize() for c in entity.contributors)
        rows.append(
            f"| {entity.id} | {entity.kind} | {entity.status} | {by} | {entity.round} | {_cell(entity.label)} | {_cell(text)} |"
        )
    return "\n".join(rows)


def _cell(text: str) -> str:
    return text.replace("|", "/").replace("\n", " ")


def _draft(draft: Verdict) -> str:
    """The rules verdict's sections as markdown."""
    lines = ["Recommendation: " + draft.recommendation, "", "Reasons:"]
    lines += [f"- {r.text} [{', '.join(r.cites)}]" for r in draft.reasons] or ["- none"]
    lines += ["", "Tensions:"] + ([f"- {t.id} ({t.status}): {t.how}" for t in draft.tensions] or ["- none"])
    lines += ["", "Dissent:"] + ([f"- {d.expert.capitalize()}: {d.why}" for d in draft.dissent] or ["- none"])
    lines += ["", "Risks:"] + ([f"- {risk}" for risk in draft.risks] or ["- none recorded"])
    return "\n".join(lines)
