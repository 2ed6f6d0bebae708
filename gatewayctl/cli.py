"""Argument parsing and dispatch: ``python -m gatewayctl <command> [<action>] ...``."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from typing import Any

import grpc

from gatewayctl import admin, audit, deployments, ops, seed
from gatewayctl.client import EXIT_HELP, CliError, Session, describe, exit_code
from gatewayctl.output import emit

Handler = Callable[[Session, argparse.Namespace], Any]


def _common(suppress: bool) -> argparse.ArgumentParser:
    d = (lambda v: argparse.SUPPRESS) if suppress else (lambda v: v)
    p = argparse.ArgumentParser(add_help=False)
    p.add_argument("--key", default=d(None), help="API key (default: $GATEWAY_API_KEY)")
    p.add_argument("--json", action="store_true", default=d(False), help="JSON output")
    p.add_argument("--timeout", type=float, default=d(30.0), help="seconds per call")
    return p


def build_parser() -> argparse.ArgumentParser:
    root = argparse.ArgumentParser(
        prog="gatewayctl",
        description="Admin and ops tool of the LLM gateway. Targets: $GATEWAY_IDENTITY_TARGET, "
        "$GATEWAY_QUOTA_TARGET, $GATEWAY_HISTORY_TARGET, $GATEWAY_LLM_TARGET "
        "(default 127.0.0.1:50051..50054).",
        epilog=EXIT_HELP,
        parents=[_common(False)],
    )
    sub = root.add_subparsers(dest="command", required=True)
    common = _common(True)

    def leaf(parent: Any, name: str, handler: Handler, help_: str) -> argparse.ArgumentParser:
        p: argparse.ArgumentParser = parent.add_parser(
            name, parents=[common], help=help_, epilog=EXIT_HELP
        )
        p.set_defaults(func=handler)
        return p

    def group(name: str, help_: str) -> Any:
        return sub.add_parser(name, help=help_).add_subparsers(dest="action", required=True)

    def listing(p: argparse.ArgumentParser) -> None:
        p.add_argument("--page-size", type=int, default=0)
        p.add_argument("--page-token", default="")
        p.add_argument("--all", action="store_true", help="follow every page")

    def creating(p: argparse.ArgumentParser) -> None:
        p.add_argument("--request-id", default="", help="makes a retry return the first result")

    p = leaf(
        sub,
        "bootstrap-admin",
        seed.bootstrap_admin,
        "create the first platform-admin key (needs IDENTITY_DATABASE_URL)",
    )
    p.add_argument("--name", default="platform admin")
    leaf(sub, "demo-seed", seed.demo_seed, "seed a demo tenant/user/plan/model/key (idempotent)")

    g = group("tenants", "tenants (platform admin)")
    p = leaf(g, "create", admin.tenants, "create a tenant")
    p.add_argument("--name", required=True)
    p.add_argument("--contact", default="")
    p.add_argument("--time-zone", default="")
    creating(p)
    listing(leaf(g, "list", admin.tenants, "list tenants"))
    leaf(g, "get", admin.tenants, "read a tenant").add_argument("id")
    p = leaf(g, "update", admin.tenants, "change a tenant")
    p.add_argument("id")
    for f in ("--name", "--contact", "--time-zone"):
        p.add_argument(f, default=None)
    p = leaf(g, "delete", admin.tenants, "delete a tenant")
    p.add_argument("id")
    p.add_argument("--cascade", action="store_true")

    g = group("users", "users of a tenant")
    p = leaf(g, "create", admin.users, "create a user")
    p.add_argument("--tenant", default="")
    p.add_argument("--name", required=True)
    p.add_argument("--email", default="")
    creating(p)
    p = leaf(g, "list", admin.users, "list users")
    p.add_argument("--tenant", default="")
    listing(p)
    for action in ("get", "delete"):
        p = leaf(g, action, admin.users, f"{action} a user")
        p.add_argument("id")
        p.add_argument("--tenant", default="")

    g = group("keys", "API keys")
    p = leaf(g, "create", admin.keys, "issue a key (the secret is shown once)")
    p.add_argument("--role", choices=sorted(admin.ROLES), required=True)
    p.add_argument("--tenant", default="")
    p.add_argument("--user", default="")
    p.add_argument("--name", default="")
    creating(p)
    p = leaf(g, "list", admin.keys, "list keys")
    p.add_argument("--tenant", default="")
    p.add_argument("--user", default="")
    p.add_argument("--include-revoked", action="store_true")
    listing(p)
    leaf(g, "revoke", admin.keys, "revoke a key").add_argument("id")

    g = group("models", "LLM models")
    p = leaf(g, "create", admin.models, "register a model")
    p.add_argument("--name", required=True)
    p.add_argument("--provider", required=True)
    p.add_argument("--tenant", default="", help="empty: a global model")
    p.add_argument("--description", default="")
    p.add_argument("--access", choices=sorted(admin.ACCESS), default="cloud")
    creating(p)
    p = leaf(g, "list", admin.models, "list models")
    p.add_argument("--tenant", default="")
    listing(p)
    for action in ("get", "delete"):
        leaf(g, action, admin.models, f"{action} a model").add_argument("id")
    p = leaf(sub, "available-models", ops.llm_models, "models the key may chat with")
    p.add_argument("--page-size", type=int, default=0)

    g = group("configs", "a tenant's model configurations")
    p = leaf(g, "create", admin.configs, "configure a model for a tenant")
    p.add_argument("--tenant", default="")
    p.add_argument("--model-id", required=True)
    p.add_argument("--token-limit", type=int, default=None)
    p.add_argument("--params", default="{}", help="JSON object of default parameters")
    p.add_argument(
        "--allow-extra",
        action="append",
        default=[],
        metavar="NAME",
        help="a request parameter outside the chat schema to let through (repeatable)",
    )
    fallbacks(p)
    creating(p)
    p = leaf(g, "list", admin.configs, "list configurations")
    p.add_argument("--tenant", default="")
    listing(p)
    for action in ("get", "delete", "set-fallbacks"):
        p = leaf(g, action, admin.configs, f"{action} a configuration")
        p.add_argument("id")
        p.add_argument("--tenant", default="")
        if action == "set-fallbacks":
            fallbacks(p)
    deployments.add_commands(leaf, group, listing, creating)

    _quota_and_history(leaf, group, listing, creating, sub)
    return root


def fallbacks(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--fallback",
        action="append",
        default=[],
        metavar="MODEL",
        help="another model of the tenant to try when every deployment fails (repeatable)",
    )
    p.add_argument(
        "--fallback-on-context-length",
        action="store_true",
        help="a context-length refusal falls back too",
    )


def _quota_and_history(leaf: Any, group: Any, listing: Any, creating: Any, sub: Any) -> None:
    g = group("plans", "usage plans")
    p = leaf(g, "create", ops.plans, "create a plan")
    p.add_argument("--name", required=True)
    p.add_argument("--limit", type=int, required=True, help="requests per month")
    p.add_argument("--tenant", default="", help="empty: a global plan")
    p.add_argument("--description", default="")
    creating(p)
    p = leaf(g, "list", ops.plans, "list plans")
    p.add_argument("--tenant", default="")
    listing(p)
    for action in ("get", "delete"):
        leaf(g, action, ops.plans, f"{action} a plan").add_argument("id")

    g = group("subscriptions", "users' plan subscriptions")
    p = leaf(g, "create", ops.subscriptions, "subscribe a user to a plan")
    p.add_argument("--tenant", default="")
    p.add_argument("--user", required=True)
    p.add_argument("--plan", required=True)
    creating(p)
    p = leaf(g, "list", ops.subscriptions, "list subscriptions")
    p.add_argument("--tenant", default="")
    p.add_argument("--user", default="")
    p.add_argument("--active", action="store_true")
    listing(p)
    for action in ("get", "change-plan", "end"):
        p = leaf(g, action, ops.subscriptions, f"{action} a subscription")
        p.add_argument("id")
        p.add_argument("--tenant", default="")
        if action == "change-plan":
            p.add_argument("--plan", required=True)
        if action != "get":
            creating(p)

    p = leaf(sub, "usage", ops.usage, "requests used this month (user or tenant)")
    p.add_argument("--tenant", default="")
    p.add_argument("--user", default="")

    g = group("dead-letters", "settlement records history refused for good (platform admin)")
    listing(leaf(g, "list", ops.dead_letters, "list dead letters, oldest first"))
    p = leaf(g, "retry", ops.dead_letters, "put dead letters back in the delivery queue")
    p.add_argument("ids", nargs="*", help="entry ids; none retries them all")

    audit.add_commands(leaf, group, listing)

    g = group("history", "interactions")
    for action in ("list", "search"):
        p = leaf(g, action, ops.history, f"{action} interactions, newest first")
        if action == "search":
            p.add_argument("query")
        p.add_argument("--tenant", default="")
        p.add_argument("--user", default="")
        p.add_argument("--model-id", default="")
        listing(p)
    p = leaf(g, "get", ops.history, "read an interaction")
    p.add_argument("id")
    p.add_argument("--tenant", default="")
    p = leaf(g, "stats", ops.history, "usage statistics")
    p.add_argument("--tenant", default="")
    p.add_argument("--user", default="")
    p.add_argument("--days", type=int, default=30)
    p.add_argument("--group-by", choices=sorted(ops.GROUPS), default="day")

    p = leaf(sub, "chat", ops.chat, "chat with a model (streams to the terminal)")
    p.add_argument("message", nargs="*")
    p.add_argument(
        "--file",
        default="",
        help="JSON file of an OpenAI-shaped request: messages, tools and other parameters",
    )
    p.add_argument("--model", default="demo-model")
    p.add_argument("--system", default="")
    p.add_argument("--temperature", type=float, default=None)
    p.add_argument("--max-tokens", type=int, default=None)
    p.add_argument("--top-p", type=float, default=None)
    p.add_argument("--idempotency-key", default="")
    p.add_argument("--no-stream", action="store_true")
    p.add_argument(
        "--http",
        default="",
        metavar="URL",
        help="through llm's OpenAI-compatible HTTP door with the openai SDK "
        "(e.g. http://127.0.0.1:8080)",
    )


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    session = Session.from_env(args.key, args.timeout)
    try:
        data, columns = args.func(session, args)
        if data is not None:
            emit(data, as_json=args.json, columns=columns)
        return 0
    except grpc.RpcError as err:
        print(f"error: {describe(err)}", file=sys.stderr)
        return exit_code(err)
    except CliError as err:
        print(f"error: {err}", file=sys.stderr)
        return err.code
    except KeyboardInterrupt:
        return 130
    finally:
        session.close()
