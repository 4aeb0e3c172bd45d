"""Identifiers: display ids, local ids, slugs, dialogue ids, and the item keys built from them."""

from __future__ import annotations

import base64
import re
import secrets
import unicodedata

from concord.store.errors import InvalidArgument

#: Entity kinds that take part in refs, keyed by their display-id prefix.
KIND_BY_PREFIX = {
    "P": "perspective",
    "R": "recommendation",
    "T": "tension",
    "E": "evidence",
    "C": "claim",
}
PREFIX_BY_KIND = {kind: prefix for prefix, kind in KIND_BY_PREFIX.items()}
ENTITY_KINDS = tuple(KIND_BY_PREFIX.values())

MAX_ROUND = 99
MAX_SEQ = 99

_DISPLAY_ID = re.compile(r"^([PRTEC])(\d{2})(\d{2})$")
_LOCAL_ID = re.compile(r"^([A-Z][A-Za-z]*\d*)-([PRTEC])(\d{2})(\d{2})$")
_DIALOGUE_ID = re.compile(r"^[a-z0-9]+(?:-[a-z0-9]+)*$")
_EXPERT_SLUG = re.compile(r"^[a-z][a-z0-9]*$")
_VERDICT_ID = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")


def display_id(kind: str, round: int, seq: int) -> str:
    """`{P|R|T|E|C}{RR}{SS}` for an entity kind ('perspective' or 'P'), round and sequence."""
    prefix = PREFIX_BY_KIND.get(kind, kind)
    if prefix not in KIND_BY_PREFIX:
        raise InvalidArgument(f"unknown entity kind {kind!r}")
    if not 0 <= round <= MAX_ROUND:
        raise InvalidArgument(f"round {round} is outside 0..{MAX_ROUND}")
    if not 1 <= seq <= MAX_SEQ:
        raise InvalidArgument(f"sequence {seq} is outside 1..{MAX_SEQ}: at most {MAX_SEQ} per kind per round")
    return f"{prefix}{round:02d}{seq:02d}"


def parse_display_id(value: str) -> tuple[str, int, int]:
    """(prefix, round, seq) of a display id like `T0215`; ValueError for anything else."""
    match = _DISPLAY_ID.match(value) if isinstance(value, str) else None
    if not match or int(match.group(3)) == 0:
        raise InvalidArgument(f"{value!r} is not a display id like P0102 (type letter, 2-digit round, 2-digit seq)")
    return match.group(1), int(match.group(2)), int(match.group(3))


def is_display_id(value: str) -> bool:
    """True for a well-formed display id."""
    try:
        parse_display_id(value)
    except ValueError:
        return False
    return True


def kind_of(display: str) -> str:
    """Entity kind named by a display id's prefix."""
    return KIND_BY_PREFIX[parse_display_id(display)[0]]


def parse_local_id(value: str) -> tuple[str, str, int, int] | None:
    """(expert slug, prefix, round, seq) of an expert-local id like `MUFFIN-P0101`, else None."""
    match = _LOCAL_ID.match(value) if isinstance(value, str) else None
    if not match:
        return None
    return match.group(1).lower(), match.group(2), int(match.group(3)), int(match.group(4))


def slugify(title: str, max_length: int = 80) -> str:
    """Lowercase ASCII slug: runs of anything non-alphanumeric become one '-', ends trimmed."""
    ascii_title = unicodedata.normalize("NFKD", title).encode("ascii", "ignore").decode()
    slug = re.sub(r"[^a-z0-9]+", "-", ascii_title.lower()).strip("-")
    if len(slug) > max_length:
        slug = slug[:max_length].rstrip("-")
    return slug or "dialogue"


def new_dialogue_id(title: str) -> str:
    """Slug of the title plus '-' and 6 random base32 characters."""
    suffix = base64.b32encode(secrets.token_bytes(5)).decode().lower()[:6]
    return f"{slugify(title)}-{suffix}"


def check_dialogue_id(value: str) -> str:
    """Return the id if it is a valid dialogue id, else raise InvalidArgument."""
    if not isinstance(value, str) or not _DIALOGUE_ID.match(value) or len(value) > 120:
        raise InvalidArgument(f"{value!r} is not a dialogue id (lowercase letters, digits and single dashes)")
    return value


def check_expert_slug(value: str) -> str:
    """Return the slug if it is a valid expert slug (lowercase pastry name), else raise InvalidArgument."""
    if not isinstance(value, str) or not _EXPERT_SLUG.match(value):
        raise InvalidArgument(f"{value!r} is not an expert slug (lowercase letters and digits)")
    return value


def check_verdict_id(value: str) -> str:
    """Return the id if it is a valid verdict id (no '#', '/' or ':'), else raise InvalidArgument."""
    if not isinstance(value, str) or not _VERDICT_ID.match(value):
        raise InvalidArgument(f"{value!r} is not a verdict id (1-64 of letters, digits, '_', '.', '-')")
    return value


def partition_key(dialogue_id: str) -> str:
    """PK of a dialogue's partition."""
    return f"dialogue#{dialogue_id}"


def dialogue_of(pk: str) -> str:
    """Dialogue id from a partition key."""
    return pk.removeprefix("dialogue#")


def entity_sk(display: str) -> str:
    """SK of an entity from its display id: P0102 -> `perspective#01#02`."""
    prefix, round, seq = parse_display_id(display)
    return f"{KIND_BY_PREFIX[prefix]}#{round:02d}#{seq:02d}"


def display_of_sk(sk: str) -> str:
    """Display id of an entity SK: `perspective#01#02` -> P0102."""
    kind, round, seq = sk.split("#")
    return f"{PREFIX_BY_KIND[kind]}{round}{seq}"


def canonical_address(pk: str, sk: str) -> str:
    """`dialogue:{id}/entity:{type}/{subkey}`: the type is the SK's first token, the subkey the rest."""
    kind, _, subkey = sk.partition("#")
    return f"dialogue:{dialogue_of(pk)}/entity:{kind}/{subkey}"
