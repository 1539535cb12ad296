"""The ``[alerts]`` config section: webhooks read once at start, each error naming the webhook and the field."""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway.alerts import Backoff, WebhookEndpoint
from gateway.config import load_file
from gateway.exceptions import ConfigError

SECRET = "rcc-shared-secret-0123456789"
GOOD = """
[[alerts.webhooks]]
name = "rcc"
url = "https://rcc.example/cap?token=abc"
secret_env = "SATGW_TEST_RCC_SECRET"
timeout_s = 3
max_attempts = 7
backoff_base_s = 0.5
backoff_cap_s = 60

[[alerts.webhooks]]
name = "ops"
url = "http://10.0.0.5:8080/alerts"
secret = "ops-shared-secret-0123456789"
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "satgw.toml"
    path.write_text(text)
    return path


def one(**fields: object) -> str:
    """A config with one webhook ``rcc`` with ``fields`` over valid defaults (None leaves a field out)."""
    values: dict[str, object] = {"name": "rcc", "url": "https://rcc.example/in", "secret": SECRET} | fields
    lines = [f"{k} = {v!r}".replace("'", '"') for k, v in values.items() if v is not None]
    return "[[alerts.webhooks]]\n" + "\n".join(lines) + "\n"


def test_no_alerts_section_means_no_webhooks() -> None:
    """Without a config file, or without [alerts], no webhook is configured."""
    assert load_file(None).webhooks == ()


def test_webhooks_are_read_with_the_secret_from_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each [[alerts.webhooks]] table becomes an endpoint; secret_env names the variable holding the secret."""
    monkeypatch.setenv("SATGW_TEST_RCC_SECRET", SECRET)
    rcc, ops = load_file(write(tmp_path, GOOD)).webhooks
    assert rcc == WebhookEndpoint(
        name="rcc",
        url="https://rcc.example/cap?token=abc",
        secret=SECRET,
        timeout_s=3.0,
        max_attempts=7,
        backoff=Backoff(base_s=0.5, cap_s=60.0),
    )
    assert (ops.name, ops.secret, ops.timeout_s, ops.max_attempts) == ("ops", "ops-shared-secret-0123456789", 10.0, 20)
    assert SECRET not in repr(load_file(write(tmp_path, GOOD)))


@pytest.mark.parametrize(
    ("text", "match"),
    [
        (one(url="ftp://rcc.example/in"), "alerts.webhooks rcc: url: scheme must be http or https"),
        (one(url="rcc.example/in"), "alerts.webhooks rcc: url: scheme must be http or https"),
        (
            one(secret_env="SATGW_TEST_RCC_SECRET"),
            "alerts.webhooks rcc: secret: give exactly one of secret and secret_env",
        ),
        (one(secret=None), "alerts.webhooks rcc: secret: give exactly one"),
        (
            one(secret=None, secret_env="SATGW_TEST_UNSET_SECRET"),
            "alerts.webhooks rcc: secret_env: environment variable SATGW_TEST_UNSET_SECRET is not set",
        ),
        (one(secret="too-short"), "alerts.webhooks rcc: secret: must be at least 16 characters"),
        (one(timeout_s="fast"), "alerts.webhooks rcc: timeout_s: Input should be a valid number"),
        (one(timeout_s=0), "alerts.webhooks rcc: timeout_s: must be a positive number"),
        (one(max_attempts=0), "alerts.webhooks rcc: max_attempts: must be in 1..1000"),
        (
            one(backoff_base_s=5, backoff_cap_s=1),
            "alerts.webhooks rcc: backoff_cap_s .* must not be below backoff_base_s",
        ),
        (one(retries=3), "alerts.webhooks rcc: retries: Extra inputs are not permitted"),
        (one(name=None), "alerts.webhooks #1: name: Field required"),
        (one(name="r c c"), "alerts.webhooks r c c: name: must be"),
        (one() + one(), r"alerts.webhooks: names must be unique, got \['rcc', 'rcc'\]"),
        ("[alerts]\nwebhook = []\n", "alerts.webhook: Extra inputs are not permitted"),
    ],
    ids=[
        "ftp-url",
        "no-scheme",
        "both-secrets",
        "no-secret",
        "unset-env",
        "short-secret",
        "timeout-type",
        "zero-timeout",
        "zero-attempts",
        "cap-below-base",
        "unknown-key",
        "no-name",
        "bad-name",
        "duplicate-names",
        "misspelt-table",
    ],
)
def test_bad_webhooks_are_refused_naming_entry_and_field(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, text: str, match: str
) -> None:
    """A bad webhook stops start-up with a ConfigError naming the webhook and the field, never quoting a secret."""
    monkeypatch.setenv("SATGW_TEST_RCC_SECRET", SECRET)
    monkeypatch.delenv("SATGW_TEST_UNSET_SECRET", raising=False)
    with pytest.raises(ConfigError, match=match) as caught:
        load_file(write(tmp_path, text))
    assert SECRET not in str(caught.value)
    assert "too-short" not in str(caught.value)
