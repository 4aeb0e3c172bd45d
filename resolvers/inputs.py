"""GraphQL arguments checked and turned into store arguments; bad input raises the store's own errors."""

from __future__ import annotations

from concord.resolvers.ports import StartRequest
from concord.schema.inputs import StartDialogueInput, VerdictInput
from concord.store.analytics import MAX_PAGE
from concord.store.dialogue_store import DialogueStore
from concord.store.errors import NotFound, Problem, ValidationFailed
from concord.store.ids import check_dialogue_id, check_verdict_id, is_display_id
from concord.store.model import Verdict


def dialogue_id(value: str) -> str:
    """A dialogue id; a malformed one is answered exactly like a missing dialogue."""
    try:
        return check_dialogue_id(value)
    except ValueError:
        raise NotFound(f"dialogue {value} not found") from None


def page_size(first: int) -> int:
    """`first` within 1..MAX_PAGE."""
    if not 1 <= first <= MAX_PAGE:
        raise ValidationFailed(
            [
                Problem(
                    "invalid_page_size",
                    f"first must be between 1 and {MAX_PAGE}, not {first}",
                    "first",
                    f"ask for at most {MAX_PAGE} and page on with pageInfo.endCursor",
                )
            ]
        )
    return first


def invalid_cursor() -> ValidationFailed:
    """The error for an `after` that no page of this query handed out."""
    return ValidationFailed(
        [
            Problem(
                "invalid_cursor",
                "after is not a cursor of this query",
                "after",
                "pass pageInfo.endCursor of the previous page",
            )
        ]
    )


def tension_id(value: str) -> str:
    """A tension display id like T0102."""
    if not (is_display_id(value) and value.startswith("T")):
        raise ValidationFailed(
            [Problem("invalid_display_id", f"{value!r} is not a tension id", "id", "use a tension id like T0102")]
        )
    return value


def verdict(data: VerdictInput) -> Verdict:
    """A store verdict from the input."""
    try:
        check_verdict_id(data.id)
    except ValueError as exc:
        raise ValidationFailed(
            [Problem("invalid_verdict_id", str(exc), "input.id", "use letters, digits, '_', '.', '-'")]
        ) from None
    return Verdict(
        id=data.id,
        verdict_type=data.verdict_type.value,
        round=data.round,
        recommendation=data.recommendation,
        confidence=data.confidence.value,
        description=data.description,
        author_expert=data.author_expert,
        conditions=list(data.conditions),
        vote=data.vote,
        supporting_experts=list(data.supporting_experts),
        tensions_accepted=list(data.tensions_accepted),
        adopted=list(data.adopted),
    )


def start_request(data: StartDialogueInput, store: DialogueStore) -> StartRequest:
    """A start request with the checks that need no pool knowledge; the starter checks the rest."""
    problems = [
        Problem("missing_field", f"a dialogue needs a {name}", f"input.{name}", f"state the {name}")
        for name, value in (("title", data.title), ("question", data.question))
        if not value.strip()
    ]
    if data.max_rounds is not None and not 1 <= data.max_rounds <= 99:
        problems.append(
            Problem(
                "invalid_argument",
                "maxRounds must be between 1 and 99",
                "input.maxRounds",
                "omit it for the server default",
            )
        )
    if problems:
        raise ValidationFailed(problems)
    return StartRequest(
        title=data.title,
        question=data.question,
        pool=data.pool,
        background=data.background,
        max_rounds=data.max_rounds,
        seed=data.seed,
        store=store,
    )
