"""Converters for names and addresses: host names, email addresses, IP networks, URLs, listen.

Like every converter, these never quote the value they were given in a message.
"""

from __future__ import annotations

import ipaddress
import re
from urllib.parse import SplitResult, urlsplit

from proxy.config.model import IPNetwork, RedisNode, Secret
from proxy.config.values import InvalidValueError, int_between, text

_LABEL = r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?"
_HOSTNAME = re.compile(rf"{_LABEL}(?:\.{_LABEL})*\Z")
# Kubernetes: a namespace is an RFC 1123 label, a service account's name a DNS subdomain.
_SERVICE_ACCOUNT = re.compile(rf"{_LABEL}/(?:\*|{_LABEL}(?:\.{_LABEL})*)\Z")
_LISTEN = re.compile(r"(?:\[(?P<v6>[^\]]*)\]|(?P<host>[^:\[\]]+)):(?P<port>[0-9]+)\Z")


def hostname(value: object) -> str:
    """A DNS name, lower-cased; non-ASCII names must be written in punycode (`xn--`)."""
    name = text(value).lower()
    if len(name) > 253 or not _HOSTNAME.match(name):
        raise InvalidValueError(
            "not a valid host name (letters, digits, '-' and '.'; punycode for non-ASCII)"
        )
    return name


def service_account(value: object) -> str:
    """A Kubernetes service account, `<namespace>/<name>`, or `<namespace>/*` for any of them."""
    name = text(value)
    if not _SERVICE_ACCOUNT.match(name) or len(name.partition("/")[2]) > 253:
        raise InvalidValueError(
            'expected <namespace>/<service account> such as "payments/frontend", or'
            ' "<namespace>/*" for every service account of a namespace'
        )
    return name


def host_pattern(value: object) -> str:
    """A host name, or `*.example.com` for any subdomain of example.com."""
    name = text(value)
    if name.startswith("*."):
        return "*." + hostname(name[2:])
    if "*" in name:
        raise InvalidValueError(
            "a wildcard is only allowed as the whole first label, as in *.example.com"
        )
    return hostname(name)


def redirect_domain(value: object) -> str:
    """A host name, or `.example.com` for example.com's subdomains, each with an optional port
    (`tools.example.com:8443`): without one only the scheme's default port is allowed."""
    spec = text(value)
    name, colon, port = spec.partition(":")
    domain = "." + hostname(name[1:]) if name.startswith(".") else hostname(name)
    if not colon:
        return domain
    if not (port.isascii() and port.isdigit() and len(port) <= 5 and 0 < int(port) <= 65535):
        raise InvalidValueError(
            'a port is a number from 1 to 65535 after one ":", as in "tools.example.com:8443"'
        )
    return f"{domain}:{int(port)}"


def email(value: object) -> str:
    address = text(value).lower()
    local, at, domain = address.partition("@")
    if not (at and local and domain) or "@" in domain or any(c.isspace() for c in local):
        raise InvalidValueError(
            "not an email address: it needs exactly one @ with text on both sides"
        )
    hostname(domain)
    return address


def email_domain(value: object) -> str:
    name = text(value)
    if "@" in name:
        raise InvalidValueError(
            "a domain has no @: write example.com to match every address @example.com"
        )
    return hostname(name)


def ip_network(value: object) -> IPNetwork:
    try:
        return ipaddress.ip_network(text(value), strict=False)
    except ValueError:
        raise InvalidValueError(
            "not an IP address or CIDR network (10.0.0.0/8, 2001:db8::/32)"
        ) from None


def port_number(value: object) -> int:
    return int_between(0, 65535)(value)


def listen_host(value: object) -> str:
    name = text(value)
    try:
        return str(ipaddress.ip_address(name))
    except ValueError:
        return hostname(name)


def listen_address(value: object) -> tuple[str, int]:
    """`host:port`, with an IPv6 host in brackets (`[::1]:8080`)."""
    spec = text(value)
    match = _LISTEN.match(spec)
    if match is None:
        if spec.count(":") > 1 and not spec.startswith("["):
            raise InvalidValueError('an IPv6 address needs brackets, as in "[::1]:8080"')
        raise InvalidValueError('expected "host:port", as in "0.0.0.0:8080" or "[::]:8080"')
    port = port_number(match.group("port"))
    if match.group("v6") is None:
        return listen_host(match.group("host")), port
    try:
        return str(ipaddress.IPv6Address(match.group("v6"))), port
    except ValueError:
        raise InvalidValueError("not an IPv6 address inside the brackets") from None


def _url(raw: str, *, schemes: tuple[str, ...]) -> SplitResult:
    if any(char.isspace() or not char.isprintable() for char in raw):
        raise InvalidValueError("must not contain spaces or control characters")
    parts = urlsplit(raw)
    if parts.scheme.lower() not in schemes or not parts.hostname:
        raise InvalidValueError(f"expected an absolute {' or '.join(schemes)} URL")
    if parts.username is not None or parts.password is not None:
        raise InvalidValueError("must not contain a user name or password")
    if "?" in raw or "#" in raw:
        raise InvalidValueError("must not have a query or fragment")
    try:
        parts.port  # noqa: B018  # urllib validates the port only when it is read
    except ValueError:
        raise InvalidValueError("has an invalid port") from None
    return parts


def http_url(value: object) -> str:
    """An absolute http(s) URL with an optional path, kept exactly as written."""
    url = text(value)
    _url(url, schemes=("http", "https"))
    return url


def link_url(value: object) -> str:
    """An absolute http(s) URL a page links to, kept exactly as written; unlike `http_url` it
    may carry a query and fragment (a service desk form often needs one)."""
    url = text(value)
    _url(re.split(r"[?#]", url, maxsplit=1)[0], schemes=("http", "https"))
    if any(char.isspace() or not char.isprintable() for char in url):
        raise InvalidValueError("must not contain spaces or control characters")
    return url


def base_url(value: object) -> str:
    """Scheme, host and optional port, lower-cased, without a trailing slash."""
    parts = _url(text(value), schemes=("http", "https"))
    if parts.path not in ("", "/"):
        raise InvalidValueError(
            "must be scheme://host[:port] only; idgate serves from the root of it"
        )
    return f"{parts.scheme}://{parts.netloc}".lower()


def origin(value: object) -> str:
    """A browser origin, `scheme://host[:port]`, lower-cased."""
    parts = _url(text(value), schemes=("http", "https"))
    if parts.path:
        raise InvalidValueError("an origin is scheme://host[:port], with no path")
    return f"{parts.scheme}://{parts.netloc}".lower()


def redis_url(value: object) -> Secret:
    url = text(value)
    if urlsplit(url).scheme.lower() not in ("redis", "rediss", "unix"):
        raise InvalidValueError("expected a redis://, rediss:// or unix:// URL")
    return Secret(url)


def redis_node(value: object) -> RedisNode:
    """`host:port` of a Redis server or sentinel (`[::1]:6379` for IPv6)."""
    host, port = listen_address(value)
    if port == 0:
        raise InvalidValueError("port 0 is not a Redis server's port")
    return RedisNode(host=host, port=port)
