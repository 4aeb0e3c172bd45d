"""Which perspectives of a round are new: the count behind velocity's "new perspectives".

In round 0 every perspective is new. Later, a perspective is not new when it comes from a REFINEMENT,
when it has a refine/address/resolve/support/depend ref, when its label names an earlier entity
(`T01 resolves with …`), or when it restates what was said before: its novelty, the share of its
distinct content words (label and body, stemmed, stop words dropped; see `judging.similarity`) that
appear in no perspective, tension or recommendation of an earlier round, is below
NEW_PERSPECTIVE_NOVELTY = 0.25.
Why novelty against everything said before, not pairwise Jaccard: a restatement rewords a point
gathered from several earlier answers, so its best pairwise match stays low; on the rfc-0058 run
the best Jaccard of a round-3 perspective's label against any earlier label (all restatements to
its recorded judge) spans 0.17-0.25, inside round 1's 0.05-0.25, while novelty separates them. Why 0.25: that run
is the one recorded run with complete files and per-round counts; every round-3 perspective there
has novelty 0.18 or less (its judge: 0 new), novelty alone counts 3 new in round 2 (its judge: 3;
the label rule then removes 2 that name earlier tensions) and 12 of 16 in round 1 (its judge: 9).
Only earlier rounds are compared, so the count does not depend on the order answers are read.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence

from concord.orchestrator.judging.similarity import content_words, novelty
from concord.store.model import EntityDraft
from concord.store.snapshot import Snapshot

NEW_PERSPECTIVE_NOVELTY = 0.25
#: Ref types by which a perspective builds on an earlier entity, so it is not new.
BUILDS_ON = frozenset({"refine", "address", "resolve", "support", "depend"})


def mark_new_perspectives(
    snapshot: Snapshot,
    round_number: int,
    drafts: Sequence[EntityDraft],
    *,
    refinements: Collection[str],
    mentions: Mapping[str, Sequence[str]],
) -> int:
    """Flag each perspective draft new or not in its parameters; return how many are new.

    `refinements` holds the local ids of drafts made by a REFINEMENT, `mentions` the earlier entities
    each draft's label names.
    """
    known = frozenset().union(
        *(
            content_words(f"{e.label} {e.content}")
            for e in snapshot.entities.values()
            if e.kind in ("perspective", "tension", "recommendation") and e.round < round_number
        )
    )
    count = 0
    for draft in drafts:
        if draft.kind != "perspective":
            continue
        if round_number == 0:
            draft.parameters = {"new": True}
            count += 1
            continue
        share = novelty(content_words(f"{draft.label} {draft.content}"), known)
        builds_on = sorted(
            {r.target for r in draft.references if r.ref_type in BUILDS_ON} | set(mentions.get(draft.local_id, []))
        )
        refined = draft.local_id in refinements
        is_new = not refined and not builds_on and share >= NEW_PERSPECTIVE_NOVELTY
        draft.parameters = {"new": is_new, "novelty": round(share, 2), "builds_on": builds_on, "refinement": refined}
        count += is_new
    return count
