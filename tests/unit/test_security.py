"""API keys and rate limits at the ASGI level (the HTTP test checks the same guard inside a real server)."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest

from api.security import AccessGuard, TokenBucket, digest, load_key_digests, presented_key
from sentiment.settings import SecuritySettings


async def _ok(scope: dict[str, Any], receive: Any, send: Any) -> None:
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"{}"})


def _call(
    guard: AccessGuard,
    path: str = "/predict",
    headers: list[tuple[bytes, bytes]] | None = None,
    client: str = "10.0.0.1",
) -> tuple[int, dict[bytes, bytes], dict[str, Any]]:
    sent: list[dict[str, Any]] = []

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {"type": "http", "path": path, "method": "POST", "headers": headers or [], "client": (client, 5000)}
    asyncio.run(guard(scope, None, send))
    body = json.loads(sent[1]["body"]) if len(sent) > 1 else {}
    return sent[0]["status"], dict(sent[0]["headers"]), body


def test_keys_are_stored_as_digests_from_settings_and_a_secret_file(tmp_path: Path) -> None:
    secret = tmp_path / "keys"
    secret.write_text(f"# rotated 2026-12\nfile-key\nsha256:{digest('prehashed').upper()}\n\n")
    digests = load_key_digests(SecuritySettings(api_keys=["env-key"], api_keys_file=secret))
    assert digests == {digest("env-key"), digest("file-key"), digest("prehashed")}
    assert "env-key" not in "".join(digests)


def test_only_a_valid_key_passes_on_protected_paths() -> None:
    guard = AccessGuard(_ok, SecuritySettings(api_keys=["k-123"]))
    assert _call(guard)[0] == 401
    status, headers, body = _call(guard, headers=[(b"authorization", b"Bearer nope")])
    assert status == 401 and b"www-authenticate" in headers and "API key" in body["error"]
    assert _call(guard, headers=[(b"authorization", b"Bearer k-123")])[0] == 200
    assert _call(guard, headers=[(b"x-api-key", b"k-123")])[0] == 200
    assert _call(guard, path="/health")[0] == 200 and _call(guard, path="/metrics")[0] == 200


def test_without_keys_or_rate_everything_passes() -> None:
    guard = AccessGuard(_ok, SecuritySettings())
    assert all(_call(guard)[0] == 200 for _ in range(50))


def test_rate_limit_is_per_key_with_retry_after() -> None:
    guard = AccessGuard(_ok, SecuritySettings(api_keys=["a", "b"], rate_limit_per_s=0.5, rate_limit_burst=3))
    a, b = [(b"x-api-key", b"a")], [(b"x-api-key", b"b")]
    assert [_call(guard, headers=a)[0] for _ in range(4)] == [200, 200, 200, 429]
    status, headers, body = _call(guard, headers=a)
    assert status == 429 and int(headers[b"retry-after"]) >= 1 and "rate limit" in body["error"]
    assert _call(guard, headers=b)[0] == 200  # another key has its own bucket


def test_without_keys_the_rate_limit_is_per_client_address() -> None:
    guard = AccessGuard(_ok, SecuritySettings(rate_limit_per_s=0.5, rate_limit_burst=1))
    assert [_call(guard, client="10.0.0.1")[0] for _ in range(2)] == [200, 429]
    assert _call(guard, client="10.0.0.2")[0] == 200


def test_token_bucket_refills_at_its_rate(monkeypatch: pytest.MonkeyPatch) -> None:
    now = [100.0]
    monkeypatch.setattr("api.security.time.monotonic", lambda: now[0])
    bucket = TokenBucket(rate=2.0, burst=2)
    assert bucket.take() == 0 and bucket.take() == 0
    assert bucket.take() == pytest.approx(0.5)
    now[0] += 0.5
    assert bucket.take() == 0


@pytest.mark.parametrize(
    ("headers", "key"),
    [
        ([(b"authorization", b"Bearer  abc ")], "abc"),
        ([(b"authorization", b"Basic abc")], None),
        ([(b"x-api-key", b"xyz")], "xyz"),
        ([], None),
    ],
)
def test_presented_key(headers: list[tuple[bytes, bytes]], key: str | None) -> None:
    assert presented_key(headers) == key


def test_blank_text_is_what_the_documented_pattern_excludes() -> None:
    from api.schemas import NOT_BLANK, _not_blank

    for blank in ("\x1c", "\x1f", "\x85", "\ufeff", "\xa0", "\u2028", " \t\n", "\u3000\ufeff "):
        with pytest.raises(ValueError):
            _not_blank(blank)
    assert _not_blank(" ok ") == " ok "
    assert NOT_BLANK == r"[^\s\x1c-\x1f\x85]"  # ECMA \s has \ufeff and lacks \x1c-\x1f, \x85: the same set
