"""Mutation benchmark: mutmut over the rule modules, with the tests that cover them; killed/total per module.

    .venv/bin/python bench/mutation.py [--only store/rules.py ...] [--all] [--survivors]

mutmut names a mutant by its file's path below `src/` and only activates it when that name equals the
module's import name, so the run happens in a temporary copy laid out as `src/concord/<subpackage>/…`
(the package-dir mapping of pyproject.toml). The tool's settings are `[tool.mutmut]` there; this script
adds what to mutate and which tests to run from TARGETS. Nothing is written into the checkout.
A mutant counts as killed when a test fails or times out on it; every other outcome (survived, no test
reached it) counts against the ratio.
To stay near two minutes, the two big judging modules are sampled: mutmut numbers the mutants of each
function 1, 2, 3, …, and a module with `sample_every=k` tests those numbered 1, 1+k, 1+2k, … (so every
function keeps at least one). The output says how many of how many were tested; `--all` tests every one.
"""

from __future__ import annotations

import argparse
import fnmatch
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import tomllib
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import NoReturn


@dataclass(frozen=True)
class Target:
    """The test files that cover one module, and which share of its mutants to test (1, 2, 5 or 10)."""

    tests: tuple[str, ...]
    sample_every: int = 1


MARKER_TESTS = ("tests/test_markers.py", "tests/test_marker_edges.py")
JUDGE_TESTS = (
    "tests/test_judge.py",
    "tests/test_scoring_terms.py",
    "tests/test_judge_lifecycle.py",
    "tests/test_judge_drafts.py",
    "tests/test_novelty_threshold.py",
)
#: The rules judge and the modules it is made of.
RULES_JUDGE_MODULES = (
    "rules_judge",
    "entity_plan",
    "scoring",
    "tension_lifecycle",
    "new_perspectives",
    "round_summary",
)
#: Each module to mutate (repository path) and the test files that cover it.
TARGETS: dict[str, Target] = {
    "store/crypto/envelope.py": Target(("tests/test_envelope.py", "tests/test_envelope_rules.py")),
    "orchestrator/judging/markers.py": Target(MARKER_TESTS, sample_every=5),
    "orchestrator/judging/written_ids.py": Target(MARKER_TESTS, sample_every=5),
    **{f"orchestrator/judging/{module}.py": Target(JUDGE_TESTS, sample_every=10) for module in RULES_JUDGE_MODULES},
    "store/rules.py": Target(("tests/contract/test_ids_and_rules.py", "tests/test_transitions.py")),
}
TARGET_RATIO = 0.8
KILLED = {"killed", "timeout"}
ROOT = Path(__file__).resolve().parents[1]
MUTMUT = Path(sys.executable).with_name("mutmut")
RESULT_LINE = re.compile(r"^\s*(?P<name>\S+): (?P<status>.+)$")


def package_folders(pyproject: dict) -> dict[str, str]:
    """Subpackage (`store`) -> repository folder, from the build backend's package-dir mapping."""
    mapping = pyproject["tool"]["setuptools"]["package-dir"]
    return {package.removeprefix("concord."): folder for package, folder in mapping.items()}


def mutated_path(target: str, folders: dict[str, str]) -> str:
    """Where a repository path sits in the temporary `src/concord/` layout."""
    folder, _, rest = target.partition("/")
    subpackage = next(sub for sub, path in folders.items() if path == folder)
    return f"src/concord/{subpackage}/{rest}"


def module_name(target: str, folders: dict[str, str]) -> str:
    """The import name of a repository path: store/rules.py -> concord.store.rules."""
    return mutated_path(target, folders).removeprefix("src/").removesuffix(".py").replace("/", ".")


def toml_value(value: object) -> str:
    """A TOML literal for the strings, numbers, booleans and lists mutmut's settings use."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    if isinstance(value, int | float):
        return repr(value)
    return json.dumps(str(value))


def sample_pattern(module: str, every: int) -> str:
    """The mutmut name glob for the sampled mutants of a module: numbers 1, 1+every, 1+2*every, ..."""
    if every not in (1, 2, 5, 10):
        raise ValueError(f"sample_every must be 1, 2, 5 or 10, not {every}")
    digits = "".join(str(d) for d in range(10) if d % every == 1 % every)
    return f"{module}.*__mutmut_*[{digits}]"


def write_workspace(workspace: Path, targets: dict[str, Target]) -> dict[str, str]:
    """Copy the package and tests into `workspace`, write its pyproject.toml; return target -> module name."""
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    folders = package_folders(pyproject)
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    for subpackage, folder in folders.items():
        shutil.copytree(ROOT / folder, workspace / "src" / "concord" / subpackage, ignore=ignore)
    shutil.copytree(ROOT / "tests", workspace / "tests", ignore=ignore)
    shared = ROOT.parent / "shared"
    if shared.is_dir():  # the corpus tests find ../shared/corpus from the copied tests' parent
        (workspace / "shared").symlink_to(shared)
    settings = {
        **pyproject["tool"]["mutmut"],
        "source_paths": ["src"],
        "only_mutate": [mutated_path(t, folders) for t in targets],
        "pytest_add_cli_args_test_selection": sorted({test for target in targets.values() for test in target.tests}),
    }
    pytest_options = pyproject["tool"]["pytest"]["ini_options"]
    lines = ["[tool.pytest.ini_options]", *(f"{k} = {toml_value(v)}" for k, v in pytest_options.items())]
    lines += ["", "[tool.mutmut]", *(f"{k} = {toml_value(v)}" for k, v in settings.items())]
    (workspace / "pyproject.toml").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return {target: module_name(target, folders) for target in targets}


def mutmut(workspace: Path, *args: str) -> str:
    """Run one mutmut command in the workspace; its output, or exit with it on failure."""
    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1"}
    done = subprocess.run([str(MUTMUT), *args], cwd=workspace, env=env, capture_output=True, text=True)
    if done.returncode != 0:
        sys.exit(f"mutmut {' '.join(args)} failed ({done.returncode}):\n{done.stdout[-4000:]}\n{done.stderr[-4000:]}")
    return done.stdout


def statuses(workspace: Path) -> dict[str, str]:
    """Mutant name -> mutmut status, for every mutant generated."""
    results = {}
    for line in mutmut(workspace, "results", "--all", "true").splitlines():
        match = RESULT_LINE.match(line)
        if match:
            results[match["name"]] = match["status"].strip()
    return results


def stop(signum: int, frame: object) -> NoReturn:
    """Exit on SIGTERM so the temporary workspace is removed."""
    sys.exit(f"stopped by signal {signum}")


def main() -> None:
    """Run the mutation benchmark and print per-module and overall kill ratios."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", action="append", choices=sorted(TARGETS), help="mutate only this module")
    parser.add_argument("--all", action="store_true", help="test every mutant, not a sample (several minutes)")
    parser.add_argument("--survivors", action="store_true", help="print the diff of every mutant not killed")
    parser.add_argument("--max-children", type=int, default=2, help="mutants tested in parallel")
    args = parser.parse_args()
    signal.signal(signal.SIGTERM, stop)
    targets = {t: TARGETS[t] for t in (args.only or TARGETS)}
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="concord-mutation-") as tmp:
        workspace = Path(tmp)
        modules = write_workspace(workspace, targets)
        patterns = {t: sample_pattern(modules[t], 1 if args.all else targets[t].sample_every) for t in targets}
        mutmut(workspace, "run", "--max-children", str(args.max_children), *patterns.values())
        results = statuses(workspace)
        killed_total = total_total = generated_total = 0
        for target, module in modules.items():
            generated = [name for name in results if name.startswith(module + ".")]
            mine = {name: results[name] for name in generated if fnmatch.fnmatchcase(name, patterns[target])}
            counts = Counter(mine.values())
            killed = sum(counts[s] for s in KILLED)
            killed_total += killed
            total_total += len(mine)
            generated_total += len(generated)
            others = ", ".join(f"{status} {n}" for status, n in sorted(counts.items()) if status not in KILLED)
            ratio = killed / len(mine) if mine else 0.0
            sampled = f", sampled {len(mine)} of {len(generated)}" if len(mine) < len(generated) else ""
            print(f"{target}: killed {killed}/{len(mine)} = {ratio:.3f}{sampled}" + (f" ({others})" if others else ""))
            if args.survivors:
                for name in sorted(n for n, s in mine.items() if s not in KILLED):
                    print(mutmut(workspace, "show", name))
    ratio = killed_total / total_total if total_total else 0.0
    elapsed = time.monotonic() - started
    print(f"mutmut over {len(modules)} modules: {total_total} of {generated_total} mutants tested in {elapsed:.0f} s")
    print(f"BENCH mutation ratio={ratio:.3f} target=>={TARGET_RATIO} killed={killed_total} total={total_total}")


if __name__ == "__main__":
    main()
