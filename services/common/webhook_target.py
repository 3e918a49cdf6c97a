"""The webhook URL policy (no SSRF): which URLs a saved search's webhook may be sent to, and where.

A webhook URL must be ``https`` and every address its host resolves to must be public: loopback,
private, shared (carrier NAT), link-local (the cloud metadata address 169.254.169.254 among them),
multicast, unspecified and reserved addresses are refused, IPv4 addresses carried inside IPv6
ones (``::ffff:127.0.0.1``, 6to4, Teredo, NAT64) as the IPv4 address they carry. A host listed in
WEBHOOK_ALLOW_HOSTS is exempt from both rules (``http`` allowed, any address): how tests and an
operator's internal receivers are let in.

The API checks a URL when a saved search is saved; the notifier checks it again before every
delivery and connects to one of the addresses returned, so a DNS answer that changes between the
check and the connection cannot reach an address the check refused.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Awaitable, Callable
from typing import Annotated
from urllib.parse import urlsplit

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from services.common.settings import split_list

IpAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
# Names a host to the addresses it has; the notifier and the API use the system's resolver, unit
# tests inject their own answers.
Resolver = Callable[[str, int], Awaitable[list[str]]]

RESOLVE_TIMEOUT_SECONDS = 5.0
METADATA_ADDRESSES = frozenset({ipaddress.ip_address("169.254.169.254"), ipaddress.ip_address("fd00:ec2::254")})
_NAT64 = ipaddress.ip_network("64:ff9b::/96")
_SHARED = ipaddress.ip_network("100.64.0.0/10")


class WebhookTargetRefused(ValueError):
    """The URL may not receive webhooks; the message says why (scheme, address class, no address)."""


class WebhookTargetSettings(BaseSettings):
    """WEBHOOK_ALLOW_HOSTS: read by the API (at save time) and by the notifier (at every delivery)."""

    model_config = SettingsConfigDict(env_prefix="", case_sensitive=False, extra="ignore")

    # Host names or IP addresses, comma- or whitespace-separated, whose webhook URLs skip the
    # https and public-address rules.
    webhook_allow_hosts: Annotated[frozenset[str], NoDecode] = Field(default_factory=frozenset)

    @field_validator("webhook_allow_hosts", mode="before")
    @classmethod
    def _split_hosts(cls, value: object) -> frozenset[str]:
        if isinstance(value, set | frozenset):
            value = sorted(value)
        return frozenset(normalize_host(host) for host in split_list(value, r"[,\s]+"))


def normalize_host(host: str) -> str:
    """The spelling hosts are compared in: lower case, no brackets or final dot, IPs compressed."""
    host = host.strip().lower().removeprefix("[").removesuffix("]").rstrip(".")
    try:
        return ipaddress.ip_address(host).compressed
    except ValueError:
        return host


def _embedded_ipv4(address: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 one carries to an IPv4 host, if it is one of those forms."""
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address.sixtofour is not None:
        return address.sixtofour
    if address.teredo is not None:
        return address.teredo[1]
    if address in _NAT64:
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return None


def address_problem(address: IpAddress) -> str | None:
    """Why ``address`` may not receive a webhook (a phrase), or None for a public address."""
    if isinstance(address, ipaddress.IPv6Address):
        if address.scope_id is not None:
            return "a scoped (link-local) address"
        carried = _embedded_ipv4(address)
        if carried is not None:
            problem = address_problem(carried)
            return None if problem is None else f"{problem} (carried in the IPv6 address)"
    if address in METADATA_ADDRESSES:
        return "the cloud metadata address"
    checks = (
        (address.is_unspecified, "the unspecified address"),
        (address.is_loopback, "a loopback address"),
        (address.is_link_local, "a link-local address"),
        (address.is_multicast, "a multicast address"),
        (isinstance(address, ipaddress.IPv4Address) and address in _SHARED, "a shared (carrier NAT) address"),
        (address.is_private, "a private address"),
        (address.is_reserved, "a reserved address"),
    )
    for refused, phrase in checks:
        if refused:
            return phrase
    if not address.is_global:
        return "not a public address"
    return None


async def system_resolver(host: str, port: int) -> list[str]:
    """The system resolver's addresses of ``host`` (getaddrinfo, like aiohttp's own resolver)."""
    loop = asyncio.get_running_loop()
    async with asyncio.timeout(RESOLVE_TIMEOUT_SECONDS):
        infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP)
    return [str(info[4][0]) for info in infos]


def _target(url: str, allow_hosts: frozenset[str]) -> tuple[str, int, bool]:
    """The URL's host (normalised), port and whether the host is allowed; refused if not https."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise WebhookTargetRefused(f"is not a valid URL ({exc})") from None
    scheme = parts.scheme.lower()
    if scheme not in ("https", "http"):
        raise WebhookTargetRefused(f"must be https, not {scheme or 'no scheme'}")
    if not parts.hostname:
        raise WebhookTargetRefused("has no host")
    if parts.username is not None or parts.password is not None:
        raise WebhookTargetRefused("must not carry credentials (user:password@)")
    host = normalize_host(parts.hostname)
    allowed = host in allow_hosts
    if scheme == "http" and not allowed:
        raise WebhookTargetRefused("must be https, not http (http only for a host in WEBHOOK_ALLOW_HOSTS)")
    return host, port if port is not None else (443 if scheme == "https" else 80), allowed


async def _addresses(host: str, port: int, resolver: Resolver) -> list[str]:
    """The host itself if it is an address, else what it resolves to (in order, no duplicates)."""
    try:
        return [ipaddress.ip_address(host).compressed]
    except ValueError:
        pass
    try:
        answers = await resolver(host, port)
    except (OSError, TimeoutError, UnicodeError) as exc:
        raise WebhookTargetRefused(f"its host {host} does not resolve ({type(exc).__name__}: {exc})") from None
    addresses = list(dict.fromkeys(normalize_host(a) for a in answers))
    if not addresses:
        raise WebhookTargetRefused(f"its host {host} resolves to no address")
    return addresses


async def resolve_webhook_target(
    url: str, allow_hosts: frozenset[str], resolver: Resolver = system_resolver
) -> list[str]:
    """The addresses ``url`` may be delivered to (at least one, in the resolver's order, no duplicates).

    Raises WebhookTargetRefused when the URL is not https (and its host not allowed), cannot be
    parsed, has no host, its host does not resolve, or any address it resolves to is not public
    (and its host not allowed). ``allow_hosts`` holds hosts as ``normalize_host`` spells them.
    """
    host, port, allowed = _target(url, allow_hosts)
    addresses = await _addresses(host, port, resolver)
    if allowed:
        return addresses
    for text in addresses:
        try:
            address = ipaddress.ip_address(text)
        except ValueError:
            raise WebhookTargetRefused(f"its host {host} resolves to {text!r}, not an IP address") from None
        problem = address_problem(address)
        if problem is not None:
            where = "is" if text == host else f"resolves to {text}, which is"
            raise WebhookTargetRefused(
                f"its host {host} {where} {problem}; only public addresses receive webhooks "
                "(list the host in WEBHOOK_ALLOW_HOSTS to allow it)"
            )
    return addresses
