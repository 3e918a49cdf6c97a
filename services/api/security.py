"""Security headers: what every answer carries, and the Content-Security-Policy of the HTML pages."""

from __future__ import annotations

from aiohttp import web

SECURITY_HEADERS = {"X-Content-Type-Options": "nosniff", "Referrer-Policy": "no-referrer"}


def content_security_policy(*, img_src: str) -> str:
    """A page that runs only this server's scripts and styles (no inline script, no eval, no other
    origin; styles set through the DOM are allowed by any CSP) and shows images from ``img_src``."""
    return "; ".join(
        [
            "default-src 'self'",
            "script-src 'self'",
            "style-src 'self'",
            f"img-src {img_src}",
            "connect-src 'self'",
            "font-src 'self'",
            "object-src 'none'",
            "base-uri 'none'",
            "form-action 'self'",
            "frame-ancestors 'none'",
        ]
    )


async def add_security_headers(request: web.Request, response: web.StreamResponse) -> None:
    """On every answer: JSON, errors, the docs, the dashboard (an on_response_prepare hook)."""
    for name, value in SECURITY_HEADERS.items():
        response.headers.setdefault(name, value)
