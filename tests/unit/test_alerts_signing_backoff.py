"""Webhook signatures (what receivers verify), the retry schedule, Retry-After, and the alert and endpoint values."""

from __future__ import annotations

import hashlib
import hmac
from datetime import UTC, datetime
from email.utils import format_datetime

import pytest

from gateway.alerts import Backoff, OutgoingAlert, WebhookEndpoint, parse_retry_after, sign, verify
from gateway.alerts.endpoints import RETRY_AFTER_MAX_S

SECRET = "whsec-0123456789abcdef"
BODY = b'<alert xmlns="urn:oasis:names:tc:emergency:cap:1.2"><identifier>x</identifier></alert>'
NOW = 1_767_225_600.0


class TestSigning:
    def test_signature_is_hmac_sha256_of_timestamp_dot_body(self) -> None:
        """The header is "sha256=" + hex HMAC-SHA256 of "<timestamp>.<body>" keyed by the secret, as documented."""
        expected = hmac.new(SECRET.encode(), b"1767225600." + BODY, hashlib.sha256).hexdigest()
        assert sign(SECRET, 1_767_225_600, BODY) == f"sha256={expected}"

    def test_a_fresh_signature_verifies(self) -> None:
        """A request signed now with the shared secret verifies."""
        signature = sign(SECRET, int(NOW), BODY)
        assert verify(SECRET, timestamp=str(int(NOW)), signature=signature, body=BODY, now=NOW + 5)

    @pytest.mark.parametrize(
        ("secret", "timestamp", "body"),
        [
            ("another-secret-0123456", str(int(NOW)), BODY),
            (SECRET, str(int(NOW)), BODY + b" "),
            (SECRET, str(int(NOW) + 1), BODY),
        ],
        ids=["wrong-secret", "changed-body", "changed-timestamp"],
    )
    def test_anything_changed_fails(self, secret: str, timestamp: str, body: bytes) -> None:
        """Another secret, a body changed by one byte or a moved timestamp does not verify."""
        signature = sign(SECRET, int(NOW), BODY)
        assert not verify(secret, timestamp=timestamp, signature=signature, body=body, now=NOW)

    @pytest.mark.parametrize("age", [301.0, -301.0, 86_400.0])
    def test_a_replay_outside_the_tolerance_fails(self, age: float) -> None:
        """A correctly signed request whose timestamp is over five minutes from the receiver's clock is refused."""
        signature = sign(SECRET, int(NOW), BODY)
        assert not verify(SECRET, timestamp=str(int(NOW)), signature=signature, body=BODY, now=NOW + age)

    @pytest.mark.parametrize(
        ("timestamp", "signature"),
        [
            ("", "sha256=00"),
            ("12.5", "sha256=00"),
            ("-5", "sha256=00"),
            ("١٢٣", "sha256=00"),
            ("1767225600", "zz\u00e9"),
        ],
    )
    def test_malformed_headers_fail_without_raising(self, timestamp: str, signature: str) -> None:
        """Empty, fractional, negative or non-ASCII timestamps and junk signatures are refused, not crashed on."""
        assert not verify(SECRET, timestamp=timestamp, signature=signature, body=BODY, now=NOW)


class TestBackoff:
    def test_schedule_doubles_up_to_the_cap(self) -> None:
        """With no jitter drawn the waits are half of base·2^(n-1), capped; with the most drawn, the whole ceiling."""
        backoff = Backoff(base_s=1.0, cap_s=10.0)
        assert [backoff.delay(n, random=lambda: 0.0) for n in range(1, 7)] == [0.5, 1.0, 2.0, 4.0, 5.0, 5.0]
        assert [backoff.delay(n, random=lambda: 1.0) for n in range(1, 7)] == [1.0, 2.0, 4.0, 8.0, 10.0, 10.0]

    def test_jitter_spreads_within_the_upper_half(self) -> None:
        """The random draw places a wait linearly between half the ceiling and the ceiling."""
        assert Backoff(base_s=2.0, cap_s=60.0).delay(3, random=lambda: 0.25) == pytest.approx(5.0)

    def test_a_huge_attempt_number_stays_at_the_cap(self) -> None:
        """The exponent is bounded, so attempt 10,000 neither overflows nor exceeds the cap."""
        assert Backoff(base_s=0.5, cap_s=300.0).delay(10_000, random=lambda: 0.999) < 300.0

    def test_retry_after_is_a_floor_with_a_ceiling(self) -> None:
        """Retry-After lengthens a shorter wait, never shortens one, and is honoured up to an hour."""
        backoff = Backoff(base_s=1.0, cap_s=10.0)
        assert backoff.delay(1, random=lambda: 0.0, retry_after=30.0) == 30.0
        assert backoff.delay(5, random=lambda: 1.0, retry_after=2.0) == 10.0
        assert backoff.delay(1, random=lambda: 0.0, retry_after=1e9) == RETRY_AFTER_MAX_S

    @pytest.mark.parametrize(("base", "cap"), [(0.0, 1.0), (-1.0, 1.0), (2.0, 1.0), (1.0, float("inf"))])
    def test_bad_settings_are_refused_by_name(self, base: float, cap: float) -> None:
        """A zero, negative or infinite value, or a cap below the base, is refused naming the setting."""
        with pytest.raises(ValueError, match="backoff_"):
            Backoff(base_s=base, cap_s=cap)


class TestRetryAfter:
    def test_delta_seconds(self) -> None:
        """A number of seconds is read as such."""
        assert parse_retry_after(" 120 ", now=NOW) == 120.0

    def test_http_date(self) -> None:
        """An HTTP date is the time left until it, and zero once it has passed."""
        when = format_datetime(datetime.fromtimestamp(NOW + 90, UTC), usegmt=True)
        assert parse_retry_after(when, now=NOW) == pytest.approx(90.0)
        assert parse_retry_after(when, now=NOW + 1000) == 0.0

    @pytest.mark.parametrize("value", [None, "", "soon", "-5", "1.5", "Wed, 99 Foo 2026"])
    def test_unreadable_is_ignored(self, value: str | None) -> None:
        """A missing or unreadable header asks for nothing."""
        assert parse_retry_after(value, now=NOW) is None


class TestValues:
    @pytest.mark.parametrize(
        ("field", "value", "match"),
        [
            ("key", "two words", "key"),
            ("key", "urn:x\r\nX-Evil: 1", "key"),
            ("kind", "", "kind"),
            ("body", b"", "body"),
            ("body", b"x" * ((1 << 20) + 1), "body"),
            ("content_type", "text/xml\n", "content_type"),
        ],
    )
    def test_an_alert_that_cannot_travel_in_http_is_refused(self, field: str, value: object, match: str) -> None:
        """Keys and kinds go into headers, so spaces and line breaks are refused; a body is 1 byte to 1 MiB."""
        values: dict[str, object] = {"key": "urn:satgw:1", "kind": "Alert", "body": b"<alert/>"} | {field: value}
        with pytest.raises(ValueError, match=match):
            OutgoingAlert(**values)  # type: ignore[arg-type]

    def test_endpoint_repr_hides_secret_and_url(self) -> None:
        """Neither the secret nor the URL (it may carry a token) appears in an endpoint's repr; its origin is safe."""
        hook = WebhookEndpoint(name="rcc", url="https://user:pw@rcc.example:8443/in?token=abc", secret=SECRET)
        assert SECRET not in repr(hook)
        assert "token" not in repr(hook)
        assert "pw" not in repr(hook)
        assert hook.origin == "https://rcc.example:8443"

    @pytest.mark.parametrize(
        ("changes", "match"),
        [
            ({"url": "ftp://rcc.example/x"}, "url: scheme must be http or https"),
            ({"url": "https:///path"}, "url: has no host"),
            ({"url": "http://rcc.example:99999/"}, "url: not a valid URL"),
            ({"name": "has space"}, "name:"),
            ({"secret": "short"}, "secret: must be at least 16"),
            ({"timeout_s": 0}, "timeout_s"),
            ({"max_attempts": 0}, "max_attempts"),
        ],
    )
    def test_bad_endpoints_are_refused_by_field(self, changes: dict[str, object], match: str) -> None:
        """Each bad setting is refused with a message starting with its field name; the secret is never quoted."""
        values: dict[str, object] = {"name": "rcc", "url": "https://rcc.example/in", "secret": SECRET} | changes
        with pytest.raises(ValueError, match=match) as caught:
            WebhookEndpoint(**values)  # type: ignore[arg-type]
        assert str(values["secret"]) not in str(caught.value)
