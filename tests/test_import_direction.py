"""Imports flow one way, CLI/API -> orchestrator/resolvers -> store: an ast check over every module of ours."""

from __future__ import annotations

import ast
import tomllib
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
#: The top-level folders, as bare names: importing one of them (`import store`) bypasses the `concord` package.
FOLDERS = ("store", "orchestrator", "schema", "resolvers", "prompts")
ORCHESTRATOR_CORE = ("engine", "panel", "judging", "blue", "progress")
ABOVE_THE_CORE = ("concord.resolvers", "concord.schema", "concord.orchestrator.cli", "concord.orchestrator.serving")


@dataclass(frozen=True)
class Rule:
    """Modules under `importer` may import only `allowed` (when given) of ours, and never `forbidden`."""

    importer: str
    allowed: tuple[str, ...] | None = None
    forbidden: tuple[str, ...] = ()
    exempt: str | None = None


RULES = (
    Rule("concord.store", allowed=("concord.store",)),
    Rule("concord.prompts", allowed=("concord.prompts",)),
    Rule("concord.schema", allowed=("concord.schema", "concord.store")),
    Rule("concord.resolvers", allowed=("concord.resolvers", "concord.schema", "concord.store")),
    *(Rule(f"concord.orchestrator.{part}", forbidden=ABOVE_THE_CORE) for part in ORCHESTRATOR_CORE),
    Rule("concord", forbidden=("concord.orchestrator.cli",), exempt="concord.orchestrator.cli"),
)


@dataclass(frozen=True)
class Violation:
    """One import that goes against the flow."""

    module: str
    line: int
    target: str
    reason: str

    def __str__(self) -> str:
        return f"{self.module}:{self.line} imports {self.target}: {self.reason}"


def within(module: str, package: str) -> bool:
    """Whether `module` is `package` or inside it (dotted boundaries: concord.store is not concord.storage)."""
    return module == package or module.startswith(package + ".")


def imported_names(source: str, module: str, *, is_package: bool) -> list[tuple[int, str]]:
    """Every module an import anywhere in `source` names (function-level too), relative ones resolved."""
    found: list[tuple[int, str]] = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found.extend((node.lineno, alias.name) for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                package = module if is_package else module.rpartition(".")[0]
                anchor = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                base = f"{anchor}.{base}" if base else anchor
            # `from concord import store` imports concord.store; `from x.y import name` stays inside x.y.
            found.extend((node.lineno, base if alias.name == "*" else f"{base}.{alias.name}") for alias in node.names)
    return found


def broken_rule(module: str, target: str) -> str | None:
    """Why `module` may not import `target`, or None when it may."""
    if target.split(".")[0] in FOLDERS:
        return "a top-level folder imported by its bare name"
    if not within(target, "concord"):
        return None
    for rule in RULES:
        if not within(module, rule.importer) or (rule.exempt and within(module, rule.exempt)):
            continue
        if rule.allowed is not None and not any(within(target, allowed) for allowed in rule.allowed):
            return f"{rule.importer} imports only {', '.join(rule.allowed)}"
        if any(within(target, forbidden) for forbidden in rule.forbidden):
            return f"{rule.importer} must not import it"
    return None


def violations(source: str, module: str, *, is_package: bool = False) -> list[Violation]:
    """The imports in `source`, the text of `module`, that break a rule (one entry per import)."""
    found = imported_names(source, module, is_package=is_package)
    return [
        Violation(module, line, target, reason)
        for line, target in found
        if (reason := broken_rule(module, target)) is not None
    ]


def our_modules() -> list[tuple[str, Path]]:
    """(module name, file) for every .py file in the folders pyproject maps onto concord.*."""
    package_dir = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["package-dir"]
    modules = []
    for package, folder in package_dir.items():
        for path in sorted((ROOT / folder).rglob("*.py")):
            parts = path.relative_to(ROOT / folder).with_suffix("").parts
            if parts[-1] == "__init__":
                parts = parts[:-1]
            modules.append((".".join((package, *parts)), path))
    return modules


def test_every_folder_is_checked() -> None:
    """The walk reaches all five folders and their subpackages, so an empty walk cannot pass."""
    names = {name for name, _ in our_modules()}
    assert {f"concord.{folder}" for folder in FOLDERS} <= names
    assert {f"concord.orchestrator.{part}" for part in (*ORCHESTRATOR_CORE, "cli", "serving")} <= names
    assert {"concord.store.backends.sqlite", "concord.resolvers.ports", "concord.orchestrator.engine.run"} <= names


def test_imports_follow_the_flow() -> None:
    """No module of ours imports against CLI/API -> orchestrator/resolvers -> store."""
    broken = [
        str(violation)
        for name, path in our_modules()
        for violation in violations(path.read_text(), name, is_package=path.name == "__init__.py")
    ]
    assert broken == []


@pytest.mark.parametrize(
    ("module", "source", "target"),
    [
        (
            "concord.store.audit",
            "def f():\n    from concord.orchestrator.engine import run\n",
            "concord.orchestrator.engine.run",
        ),
        ("concord.store.backends.sqlite", "from ...resolvers import ports\n", "concord.resolvers.ports"),
        ("concord.store.model", "import concord.schema.enums\n", "concord.schema.enums"),
        ("concord.store.model", "import concord.storefront\n", "concord.storefront"),  # a prefix, not a package
        ("concord.prompts", "from concord.store import errors\n", "concord.store.errors"),
        ("concord.schema.dialogue", "from concord.resolvers.reader import Reader\n", "concord.resolvers.reader.Reader"),
        ("concord.resolvers.app", "from concord import orchestrator\n", "concord.orchestrator"),
        (
            "concord.resolvers.app",
            "class A:\n    def m(self):\n        import concord.orchestrator.progress.bus\n",
            "concord.orchestrator.progress.bus",
        ),
        (
            "concord.orchestrator.engine.run",
            "from concord.resolvers.ports import DialogueStarter\n",
            "concord.resolvers.ports.DialogueStarter",
        ),
        ("concord.orchestrator.judging.markers", "from concord.schema import enums\n", "concord.schema.enums"),
        (
            "concord.orchestrator.blue.lint",
            "from ..serving.server import app\n",
            "concord.orchestrator.serving.server.app",
        ),
        ("concord.orchestrator.progress.bus", "from ..cli import main\n", "concord.orchestrator.cli.main"),
        (
            "concord.orchestrator.serving.server",
            "from concord.orchestrator.cli.main import main\n",
            "concord.orchestrator.cli.main.main",
        ),
        ("concord.orchestrator.panel.pools", "import store.errors\n", "store.errors"),
    ],
)
def test_the_checker_flags_a_planted_violation(module: str, source: str, target: str) -> None:
    """Each rule catches an import planted against it, lazy and relative ones included."""
    assert [violation.target for violation in violations(source, module)] == [target]


@pytest.mark.parametrize(
    ("module", "source"),
    [
        ("concord.store.audit", "from concord.store.crypto import envelope\nimport json\nimport strawberry\n"),
        ("concord.store.crypto", "from .envelope import seal\n"),
        ("concord.schema.dialogue", "from concord.store.model import Tension\nfrom .enums import Status\n"),
        ("concord.resolvers.app", "from concord.schema import enums\nfrom concord.store import errors\n"),
        ("concord.orchestrator.serving.server", "from concord.resolvers.app import create_app\n"),
        ("concord.orchestrator.cli.main", "from concord.orchestrator.serving import server\nfrom . import demo\n"),
        (
            "concord.orchestrator.engine.run",
            "from concord.orchestrator.judging import markers\nfrom concord.store import ids\n",
        ),
    ],
)
def test_the_checker_passes_imports_along_the_flow(module: str, source: str) -> None:
    """Imports that follow the flow are not flagged, so the check does not pass by refusing everything."""
    assert violations(source, module, is_package=module == "concord.store.crypto") == []
