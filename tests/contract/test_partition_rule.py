"""Check 25: DialogueStore methods are partition-scoped; only AnalyticsStore crosses partitions."""

from __future__ import annotations

import inspect

from concord.store.analytics import AnalyticsStore
from concord.store.dialogue_store import DialogueStore


def public_methods(cls: type) -> dict[str, inspect.Signature]:
    return {
        name: inspect.signature(member)
        for name, member in inspect.getmembers(cls, inspect.isfunction)
        if not name.startswith("_")
    }


def test_every_dialogue_store_method_takes_dialogue_id_first() -> None:
    methods = public_methods(DialogueStore)
    assert len(methods) > 20
    for name, signature in methods.items():
        params = [p for p in signature.parameters if p != "self"]
        if name == "create_dialogue":
            assert "dialogue_id" not in params[:1]
            continue
        assert params and params[0] == "dialogue_id", f"DialogueStore.{name} must take dialogue_id first"


def test_cross_partition_reads_live_only_on_analytics_store() -> None:
    analytics = public_methods(AnalyticsStore)
    assert {"list_dialogues", "open_tensions", "expert_participation", "chain_heads"} <= set(analytics)
    for name, signature in analytics.items():
        assert "dialogue_id" not in signature.parameters, f"AnalyticsStore.{name} crosses partitions by design"
    assert not set(analytics) & set(public_methods(DialogueStore))
