"""The demo's HTML: one self-contained layout (no scripts, inline styles) and the issuer's pages.

Every dynamic value is HTML-escaped where it is inserted; the issuer's pages carry the dev-only
banner so nobody mistakes them for a real sign-in.
"""

from __future__ import annotations

from collections.abc import Iterable
from html import escape
from string import Template
from typing import Final

from aiohttp import web
from yarl import URL

from proxy.demo.authorization import AuthorizationRequest
from proxy.demo.directory import DemoUser

DEV_ONLY_BANNER: Final = (
    "DEV ONLY: the idgate demo issuer. Demo users, no passwords, keys in memory. "
    "Never use it for anything real."
)

_CSP: Final = (
    "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'; base-uri 'none'; "
    "form-action {form_action}"
)

_LAYOUT: Final = Template("""<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="robots" content="noindex">
<title>$title</title>
<style>
body{margin:0;font:15px/1.5 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;
color:#1f2933;background:#f4f6f8}
.banner{background:$banner_color;color:#1f2933;padding:.5rem 1rem;font-weight:600;
text-align:center;border-bottom:1px solid rgba(0,0,0,.1)}
main{background:#fff;max-width:52rem;margin:1.5rem auto;padding:1.5rem 2rem;border-radius:10px;
box-shadow:0 1px 3px rgba(0,0,0,.12)}
h1{font-size:1.35rem;margin:0 0 .75rem}
h2{font-size:1.05rem;margin:1.5rem 0 .5rem}
table{border-collapse:collapse;width:100%}
th,td{text-align:left;padding:.35rem .5rem;border-bottom:1px solid #e4e7eb;vertical-align:top}
th{width:16rem;font-weight:600;color:#3e4c59}
code,pre{font:13px/1.4 ui-monospace,SFMono-Regular,Menlo,monospace}
pre{background:#f0f2f5;padding:.75rem;border-radius:6px;overflow-x:auto;margin:.25rem 0}
.muted{color:#616e7c}
.chip{display:inline-block;background:#e3ecfb;color:#1d3f8f;border-radius:999px;
padding:0 .55rem;margin:0 .2rem .2rem 0;font-size:.85rem}
.ok{color:#0f7b3f;font-weight:700}
.bad{color:#b42318;font-weight:700}
.user{display:flex;align-items:center;justify-content:space-between;gap:1rem;
padding:.75rem 0;border-bottom:1px solid #e4e7eb}
button{padding:.5rem 1rem;border-radius:6px;background:#2f5fd0;color:#fff;border:0;
font:inherit;cursor:pointer}
nav a{margin-right:.9rem}
</style></head>
<body><div class="banner">$banner</div><main>
$body
</main></body></html>
""")


def page(
    *,
    status: int,
    title: str,
    body_html: str,
    banner: str = DEV_ONLY_BANNER,
    banner_color: str = "#ffd84d",
    form_action: str = "'none'",
) -> web.Response:
    """A page whose `body_html` is already built from escaped values; nothing else loads."""
    text = _LAYOUT.substitute(
        title=escape(title), banner=escape(banner), banner_color=banner_color, body=body_html
    )
    response = web.Response(status=status, text=text, content_type="text/html")
    response.headers["Cache-Control"] = "no-store"
    response.headers["Content-Security-Policy"] = _CSP.format(form_action=form_action)
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Referrer-Policy"] = "no-referrer"
    return response


def chips(values: Iterable[str]) -> str:
    shown = "".join(f'<span class="chip">{escape(value)}</span>' for value in values)
    return shown or '<span class="muted">none</span>'


def sign_in_page(request: AuthorizationRequest, users: Iterable[DemoUser]) -> web.Response:
    """One form, one button per user: the button's value names who signs in."""
    hidden = "".join(
        f'<input type="hidden" name="{escape(name)}" value="{escape(value)}">'
        for name, value in request.form_fields().items()
    )
    rows = "".join(
        f'<div class="user"><div><strong>{escape(user.username)}</strong> '
        f'<span class="muted">{escape(user.name)} · {escape(user.email)}</span><br>'
        f"{chips(user.groups)}</div>"
        f'<button type="submit" name="user" value="{escape(user.username)}">'
        f"Sign in as {escape(user.username)}</button></div>"
        for user in users
    )
    body = (
        f"<h1>Sign in to {escape(request.client.client_id)}</h1>"
        '<p class="muted">Pick a demo user. There are no passwords: this issuer exists only to '
        "try idgate on your own machine.</p>"
        f'<form method="post" action="/authorize">{hidden}{rows}</form>'
    )
    # Chromium applies form-action to the redirects that follow a form post as well, so the
    # client's redirect URI (where the code goes) must be allowed beside the issuer itself.
    target = URL(request.redirect_uri).origin()
    return page(
        status=200,
        title="Sign in · idgate demo issuer",
        body_html=body,
        form_action=f"'self' {target}",
    )


def message_page(*, status: int, heading: str, message: str) -> web.Response:
    body = f"<h1>{escape(heading)}</h1><p>{escape(message)}</p>"
    return page(status=status, title=f"{heading} · idgate demo issuer", body_html=body)
