"""The `idgate` command: argument parsing and exit codes only; the work lives elsewhere."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

from proxy import __version__
from proxy.config.advice import config_warnings
from proxy.config.load import ConfigError, load_settings
from proxy.config.model import BROWSER_ISSUER, SessionStoreKind, Settings

EXIT_OK = 0
EXIT_CONFIG = 1
EXIT_USAGE = 2
EXIT_ADMIN = 3
"""`idgate revoke` or `idgate sessions` could not reach the admin listener, or it refused."""
EXIT_SIGN_IN = 3
"""`idgate explain`: the request needs a sign-in, or a more recent or stronger one (401)."""
EXIT_DENIED = 4
"""`idgate explain`: the policy denies the request (403)."""
EXIT_NO_ROUTE = 5
"""`idgate explain`: no route matches, or the URL is malformed: refused before any policy."""


def _parser(environ: Mapping[str, str]) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="idgate", description="Identity-aware reverse proxy for OpenID Connect."
    )
    parser.add_argument("--version", action="version", version=f"idgate {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def with_config(command: argparse.ArgumentParser) -> argparse.ArgumentParser:
        default = environ.get("IDGATE_CONFIG")
        command.add_argument(
            "-c",
            "--config",
            type=Path,
            default=Path(default) if default else None,
            required=default is None,
            help="config file (default: $IDGATE_CONFIG)",
        )
        return command

    with_config(commands.add_parser("serve", help="run the proxy"))
    check = with_config(
        commands.add_parser("check", help="validate the config; exit 1 on any problem")
    )
    check.add_argument(
        "--online",
        action="store_true",
        help="also ask the provider (discovery, keys, client, redirect URI) and Redis",
    )
    explain = with_config(
        commands.add_parser("explain", help="which route matches a request and what is decided")
    )
    explain.add_argument("--method", default="GET")
    explain.add_argument("--url", required=True, help="full URL, e.g. https://tools.example.com/x")
    explain.add_argument(
        "--token",
        help="a real JWT whose claims give the identity; decoded, NOT verified (instead of --user)",
    )
    explain.add_argument(
        "--user",
        help="the caller's user claim (omit for an anonymous request);"
        " system:serviceaccount:NAMESPACE:NAME is that Kubernetes service account",
    )
    explain.add_argument("--email")
    explain.add_argument("--group", action="append", default=[], help="repeat for several")
    explain.add_argument(
        "--claim", action="append", default=[], metavar="NAME=VALUE", help="an extra claim"
    )
    explain.add_argument(
        "--issuer",
        help="name of the issuer of the caller's token (default: oidc; with --token, the one"
        " its iss names)",
    )
    render = with_config(
        commands.add_parser(
            "render", help="generate a gateway's configuration from the routes (nginx)"
        )
    )
    render.add_argument("gateway", choices=["nginx"], help="what to generate for")
    render.add_argument("--listen", default="80", help="nginx's listen address (default: 80)")
    render.add_argument(
        "--server-name", default="_", help="server_name of the default server (default: _)"
    )
    render.add_argument(
        "--idgate", help="host:port where nginx reaches idgate (default: from listen)"
    )
    render.add_argument(
        "--cache-path",
        default="/var/cache/nginx/idgate",
        help="directory of the decision cache (default: /var/cache/nginx/idgate)",
    )
    render.add_argument(
        "--upstream",
        action="append",
        default=[],
        metavar="ROUTE=URL",
        help="the tool a decision-only route goes to (or another one for a route); repeatable",
    )
    revoke = with_config(
        commands.add_parser(
            "revoke",
            help="end a user's sessions and refuse their tokens now, on every worker and replica",
        )
    )
    target = revoke.add_mutually_exclusive_group()
    target.add_argument("--user", help="every session and bearer token of this user")
    target.add_argument("--session", help="one session, by its handle (idgate sessions)")
    revoke.add_argument("--list", action="store_true", help="the revocations in force")
    revoke.add_argument("--lift", action="store_true", help="lift the --user or --session one")
    revoke.add_argument(
        "--admin-url", help="the metrics/admin listener (default: from metrics.listen)"
    )
    sessions = with_config(
        commands.add_parser("sessions", help="a user's sessions (Redis store), to revoke one")
    )
    sessions.add_argument("--user", required=True, help="the user claim's value")
    sessions.add_argument(
        "--admin-url", help="the metrics/admin listener (default: from metrics.listen)"
    )
    demo = commands.add_parser(
        "demo", help="try idgate locally: a dev-only issuer and demo upstream, no setup"
    )
    demo.add_argument(
        "--port", type=_port, default=4180, help="idgate's loopback port (default: 4180)"
    )
    return parser


def _port(value: str) -> int:
    port = int(value)
    if not 1 <= port <= 65535:
        raise argparse.ArgumentTypeError("must be between 1 and 65535")
    return port


def _load(path: Path, environ: Mapping[str, str], *, read_secrets: bool = True) -> Settings | None:
    try:
        return load_settings(path, environ, read_secrets=read_secrets)
    except ConfigError as error:
        for issue in error.issues:
            # File-level problems (unreadable, not YAML) are already reported at the file name.
            print(issue if issue.path == str(path) else f"{path}: {issue}", file=sys.stderr)
        return None


def main(argv: Sequence[str] | None = None, environ: Mapping[str, str] | None = None) -> int:
    env = os.environ if environ is None else environ
    args = _parser(env).parse_args(argv)
    own = {"demo": _demo, "render": _render, "revoke": _revoke, "sessions": _sessions}.get(
        args.command
    )
    if own is not None:
        return own(args, env)
    # explain uses no secret, so it runs without their environment variables.
    settings = _load(args.config, env, read_secrets=args.command != "explain")
    if settings is None:
        return EXIT_CONFIG

    if args.command == "check":
        # Warnings go beside the errors (stderr) but leave the exit code alone: the config works.
        for warning in config_warnings(settings):
            print(f"{args.config}: warning: {warning}", file=sys.stderr)
        print(f"{args.config}: ok ({len(settings.routes)} routes)")
        return _check_online(settings) if args.online else EXIT_OK

    if args.command == "explain":
        return _explain(args, settings)

    from proxy.server.run import run  # noqa: PLC0415 (check and explain must not import the server)

    run(settings, config_path=args.config, environ=env)
    return EXIT_OK


def _check_online(settings: Settings) -> int:
    import asyncio  # noqa: PLC0415 (the offline check stays as lean as it was)

    from proxy.check.findings import Outcome  # noqa: PLC0415
    from proxy.check.online import check_online  # noqa: PLC0415

    findings = asyncio.run(check_online(settings))
    for finding in findings:
        print(finding)
    failed = sum(finding.outcome is Outcome.FAILED for finding in findings)
    if failed:
        print(f"online: {failed} of {len(findings)} checks failed", file=sys.stderr)
        return EXIT_CONFIG
    return EXIT_OK


def _explain(args: argparse.Namespace, settings: Settings) -> int:
    from proxy.explain import (  # noqa: PLC0415 (keeps serve lean)
        explain,
        principal_for_explain,
        principal_from_token,
        token_issuer,
        token_notes,
        unverified_claims,
    )
    from proxy.policy.decision import Outcome  # noqa: PLC0415

    issuers = {issuer.name: issuer for issuer in settings.all_issuers}
    if args.issuer is not None and args.issuer not in issuers:
        print(f"--issuer {args.issuer!r}: the issuers are {', '.join(issuers)}", file=sys.stderr)
        return EXIT_USAGE
    if args.token is not None:
        if args.user or args.email or args.group or args.claim:
            print(
                "--token gives the identity: leave out --user, --email, --group and --claim",
                file=sys.stderr,
            )
            return EXIT_USAGE
        try:
            token_claims = unverified_claims(args.token)
        except ValueError as problem:
            print(f"--token: {problem}", file=sys.stderr)
            return EXIT_USAGE
        issuer = (
            issuers[args.issuer]
            if args.issuer is not None
            else token_issuer(token_claims, settings)
        )
        for note in token_notes(token_claims, issuer):
            print(note)
        principal = None if issuer is None else principal_from_token(token_claims, issuer)
    else:
        claims: dict[str, str] = {}
        for item in args.claim:
            name, sep, value = item.partition("=")
            if not sep or not name:
                print(f"--claim {item!r}: expected NAME=VALUE", file=sys.stderr)
                return EXIT_USAGE
            claims[name] = value
        principal = principal_for_explain(
            user=args.user,
            email=args.email,
            groups=args.group,
            claims=claims,
            issuer=args.issuer or BROWSER_ISSUER,
        )
    explanation = explain(settings, method=args.method, url=args.url, principal=principal)
    print(explanation.render())
    if explanation.decision is None:
        return EXIT_OK if explanation.endpoint is not None else EXIT_NO_ROUTE
    return {
        Outcome.ALLOW: EXIT_OK,
        Outcome.WOULD_DENY: EXIT_OK,
        Outcome.UNAUTHENTICATED: EXIT_SIGN_IN,
        Outcome.DENY: EXIT_DENIED,
    }[explanation.decision.outcome]


def _demo(args: argparse.Namespace, environ: Mapping[str, str]) -> int:
    from proxy.demo.run import run_demo  # noqa: PLC0415 (serve, check, explain never load it)

    return run_demo(port=args.port, environ=environ)


def _revoke(args: argparse.Namespace, environ: Mapping[str, str]) -> int:
    from proxy.server.admin_client import AdminClient, AdminError, line, when  # noqa: PLC0415

    kind, value = ("user", args.user) if args.user is not None else ("session", args.session)
    if args.list == (value is not None) or (args.lift and value is None):
        print("give --list, or --user or --session (with --lift to lift it)", file=sys.stderr)
        return EXIT_USAGE
    settings = _load(args.config, environ)
    if settings is None:
        return EXIT_CONFIG
    try:
        client = AdminClient.for_settings(settings, args.admin_url)
        if args.list:
            for entry in client.revocations():
                print(line(entry))
        elif args.lift:
            lifted = client.lift(kind, value)
            state = "lifted" if lifted.get("was_revoked") else "was not revoked; nothing to lift"
            print(f"{kind} {value}: {state}")
        else:
            entry = client.revoke(kind, value)
            print(
                f"{kind} {value}: revoked at {when(entry.get('revoked_at'))}, in force until "
                f"{when(entry.get('expires_at'))} or until lifted"
            )
    except AdminError as error:
        print(f"idgate revoke: {error}", file=sys.stderr)
        return EXIT_ADMIN
    return EXIT_OK


def _sessions(args: argparse.Namespace, environ: Mapping[str, str]) -> int:
    from proxy.server.admin_client import AdminClient, AdminError, session_line  # noqa: PLC0415

    settings = _load(args.config, environ)
    if settings is None:
        return EXIT_CONFIG
    if settings.session.store is not SessionStoreKind.REDIS:
        print(
            f"{args.config}: listing sessions needs session.store: redis; cookie sessions live "
            "only in browsers (idgate revoke --user still ends them)",
            file=sys.stderr,
        )
        return EXIT_CONFIG
    try:
        entries = AdminClient.for_settings(settings, args.admin_url).sessions(args.user)
    except AdminError as error:
        print(f"idgate sessions: {error}", file=sys.stderr)
        return EXIT_ADMIN
    print(f"user {args.user}: {len(entries)} session{'' if len(entries) == 1 else 's'}")
    for entry in entries:
        print(session_line(entry))
    return EXIT_OK


def _render(args: argparse.Namespace, environ: Mapping[str, str]) -> int:
    from proxy.render.nginx import NginxOptions, render_nginx  # noqa: PLC0415 (keeps serve lean)
    from proxy.render.plan import RenderError  # noqa: PLC0415

    settings = _load(args.config, environ)
    if settings is None:
        return EXIT_CONFIG

    upstreams: dict[str, str] = {}
    for item in args.upstream:
        name, sep, url = item.partition("=")
        if not sep or not name or not url.startswith(("http://", "https://")):
            print(f"--upstream {item!r}: expected ROUTE=http(s)://host[:port]", file=sys.stderr)
            return EXIT_USAGE
        upstreams[name] = url
    listen = settings.listen
    host = "127.0.0.1" if listen.host in ("0.0.0.0", "::", "") else listen.host  # noqa: S104
    idgate = args.idgate or (f"[{host}]:{listen.port}" if ":" in host else f"{host}:{listen.port}")
    options = NginxOptions(
        listen=args.listen,
        server_name=args.server_name,
        idgate=idgate,
        cache_path=args.cache_path,
        upstreams=upstreams,
        source=str(args.config),
    )
    try:
        print(render_nginx(settings, options), end="")
    except RenderError as error:
        print(f"{args.config}: {error}", file=sys.stderr)
        return EXIT_CONFIG
    return EXIT_OK
