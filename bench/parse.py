"""Marker parsing of every corpus answer and the import of each corpus dialogue, vs reading the same files."""

from __future__ import annotations

import asyncio
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.timing import best_of  # noqa: E402
from concord.orchestrator.blue.importer import import_dialogue  # noqa: E402
from concord.orchestrator.blue.layout import read_dialogue_dir  # noqa: E402
from concord.orchestrator.judging.markers import parse_answer  # noqa: E402
from concord.store.backends.sqlite import SQLiteBackend  # noqa: E402
from concord.store.crypto.keys import LocalKeyProvider  # noqa: E402
from concord.store.dialogue_store import DialogueStore  # noqa: E402

CORPUS = Path(__file__).resolve().parents[2] / "shared" / "corpus"
REPEATS = 5
# Import is bound by the store, not by parsing: each prompt and answer is one sealed, audited
# SQLite transaction (about 3 ms committed on this machine) and each round reloads the partition,
# while the baseline reads page-cached bytes at about 15 µs a file. That puts the floor near 300x;
# 1000x leaves room for a slower disk, yet anything quadratic in the judge or parser (jira has 36
# long answers) would cost seconds and cross it. Parsing alone is printed too (about 10x reading).
TARGET = 1000


def files_of(directory: Path) -> list[Path]:
    """Every file of a dialogue directory."""
    return sorted(p for p in directory.rglob("*") if p.is_file())


def answer_files(directory: Path) -> list[Path]:
    """The expert answers of a dialogue directory, as import reads them."""
    dialogue = read_dialogue_dir(directory)
    return [r.path / f"{slug}.md" for r in dialogue.rounds for slug in sorted(r.answers)]


async def time_import(directory: Path) -> float:
    """Seconds to import one dialogue into a fresh SQLite store."""
    with tempfile.TemporaryDirectory() as tmp:
        key_file = Path(tmp) / "umk.key"
        LocalKeyProvider.create_key_file(key_file)
        backend = await SQLiteBackend(Path(tmp) / "concord.db").open()
        try:
            store = DialogueStore(backend, LocalKeyProvider(key_file), principal="bench")
            started = time.perf_counter()
            await import_dialogue(store, directory)
            return time.perf_counter() - started
        finally:
            await backend.close()


def main() -> None:
    if not CORPUS.is_dir():
        print(f"corpus not found at {CORPUS}; nothing to measure")
        print(f"BENCH parse ratio=nan target=<={TARGET} skipped=corpus-missing")
        return
    dialogues = sorted(p for p in CORPUS.iterdir() if p.is_dir())
    answers = [f for d in dialogues for f in answer_files(d)]
    texts = {f: f.read_text(encoding="utf-8") for f in answers}
    print(f"{'file':<70} {'bytes':>7} {'parse ms':>9}")
    parse_total = 0.0
    for path, text in texts.items():
        seconds = best_of(lambda text=text: parse_answer(text))
        parse_total += seconds
        print(f"{str(path.relative_to(CORPUS))[-70:]:<70} {len(text.encode()):>7} {seconds * 1000:>9.3f}")
    read_answers = best_of(lambda: [f.read_bytes() for f in answers])
    print(
        f"\nparse all {len(answers)} answers   {parse_total * 1000:9.2f} ms   read them {read_answers * 1000:7.2f} ms"
        f"   ratio {parse_total / read_answers:.1f}"
    )
    print(f"\n{'dialogue':<70} {'files':>5} {'import ms':>10} {'read ms':>8} {'ratio':>7}")
    import_total = read_total = 0.0
    for directory in dialogues:
        files = files_of(directory)
        seconds = min(asyncio.run(time_import(directory)) for _ in range(3))
        read = best_of(lambda files=files: [f.read_bytes() for f in files])
        import_total += seconds
        read_total += read
        print(
            f"{directory.name[-70:]:<70} {len(files):>5} {seconds * 1000:>10.1f} {read * 1000:>8.2f} {seconds / read:>7.1f}"
        )
    ratio = (parse_total + import_total) / (read_answers + read_total)
    print(
        f"BENCH parse ratio={ratio:.1f} target=<={TARGET} parse_only_ratio={parse_total / read_answers:.1f} "
        f"parse_ms={parse_total * 1000:.2f} "
        f"import_ms={import_total * 1000:.1f} read_ms={(read_answers + read_total) * 1000:.2f}"
    )


if __name__ == "__main__":
    main()
