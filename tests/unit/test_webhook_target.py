"""The webhook URL policy: https only, public addresses only, unless the host is in WEBHOOK_ALLOW_HOSTS."""

from __future__ import annotations

import pytest

from services.common.webhook_target import (
    WebhookTargetRefused,
    WebhookTargetSettings,
    resolve_webhook_target,
)

NONE: frozenset[str] = frozenset()


class FakeResolver:
    """A resolver that answers every name with ``addresses`` and records what it was asked."""

    def __init__(self, *addresses: str) -> None:
        self.addresses = list(addresses)
        self.asked: list[tuple[str, int]] = []

    async def __call__(self, host: str, port: int) -> list[str]:
        self.asked.append((host, port))
        return self.addresses


@pytest.mark.parametrize(
    ("url", "why"),
    [
        ("https://127.0.0.1/hook", "loopback"),
        ("https://10.1.2.3/hook", "private"),
        ("https://192.168.0.7:8443/hook", "private"),
        ("https://169.254.169.254/latest/meta-data", "metadata"),
        ("https://169.254.10.1/", "link-local"),
        ("https://[::1]/hook", "loopback"),
        ("https://[::ffff:127.0.0.1]/hook", "loopback"),
        ("https://[::ffff:7f00:1]/hook", "loopback"),
        ("https://0.0.0.0/hook", "unspecified"),
        ("https://[::]/hook", "unspecified"),
        ("https://224.0.0.1/hook", "multicast"),
        ("https://[ff02::1]/hook", "multicast"),
        ("https://[fd00::1]/hook", "private"),
        ("https://[fe80::1]/hook", "link-local"),
        ("https://100.64.0.1/hook", "shared"),
        ("https://[2002:7f00:1::]/hook", "loopback"),
        ("https://[64:ff9b::a01:203]/hook", "private"),
    ],
)
async def test_a_literal_address_that_is_not_public_is_refused(url: str, why: str) -> None:
    with pytest.raises(WebhookTargetRefused, match=why):
        await resolve_webhook_target(url, NONE, FakeResolver("93.184.216.34"))


async def test_a_public_address_over_https_is_accepted_as_given() -> None:
    assert await resolve_webhook_target("https://93.184.216.34/hook", NONE) == ["93.184.216.34"]
    assert await resolve_webhook_target("https://[2606:2800:220:1:248:1893:25c8:1946]:8443/x", NONE) == [
        "2606:2800:220:1:248:1893:25c8:1946"
    ]


@pytest.mark.parametrize(
    ("url", "why"),
    [
        ("http://93.184.216.34/hook", "must be https, not http"),
        ("ftp://93.184.216.34/hook", "must be https, not ftp"),
        ("93.184.216.34/hook", "must be https"),
        ("https:///hook", "no host"),
        ("https://user:pw@93.184.216.34/hook", "credentials"),
        ("https://93.184.216.34:99999/hook", "not a valid URL"),
    ],
)
async def test_a_url_that_is_not_https_to_a_host_is_refused(url: str, why: str) -> None:
    with pytest.raises(WebhookTargetRefused, match=why):
        await resolve_webhook_target(url, NONE)


async def test_a_name_is_checked_by_every_address_it_resolves_to() -> None:
    resolver = FakeResolver("93.184.216.34", "127.0.0.1")
    with pytest.raises(WebhookTargetRefused, match=r"hooks.example resolves to 127.0.0.1, which is a loopback"):
        await resolve_webhook_target("https://Hooks.Example./in", NONE, resolver)
    assert resolver.asked == [("hooks.example", 443)]


async def test_a_name_that_resolves_to_public_addresses_gives_them_in_order_once() -> None:
    resolver = FakeResolver("93.184.216.34", "2606:2800:220:1:248:1893:25c8:1946", "93.184.216.34")
    addresses = await resolve_webhook_target("https://hooks.example:8443/in", NONE, resolver)
    assert addresses == ["93.184.216.34", "2606:2800:220:1:248:1893:25c8:1946"]
    assert resolver.asked == [("hooks.example", 8443)]


async def test_a_name_that_does_not_resolve_is_refused() -> None:
    async def fails(host: str, port: int) -> list[str]:
        raise OSError(-2, "Name or service not known")

    with pytest.raises(WebhookTargetRefused, match="does not resolve"):
        await resolve_webhook_target("https://nowhere.example/in", NONE, fails)
    with pytest.raises(WebhookTargetRefused, match="no address"):
        await resolve_webhook_target("https://nowhere.example/in", NONE, FakeResolver())


async def test_localhost_resolves_through_the_system_resolver_to_a_refused_loopback() -> None:
    with pytest.raises(WebhookTargetRefused, match=r"localhost resolves to .*loopback"):
        await resolve_webhook_target("https://localhost/hook", NONE)


async def test_an_allowed_host_may_use_http_and_any_address() -> None:
    allow = WebhookTargetSettings(webhook_allow_hosts="LocalHost, [::1] 10.1.2.3").webhook_allow_hosts
    assert allow == {"localhost", "::1", "10.1.2.3"}
    assert "127.0.0.1" in await resolve_webhook_target("http://localhost:8080/hook", allow)
    assert await resolve_webhook_target("http://[::1]:8080/hook", allow) == ["::1"]
    assert await resolve_webhook_target("https://10.1.2.3/hook", allow) == ["10.1.2.3"]
    with pytest.raises(WebhookTargetRefused, match="must be https, not ftp"):
        await resolve_webhook_target("ftp://localhost/hook", allow)
    # Allowing one host lets no other in, not even one at the same address.
    with pytest.raises(WebhookTargetRefused, match="loopback"):
        await resolve_webhook_target("https://127.0.0.1/hook", allow)


async def test_http_to_a_host_not_allowed_says_how_to_allow_it() -> None:
    with pytest.raises(WebhookTargetRefused, match="WEBHOOK_ALLOW_HOSTS"):
        await resolve_webhook_target("http://localhost:8080/hook", NONE)
