"""Settings: the one reader of the environment, and the variables that give a child process the same settings."""

from __future__ import annotations

from pathlib import Path

import pytest

from concord.store.config import Settings
from concord.store.errors import BadInput

EVERYTHING = {
    "CONCORD_HOME": "/srv/concord",
    "CONCORD_TENANT": "acme",
    "CONCORD_KEK_EPOCH": "3",
    "CONCORD_STORE": "dynamodb",
    "CONCORD_TABLE": "dialogues_prod",
    "CONCORD_KEY_PROVIDER": "kms",
    "CONCORD_KMS_KEY_ID": "alias/concord",
    "CONCORD_KMS_MAC_KEY_ID": "alias/concord-mac",
    "CONCORD_API_PROVIDER": "anthropic",
    "ANTHROPIC_API_KEY": "sk-test-secret",
    "ANTHROPIC_BASE_URL": "http://127.0.0.1:9",
    "AWS_REGION": "eu-west-1",
    "AWS_ENDPOINT_URL_DYNAMODB": "http://127.0.0.1:8100",
}


def test_every_variable_is_read() -> None:
    settings = Settings.from_env(EVERYTHING)
    assert settings == Settings(
        home=Path("/srv/concord"),
        tenant="acme",
        epoch=3,
        store="dynamodb",
        table="dialogues_prod",
        key_provider="kms",
        kms_key_id="alias/concord",
        kms_mac_key_id="alias/concord-mac",
        api_provider="anthropic",
        anthropic_api_key="sk-test-secret",
        anthropic_base_url="http://127.0.0.1:9",
        aws_region="eu-west-1",
        dynamodb_endpoint="http://127.0.0.1:8100",
    )


def test_defaults_are_the_embedded_ones() -> None:
    settings = Settings.from_env({"CONCORD_HOME": "/h"})
    assert settings == Settings(home=Path("/h"))
    assert (settings.store, settings.key_provider, settings.api_provider, settings.epoch) == (
        "sqlite",
        "local",
        "sim",
        1,
    )


@pytest.mark.parametrize("environ", [EVERYTHING, {"CONCORD_HOME": "/h"}])
def test_environment_gives_a_child_process_the_same_settings(environ: dict[str, str]) -> None:
    settings = Settings.from_env(environ)
    assert Settings.from_env(settings.environment()) == settings


def test_the_api_key_stays_out_of_the_repr() -> None:
    assert "sk-test-secret" not in repr(Settings.from_env(EVERYTHING))


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("CONCORD_STORE", "postgres"),
        ("CONCORD_KEY_PROVIDER", "vault"),
        ("CONCORD_API_PROVIDER", "replay"),
        ("CONCORD_KEK_EPOCH", "two"),
        ("CONCORD_KEK_EPOCH", "0"),
        ("CONCORD_KEK_EPOCH", "-1"),
    ],
)
def test_a_wrong_value_is_bad_input_naming_the_variable(name: str, value: str) -> None:
    with pytest.raises(BadInput, match=f"^{name} must be .*{value!r}"):
        Settings.from_env({"CONCORD_HOME": "/h", name: value})


def test_the_general_aws_endpoint_serves_dynamodb_when_no_dynamodb_endpoint_is_set() -> None:
    settings = Settings.from_env({"CONCORD_HOME": "/h", "AWS_ENDPOINT_URL": "http://127.0.0.1:4566"})
    assert settings.dynamodb_endpoint == "http://127.0.0.1:4566"
