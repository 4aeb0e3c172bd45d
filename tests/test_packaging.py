"""The distribution: pyproject lists every package, and the wheel, installed into a fresh venv outside the checkout,
runs a sim dialogue and shares site-packages with PyPI's `schema` package."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tomllib
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[1]
SETUPTOOLS = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
#: What the build reads; the wheel is built from a copy of these so the checkout gets no build/ or egg-info.
SOURCES = ("pyproject.toml", "README.md", "LICENSE", *SETUPTOOLS["package-dir"].values())
QUESTION = "How should a small team keep its design decisions?"


@dataclass(frozen=True)
class Installed:
    """A fresh venv with the wheel installed, and a working directory outside the checkout."""

    wheel: Path
    venv: Path
    work: Path
    env: dict[str, str]

    def run(self, program: str, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        """Run one of the venv's programs from the working directory."""
        return subprocess.run(
            [str(self.venv / "bin" / program), *args],
            cwd=self.work,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=600,
            check=check,
        )

    def python(self, code: str) -> str:
        """What the venv's python prints for `code`."""
        return self.run("python", "-c", code).stdout.strip()

    def packaged(self, package: str, name: str) -> Path:
        """Where the installed `package` keeps its data file `name`."""
        return Path(self.python(f"from importlib.resources import files; print(files({package!r}) / {name!r})"))

    def concord(self, *args: str) -> dict[str, Any]:
        """The JSON object a `concord … --json` command prints."""
        finished = self.run("concord", *args, "--json", check=False)
        assert finished.returncode == 0, finished.stdout + finished.stderr
        return json.loads(finished.stdout)


def test_every_folder_with_an_init_is_a_listed_package() -> None:
    """A subpackage missing from [tool.setuptools] packages would be left out of the wheel."""
    found = {
        ".".join((package, *init.parent.relative_to(ROOT / folder).parts))
        for package, folder in SETUPTOOLS["package-dir"].items()
        for init in (ROOT / folder).rglob("__init__.py")
    }
    assert found - set(SETUPTOOLS["packages"]) == set(), "folders with an __init__.py that pyproject does not list"
    assert set(SETUPTOOLS["packages"]) - found == set(), "packages pyproject lists that have no folder"


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Installed]:
    """Build the wheel and install it, with its dependencies from the index, into a venv of its own."""
    base = tmp_path_factory.mktemp("packaging")
    source = base / "source"
    source.mkdir()
    for name in SOURCES:
        if (ROOT / name).is_dir():
            shutil.copytree(ROOT / name, source / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(ROOT / name, source / name)
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", str(source), "--no-deps", "-q", "-w", str(base / "dist")],
        check=True,
        timeout=600,
    )
    (wheel,) = (base / "dist").glob("concord-*.whl")
    venv = base / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    # --no-compile: byte-compiling every dependency costs more than the few modules a run imports.
    subprocess.run([str(venv / "bin" / "pip"), "install", "-q", "--no-compile", str(wheel)], check=True, timeout=900)
    work = base / "work"
    work.mkdir()
    env = {key: value for key, value in os.environ.items() if not key.startswith("CONCORD_") and key != "PYTHONPATH"}
    env["CONCORD_HOME"] = str(base / "home")
    ready = Installed(wheel, venv, work, env)
    assert Path(ready.concord("keys", "init")["key_file"]).is_relative_to(base / "home")
    assert ready.concord("store", "init")["store"] == "sqlite"
    yield ready


@pytest.mark.slow
def test_the_wheel_holds_concord_only_with_its_package_data(installed: Installed) -> None:
    """Every file lands under concord/ (nothing generic in site-packages), templates, SDL and demo pool included."""
    names = set(zipfile.ZipFile(installed.wheel).namelist())
    assert {name.split("/")[0] for name in names} == {"concord", installed.wheel.name.split("-py3")[0] + ".dist-info"}
    data = {f"concord/prompts/{path.name}" for path in (ROOT / "prompts").glob("*.md")}
    assert len(data) >= 4
    assert data | {"concord/schema/schema.graphql", "concord/orchestrator/demo-pool.json"} <= names


@pytest.mark.slow
def test_the_installed_console_script_runs_a_sim_dialogue_from_outside_the_checkout(installed: Installed) -> None:
    """After keys init and store init, `concord run --provider sim` converges and writes a prompt for every answer."""
    where = installed.python("import concord.orchestrator, concord.prompts; print(concord.orchestrator.__file__)")
    assert Path(where).is_relative_to(installed.venv), f"concord imported from {where}, not from the venv"
    pool = str(installed.packaged("concord.orchestrator", "demo-pool.json"))
    result = installed.concord("run", "--question", QUESTION, "--pool", pool, "--provider", "sim", "--quiet")
    assert result["status"] == "converged" and result["simulated"] is True
    directory = Path(result["directory"])
    assert directory.is_relative_to(installed.work / "dialogues")
    prompts = sorted(directory.glob("round-*/*.prompt.md"))
    answers = sorted(p for p in directory.glob("round-*/*.md") if not p.name.endswith(".prompt.md"))
    assert len({p.parent.name for p in prompts}) == result["rounds"]
    assert {a.with_suffix(".prompt.md").name for a in answers} <= {p.name for p in prompts}
    assert all(QUESTION in p.read_text() for p in prompts)
    # the audit chain recorded each file's hash: verify rereads every prompt and answer and finds them unchanged
    report = installed.concord("audit", "verify", result["dialogue_id"])
    assert report["ok"] is True and report["dialogues"][0]["files_checked"] == len(prompts) + len(answers), report


@pytest.mark.slow
def test_pypi_schema_installs_beside_concord_and_leaves_it_whole(installed: Installed, tmp_path: Path) -> None:
    """`pip install schema` then uninstalling it: both import meanwhile, and concord keeps every file it installed."""
    pool = str(installed.packaged("concord.orchestrator", "demo-pool.json"))
    installed.run("pip", "install", "-q", "--no-compile", "schema")
    try:
        assert installed.python("from schema import Schema; print(Schema(int).validate(5))") == "5"
        sdl = installed.concord("schema", "export", "--out", str(tmp_path / "exported.graphql"))
        packaged = installed.packaged("concord.schema", "schema.graphql")
        assert Path(sdl["path"]).read_text() == packaged.read_text()
        result = installed.concord("run", "--question", QUESTION, "--pool", pool, "--panel-size", "3", "--quiet")
        assert result["status"] == "converged"
    finally:
        installed.run("pip", "uninstall", "-q", "-y", "schema")
    missing = installed.python(
        "import importlib.metadata as m; print([str(f) for f in m.files('concord') if not f.locate().exists()])"
    )
    assert missing == "[]"
    assert installed.python("import concord.schema.dialogue, concord.resolvers.app; print('ok')") == "ok"
    assert installed.run("concord", "--help").returncode == 0
