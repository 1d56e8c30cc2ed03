"""Which webhook URLs the relay may call (SSRF guard)."""

from __future__ import annotations

import pytest

from orderhub.adapters.webhook_targets import WebhookTargetGuard

PUBLIC = {"hooks.example.com": ["93.184.216.34"], "mixed.example.com": ["93.184.216.34", "10.0.0.5"],
          "v6.example.com": ["2606:2800:220:1:248:1893:25c8:1946"]}


def fake_resolver(host: str, _port: int) -> list[str]:
    if host in PUBLIC:
        return PUBLIC[host]
    try:
        return [str(__import__("ipaddress").ip_address(host.strip("[]")))]
    except ValueError as exc:
        raise OSError("no such host") from exc


@pytest.mark.parametrize("url", [
    "http://127.0.0.1:8080/hook", "http://10.1.2.3/x", "http://192.168.1.10/x", "http://172.16.0.1/x",
    "http://169.254.169.254/latest/meta-data", "http://[::1]:9000/", "http://0.0.0.0/", "http://224.0.0.1/",
    "https://mixed.example.com/hook",
])
def test_internal_targets_are_refused(url: str) -> None:
    problem = WebhookTargetGuard(allow_private=False, resolver=fake_resolver).problem(url)
    assert problem is not None and "internal address" in problem and "ORDERHUB_WEBHOOKS_ALLOW_PRIVATE" in problem


@pytest.mark.parametrize("url", ["https://hooks.example.com/orderhub", "http://v6.example.com:8080/x"])
def test_public_targets_are_allowed(url: str) -> None:
    assert WebhookTargetGuard(allow_private=False, resolver=fake_resolver).problem(url) is None


def test_unresolvable_and_non_http_urls_are_refused() -> None:
    guard = WebhookTargetGuard(allow_private=False, resolver=fake_resolver)
    assert "does not resolve" in (guard.problem("https://nowhere.invalid/x") or "")
    assert "not an http(s) URL" in (guard.problem("ftp://hooks.example.com/x") or "")
    assert "not an http(s) URL" in (guard.problem("https:///nohost") or "")


def test_the_operator_can_allow_internal_targets() -> None:
    guard = WebhookTargetGuard(allow_private=True, resolver=fake_resolver)
    assert guard.problem("http://127.0.0.1:8080/hook") is None
    assert guard.problem("ftp://127.0.0.1/x") is not None
