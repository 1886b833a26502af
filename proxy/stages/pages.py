"""The few HTML pages idgate shows a person: access denied, who am I, signed out, sign-in
problems, errors.

Self-contained (no external assets, inline styles only) and served with a Content-Security-Policy
that allows nothing else to load. Every dynamic value is HTML-escaped; none is ever a token.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime
from html import escape
from string import Template
from typing import Final

from aiohttp import web

NO_STORE: Final = "no-store"

#: Pages load nothing and run nothing: inline styles only, no frames, no forms.
_CSP: Final = (
    "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'; base-uri 'none'; "
    "form-action 'none'"
)

_LAYOUT: Final = Template("""<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="robots" content="noindex">
<title>$title · idgate</title>
<style>
body{margin:0;font:16px/1.5 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;
color:#1f2933;background:#f4f6f8;display:flex;min-height:100vh;align-items:center;
justify-content:center}
main{background:#fff;max-width:28rem;margin:1rem;padding:2rem 2.25rem;border-radius:10px;
box-shadow:0 1px 3px rgba(0,0,0,.12)}
h1{font-size:1.35rem;margin:0 0 .75rem}
p{margin:.5rem 0}
.meta{color:#616e7c;font-size:.85rem;margin-top:1.5rem}
a.button,button{display:inline-block;margin-top:1rem;padding:.55rem 1.1rem;border-radius:6px;
background:#2f5fd0;color:#fff;text-decoration:none;border:0;font:inherit;cursor:pointer}
a.button.quiet{background:#e4e7eb;color:#1f2933;margin-left:.5rem}
dl{display:grid;grid-template-columns:auto 1fr;gap:.35rem 1rem;margin:1rem 0}
dt{color:#616e7c}dd{margin:0;overflow-wrap:anywhere}
code{background:#f0f2f5;padding:0 .25rem;border-radius:3px}
</style></head>
<body><main>
<h1>$heading</h1>
$body
<p class="meta">idgate$request_id</p>
</main></body></html>
""")


def page(
    *,
    status: int,
    title: str,
    heading: str,
    body_html: str,
    request_id: str | None,
) -> web.Response:
    """`body_html` must already be built from escaped values."""
    text = _LAYOUT.substitute(
        title=escape(title),
        heading=escape(heading),
        body=body_html,
        request_id=f" · request {escape(request_id)}" if request_id else "",
    )
    response = web.Response(status=status, text=text, content_type="text/html")
    response.headers["Cache-Control"] = NO_STORE
    response.headers["Content-Security-Policy"] = _CSP
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Referrer-Policy"] = "no-referrer"
    return response


def denied_page(
    *,
    route: str,
    user: str | None,
    sign_out_url: str,
    switch_account_url: str,
    back_url: str,
    help_url: str | None,
    request_id: str | None,
) -> web.Response:
    """`back_url`: where the person came from (a vetted Referer) or the home page."""
    who = f"You are signed in as <strong>{escape(user)}</strong>." if user else ""
    ask = (
        f'<a href="{escape(help_url)}">ask for access</a>'
        if help_url
        else "ask the tool's owners to add you to the right group"
    )
    body = (
        f"<p>{who} Your account is not allowed to use <code>{escape(route)}</code>.</p>"
        f"<p>If you need access, {ask}, or "
        f'<a href="{escape(switch_account_url)}">sign in as someone else</a>.</p>'
        f'<a class="button" href="{escape(back_url)}">Go back</a>'
        f'<a class="button quiet" href="{escape(sign_out_url)}">Sign out</a>'
    )
    return page(
        status=403,
        title="Access denied",
        heading="Access denied",
        body_html=body,
        request_id=request_id,
    )


def problem_page(
    *, status: int, heading: str, message: str, retry_url: str | None, request_id: str | None
) -> web.Response:
    body = f"<p>{escape(message)}</p>"
    if retry_url is not None:
        body += f'<a class="button" href="{escape(retry_url)}">Sign in again</a>'
    return page(
        status=status, title=heading, heading=heading, body_html=body, request_id=request_id
    )


def userinfo_page(
    *,
    user: str,
    email: str | None,
    groups: Iterable[str],
    issuer: str | None,
    source: str,
    expires_at: float,
    sign_out_url: str,
    request_id: str | None,
) -> web.Response:
    """ "Who am I": the identity idgate sees, never a token; `expires_at` is when it ends."""
    fields = {
        "User": user,
        "Email": email or "-",
        "Groups": ", ".join(sorted(groups)) or "none",
        "Issuer": issuer or "-",
        "Signed in with": source,
        "Ends": _utc(expires_at),
    }
    rows = "".join(
        f"<dt>{escape(name)}</dt><dd>{escape(value)}</dd>" for name, value in fields.items()
    )
    body = f'<dl>{rows}</dl><a class="button" href="{escape(sign_out_url)}">Sign out</a>'
    return page(
        status=200, title="Who am I", heading="Who am I", body_html=body, request_id=request_id
    )


def signed_out_page(*, sign_in_url: str, request_id: str | None) -> web.Response:
    body = (
        "<p>You are signed out. To use the tools again, sign in.</p>"
        f'<a class="button" href="{escape(sign_in_url)}">Sign in again</a>'
    )
    return page(
        status=200, title="Signed out", heading="Signed out", body_html=body, request_id=request_id
    )


def _utc(timestamp: float) -> str:
    return datetime.fromtimestamp(timestamp, UTC).strftime("%Y-%m-%d %H:%M UTC")
