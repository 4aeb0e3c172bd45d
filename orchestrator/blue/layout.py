"""The blue dialogue directory layout: names, relative paths, and reading a directory's files."""

from __future__ import annotations

import base64
import hashlib
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from concord.orchestrator.panel.pools import is_valid_pastry_name
from concord.store.errors import BadInput
from concord.store.ids import slugify

POOL_FILE = "expert-pool.json"
SCOREBOARD_FILE = "scoreboard.md"
TENSIONS_FILE = "tensions.md"
VERDICT_FILE = "verdict.md"
DIALOGUE_FILE = "dialogue.json"
BACKGROUND_FILE = "background.md"
PANEL_FILE = "panel.json"
#: The older ukfs layout keeps its verdict here.
CONVERGENCE_FILE = "CONVERGENCE.md"
REPAIR_SUFFIX = ".repair"

DIR_NAME = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{4}Z-[a-z0-9-]+$")
_STAMP = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{4}Z-")
_ROUND_DIR = re.compile(r"round-([0-9]+)")
#: The label a recorded judge file's heading puts before or after the dialogue's title.
_HEADING_LABEL = re.compile(
    r"^(?:final verdict|verdict|scoreboard|round \d+ summary|summary)\s*[:\u2014\u2013-]\s*"
    r"|\s+[:\u2014\u2013-]\s*(?:background|summary|verdict)$",
    re.IGNORECASE,
)


class DialogueDirError(BadInput):
    """A recorded dialogue directory, or one of its files, that cannot be used as it is."""


def dialogue_suffix(dialogue_id: str) -> str:
    """The unique random part of a dialogue id (`slug-xxxxxx` -> `xxxxxx`)."""
    return dialogue_id.rsplit("-", 1)[-1]


def dialogue_dir_name(title: str, moment: datetime, dialogue_id: str) -> str:
    """`{YYYY-MM-DDTHHMMZ}-{slug}-{suffix}` for a dialogue created at `moment`: the suffix binds it to its id."""
    return f"{moment.astimezone(UTC):%Y-%m-%dT%H%MZ}-{slugify(title)}-{dialogue_suffix(dialogue_id)}"


def imported_dialogue_id(directory_name: str) -> str:
    """A dialogue id derived only from a directory name: its slug plus 6 base32 characters of its hash.

    Shaped like a live id (slug + 6 characters) so both kinds look alike; the hash keeps two runs
    with the same title but different timestamps apart, and makes a re-import find the same id.
    """
    suffix = base64.b32encode(hashlib.sha256(directory_name.encode()).digest()).decode().lower()[:6]
    return f"{slugify(_STAMP.sub('', directory_name))}-{suffix}"


def title_of(directory_name: str, headings: Iterable[str] = ()) -> str:
    """The title a recording gives itself: the first heading that names the directory, else its name as written.

    A heading names the directory when, with its judge-file label ("Scoreboard:", "Round 0
    Summary:", "- Background") removed, its words are the directory slug's words, each slug word
    starting its word: recordings abbreviate in directory names ("ukfs-spec-review" is "UKFS
    Specification Review").
    """
    name = _STAMP.sub("", directory_name)
    wanted = slugify(name).split("-")
    for heading in headings:
        candidate = _HEADING_LABEL.sub("", heading.strip()).strip()
        words = slugify(candidate).split("-")
        if len(words) == len(wanted) and all(w.startswith(s) for s, w in zip(wanted, words, strict=True)):
            return candidate
    return name.replace("-", " ")


def round_dir(number: int) -> str:
    """`round-N`."""
    return f"round-{number}"


def answer_file(number: int, expert: str, repair: bool = False) -> str:
    """`round-N/<expert>.md` (or `<expert>.repair.md`), relative to the dialogue directory."""
    return f"{round_dir(number)}/{expert}{REPAIR_SUFFIX if repair else ''}.md"


def prompt_file(number: int, expert: str, repair: bool = False) -> str:
    """`round-N/<expert>.prompt.md` (or `<expert>.repair.prompt.md`)."""
    return f"{round_dir(number)}/{expert}{REPAIR_SUFFIX if repair else ''}.prompt.md"


def summary_file(number: int) -> str:
    """`round-N.summary.md`, beside the round directories."""
    return f"round-{number}.summary.md"


def panel_file(number: int) -> str:
    """`round-N/panel.json`."""
    return f"{round_dir(number)}/{PANEL_FILE}"


def read_text(path: Path) -> str:
    """A file's exact text (no newline translation), undecodable bytes replaced."""
    return path.read_bytes().decode("utf-8", errors="replace")


@dataclass
class RoundFiles:
    """What one `round-N/` directory holds, keyed by expert slug."""

    number: int
    path: Path
    answers: dict[str, str] = field(default_factory=dict)
    repaired: dict[str, str] = field(default_factory=dict)
    prompts: dict[str, str] = field(default_factory=dict)
    repair_prompts: dict[str, str] = field(default_factory=dict)
    panel: Path | None = None
    scoreboard: str | None = None


@dataclass
class DialogueFiles:
    """The files of one dialogue directory, read once."""

    path: Path
    rounds: list[RoundFiles]
    summaries: dict[int, str]
    pool: str | None
    scoreboard: str | None
    tensions: str | None
    verdict: str | None
    dialogue_json: str | None
    background: str | None

    @property
    def has_answers(self) -> bool:
        """True when at least one round holds an expert answer."""
        return any(r.answers for r in self.rounds)


def read_dialogue_dir(path: Path) -> DialogueFiles:
    """Read every file of the blue layout (and the older ukfs one) that a dialogue directory holds."""
    if not path.is_dir():
        raise DialogueDirError(f"{path} is not a dialogue directory")
    rounds = sorted(
        (
            _read_round(int(m.group(1)), child)
            for child in path.iterdir()
            if child.is_dir() and (m := _ROUND_DIR.fullmatch(child.name))
        ),
        key=lambda r: r.number,
    )
    summaries = {}
    for rnd in rounds:
        for candidate in (path / summary_file(rnd.number), rnd.path / "summary.md"):
            if candidate.is_file():
                summaries[rnd.number] = read_text(candidate)
                break
    verdict = _optional(path / VERDICT_FILE)
    return DialogueFiles(
        path=path,
        rounds=rounds,
        summaries=summaries,
        pool=_optional(path / POOL_FILE),
        scoreboard=_optional(path / SCOREBOARD_FILE),
        tensions=_optional(path / TENSIONS_FILE),
        verdict=verdict if verdict is not None else _optional(path / CONVERGENCE_FILE),
        dialogue_json=_optional(path / DIALOGUE_FILE),
        background=_optional(path / BACKGROUND_FILE),
    )


def _read_round(number: int, path: Path) -> RoundFiles:
    files = RoundFiles(number, path)
    for child in sorted(path.iterdir()):
        if not child.is_file():
            continue
        if child.name == PANEL_FILE:
            files.panel = child
        elif child.name == SCOREBOARD_FILE:
            files.scoreboard = read_text(child)
        elif child.suffix == ".md":
            _add_expert_file(files, child)
    return files


def _add_expert_file(files: RoundFiles, child: Path) -> None:
    """File an expert's answer or prompt (plain or repair) under its slug; other files are ignored."""
    stem = child.name.removesuffix(".md")
    is_prompt = stem.endswith(".prompt")
    stem = stem.removesuffix(".prompt")
    repair = stem.endswith(REPAIR_SUFFIX)
    stem = stem.removesuffix(REPAIR_SUFFIX)
    if stem != stem.lower() or not is_valid_pastry_name(stem.capitalize()):
        return
    target = {
        (False, False): files.answers,
        (False, True): files.repaired,
        (True, False): files.prompts,
        (True, True): files.repair_prompts,
    }[(is_prompt, repair)]
    target[stem] = read_text(child)


def _optional(path: Path) -> str | None:
    return read_text(path) if path.is_file() else None
