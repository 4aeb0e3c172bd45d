"""Read and write GitHub-style markdown tables."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass


@dataclass
class Table:
    """A markdown table: header cells and body rows, cells stripped."""

    header: list[str]
    rows: list[list[str]]

    def column(self, *names: str) -> int | None:
        """Index of the first header cell equal (ignoring case and emphasis) to one of `names`."""
        wanted = {n.lower() for n in names}
        return next((i for i, cell in enumerate(self.header) if plain(cell).lower() in wanted), None)


def read_tables(text: str) -> list[Table]:
    """Every table in a markdown text: a `|` header line, a `|---|` rule, then `|` rows."""
    lines = text.splitlines()
    tables = []
    i = 0
    while i < len(lines) - 1:
        if _is_row(lines[i]) and _is_rule(lines[i + 1]):
            header = split_row(lines[i])
            rows = []
            i += 2
            while i < len(lines) and _is_row(lines[i]):
                rows.append(split_row(lines[i]))
                i += 1
            tables.append(Table(header, rows))
        else:
            i += 1
    return tables


def split_row(line: str) -> list[str]:
    """The cells of one table line, honouring `\\|` escapes."""
    inner = line.strip().removeprefix("|").removesuffix("|")
    cells, current, escaped = [], [], False
    for char in inner:
        if escaped:
            current.append(char)
            escaped = False
        elif char == "\\":
            escaped = True
            current.append(char)
        elif char == "|":
            cells.append("".join(current).strip())
            current = []
        else:
            current.append(char)
    cells.append("".join(current).strip())
    return [cell.replace("\\|", "|") for cell in cells]


def render_table(header: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """A markdown table; `|` and newlines inside cells are escaped."""

    def cell(value: object) -> str:
        return " ".join(str(value).split()).replace("|", "\\|")

    lines = ["| " + " | ".join(cell(h) for h in header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in rows]
    return "\n".join(lines)


def plain(cell: str) -> str:
    """A cell without markdown emphasis."""
    return cell.replace("**", "").replace("__", "").strip()


def _is_row(line: str) -> bool:
    return line.lstrip().startswith("|")


def _is_rule(line: str) -> bool:
    cells = split_row(line)
    return bool(cells) and all(c and set(c) <= set("-: ") for c in cells)
