"""Lint the expert answers of a blue-layout dialogue directory for marker hygiene."""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from concord.orchestrator.judging.markers import parse_answer
from concord.orchestrator.panel.pools import PASTRY_NAMES, slug
from concord.store.errors import BadInput

KIND_ORDER: tuple[str, ...] = (
    "perspective",
    "tension",
    "refinement",
    "concession",
    "resolved",
    "recommendation",
    "evidence",
    "claim",
    "stance",
    "ref",
    "move",
    "converge",
    "dissent",
    "minority_verdict",
    "unknown",
)
# Weights of the per-file checks that make up the score.
WEIGHT_CONTENT = 2
WEIGHT_RULE = 1
WEIGHT_CLEAN = 1

_ROUND_DIR_RE = re.compile(r"round-([0-9]+)")
_NUMBERED_STEM_RE = re.compile(r"pastry[0-9]+")
_EXPERT_STEMS = frozenset(slug(name) for name in PASTRY_NAMES)
_SHORT_NAMES = {
    "perspective": "persp",
    "tension": "tens",
    "concession": "conc",
    "recommendation": "recom",
    "evidence": "evid",
    "converge": "conv",
    "minority_verdict": "minor",
    "unknown": "unkn",
}


class LintError(BadInput):
    """The given path cannot be linted as a dialogue directory."""


@dataclass(frozen=True)
class UnknownMarker:
    """A marker-like bracket the parser could not classify."""

    name: str
    line: int
    raw: str


@dataclass
class FileLint:
    """Marker facts about one expert answer file."""

    path: str
    round: int
    expert: str
    counts: dict[str, int]
    unknown: list[UnknownMarker]
    ends_with_rule: bool
    word_count: int
    has_content: bool
    converge: bool

    @property
    def score(self) -> float:
        """Weighted share of the checks this file passes (see `LintReport.score`)."""
        passed = (
            WEIGHT_CONTENT * self.has_content + WEIGHT_RULE * self.ends_with_rule + WEIGHT_CLEAN * (not self.unknown)
        )
        return passed / (WEIGHT_CONTENT + WEIGHT_RULE + WEIGHT_CLEAN)


@dataclass
class LintReport:
    """Lint results for every expert answer of a dialogue directory."""

    directory: Path
    files: list[FileLint]
    skipped: list[str] = field(default_factory=list)

    @property
    def totals(self) -> dict[str, int]:
        """Marker counts by kind over all files, in `KIND_ORDER`, zero kinds left out."""
        total: Counter[str] = Counter()
        for item in self.files:
            total.update(item.counts)
        return {kind: total[kind] for kind in KIND_ORDER if total[kind]}

    @property
    def score(self) -> float:
        """Mean file score in [0, 1].

        A file scores (2·has_content + 1·ends_with_rule + 1·no_unknown) / 4, where has_content
        means at least one perspective/tension/refinement/concession/resolved/recommendation/
        evidence/claim marker, ends_with_rule means the last non-empty line is `---`, and
        no_unknown means every marker-like bracket was classified.
        """
        return sum(item.score for item in self.files) / len(self.files)

    @property
    def unknown(self) -> list[tuple[str, UnknownMarker]]:
        """Every unknown marker with the file it appears in."""
        return [(item.path, marker) for item in self.files for marker in item.unknown]

    def to_json(self) -> dict[str, object]:
        """A JSON-ready summary of the report."""
        return {
            "directory": str(self.directory),
            "score": round(self.score, 4),
            "totals": self.totals,
            "files": [
                {
                    "path": item.path,
                    "round": item.round,
                    "expert": item.expert,
                    "counts": item.counts,
                    "unknown": [{"name": m.name, "line": m.line, "raw": m.raw} for m in item.unknown],
                    "ends_with_rule": item.ends_with_rule,
                    "word_count": item.word_count,
                    "has_content": item.has_content,
                    "converge": item.converge,
                    "score": round(item.score, 4),
                }
                for item in self.files
            ],
            "skipped": self.skipped,
        }


def lint_directory(path: Path) -> LintReport:
    """Lint every `round-N/<expert>.md` answer under a dialogue directory."""
    if not path.exists():
        raise LintError(f"{path} does not exist")
    if not path.is_dir():
        raise LintError(f"{path} is not a directory")
    rounds = sorted(
        (int(match.group(1)), child)
        for child in path.iterdir()
        if child.is_dir() and (match := _ROUND_DIR_RE.fullmatch(child.name))
    )
    if not rounds:
        raise LintError(f"{path} has no round-N folders, so it is not a dialogue directory")
    files: list[FileLint] = []
    skipped: list[str] = []
    for number, folder in rounds:
        for file in sorted(folder.iterdir()):
            if not file.is_file() or file.suffix != ".md" or file.name.endswith(".prompt.md"):
                continue
            relative = f"{folder.name}/{file.name}"
            if _is_expert_stem(file.stem):
                files.append(_lint_file(file, relative, number))
            else:
                skipped.append(relative)
    if not files:
        raise LintError(f"{path} has round folders but no expert answers (round-N/<name>.md)")
    return LintReport(directory=path, files=files, skipped=skipped)


def format_lint(report: LintReport) -> str:
    """Render a report as a plain-text table, the unknown-marker list and the score."""
    kinds = list(report.totals)
    rounds = sorted({item.round for item in report.files})
    lines = [f"Dialogue: {report.directory}", f"Answers: {len(report.files)} in {len(rounds)} rounds", ""]
    width = max(len(item.path) for item in report.files)
    header = ["file".ljust(width), *(f"{_short(kind):>5}" for kind in kinds), "  ---", "signal", " words"]
    lines.append(" ".join(header))
    for item in report.files:
        cells = [
            item.path.ljust(width),
            *(f"{item.counts.get(kind, 0):>5}" for kind in kinds),
            f"{'yes' if item.ends_with_rule else 'no':>5}",
            f"{'yes' if item.converge else 'no':>6}",
            f"{item.word_count:>6}",
        ]
        lines.append(" ".join(cells))
    lines += ["", "Totals by marker type:"]
    lines += [f"  {kind:<17}{count:>6}" for kind, count in report.totals.items()]
    unknown = report.unknown
    lines += ["", f"Unknown markers: {len(unknown) or 'none'}"]
    lines += [f"  {path}:{marker.line}  {marker.name}  {marker.raw}" for path, marker in unknown]
    if report.skipped:
        lines += ["", "Skipped (not expert answers): " + ", ".join(report.skipped)]
    lines += ["", f"Score: {report.score:.4f}"]
    return "\n".join(lines)


def _lint_file(file: Path, relative: str, number: int) -> FileLint:
    """Parse one answer file and collect its lint facts."""
    parsed = parse_answer(file.read_text(encoding="utf-8", errors="replace"))
    counts = Counter(marker.kind for marker in parsed.markers)
    return FileLint(
        path=relative,
        round=number,
        expert=file.stem,
        counts={kind: counts[kind] for kind in KIND_ORDER if counts[kind]},
        unknown=[UnknownMarker(m.name, m.line, m.raw) for m in parsed.unknown],
        ends_with_rule=parsed.ends_with_rule,
        word_count=parsed.word_count,
        has_content=parsed.has_content,
        converge=parsed.converge,
    )


def _is_expert_stem(stem: str) -> bool:
    """Tell whether a file stem is an expert name (judge files like scoreboard.md are not)."""
    return stem in _EXPERT_STEMS or _NUMBERED_STEM_RE.fullmatch(stem) is not None


def _short(kind: str) -> str:
    """Column heading for a marker kind."""
    return _SHORT_NAMES.get(kind, kind[:5])
