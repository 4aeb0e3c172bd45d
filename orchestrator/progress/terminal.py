"""Live terminal progress of a run: one line per expert per round, and each round's figures."""

from __future__ import annotations

from rich.console import Console
from rich.table import Table

from concord.orchestrator.progress.bus import ProgressBus, ProgressEvent

STATE_STYLE = {"waiting": "dim", "asked": "cyan", "answered": "green", "repaired": "yellow", "absent": "red"}


class ProgressView:
    """Prints a table per round as it closes, and a line per expert event as it happens."""

    def __init__(self, console: Console | None = None) -> None:
        self.console = console or Console(stderr=True)
        self.states: dict[str, str] = {}
        self.simulated = False

    async def follow(self, bus: ProgressBus, dialogue_id: str) -> None:
        """Render every event of one dialogue until its stream ends."""
        async for event in bus.subscribe(dialogue_id):
            self.show(event)

    def show(self, event: ProgressEvent) -> None:
        """Render one event."""
        label = f"round {event.round}" if event.round is not None else ""
        if event.kind == "dialogue_started":
            self.simulated = bool(event.data.get("simulated"))
            note = " [yellow](simulated panel)[/]" if self.simulated else ""
            self.console.print(f"[bold]dialogue {event.dialogue_id}[/]{note} -> {event.data.get('directory')}")
        elif event.kind == "round_started":
            self.states = {name.lower(): "waiting" for name in event.data.get("panel", [])}
            self.console.rule(f"{label}: {len(self.states)} experts")
        elif event.kind == "prompt_sent" and event.expert:
            self._set(event, "asked", "repair prompt" if event.data.get("repair") else "prompt sent")
        elif event.kind == "expert_answered" and event.expert:
            self._set(event, "answered", f"{event.data.get('tokens', 0)} tokens")
        elif event.kind == "expert_repaired" and event.expert:
            self._set(event, "repaired", f"after one repair, {event.data.get('tokens', 0)} tokens")
        elif event.kind == "expert_absent" and event.expert:
            self._set(event, "absent", str(event.data.get("reason", "")))
        elif event.kind == "round_closed":
            self._round_table(event)
        elif event.kind == "verdict":
            forced = event.data.get("forced")
            text = f"[red]FORCED verdict[/]: {event.data.get('warning')}" if forced else "[green]converged[/]"
            self.console.print(f"{label}: {text}")
        elif event.kind in ("dialogue_stopped", "dialogue_failed"):
            self.console.print(f"[red]{event.kind.replace('_', ' ')}[/]: {event.data.get('reason', '')}")

    def _set(self, event: ProgressEvent, state: str, detail: str) -> None:
        self.states[event.expert or ""] = state
        style = STATE_STYLE[state]
        self.console.print(f"  round {event.round} [{style}]{state:>9}[/] {event.expert} {detail}".rstrip())

    def _round_table(self, event: ProgressEvent) -> None:
        table = Table(title=f"round {event.round} closed", show_header=True)
        table.add_column("expert")
        table.add_column("state")
        for name, state in sorted(self.states.items()):
            table.add_row(name, f"[{STATE_STYLE[state]}]{state}[/]")
        self.console.print(table)
        self.console.print(
            f"  velocity {event.data.get('velocity')}  converge {event.data.get('converge_percent', 0):.0f}%"
        )
