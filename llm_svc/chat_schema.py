"""The chat completion schema: which request parameters exist, which we carry, ignore or
refuse, and the provider call's parameters built from a checked request. Standard library
only.

A request's ``parameters`` Struct uses OpenAI's names. A name of the chat schema with a
typed field of its own (seed, tools, ...) fills that field when the request left it unset,
and is checked with it; the rest of the schema is passed on as given (after the JSON
checks) or ignored; a name outside the schema is refused unless the tenant's model
configuration allows it as an extra; a few names are refused always.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from gateway_common.errors import FieldViolation, InvalidArgument
from llm_svc import request_checks as checks
from llm_svc.domain import ChatRequest, ResolvedModel

# Never settable by a request (nor by a tenant's allowed extras): we set them ourselves,
# or they would redirect the call or its credential.
FORBIDDEN = frozenset(
    {
        "model",
        "messages",
        "stream",
        "api_key",
        "base_url",
        "organization",
        "project",
        "extra_headers",
        "extra_query",
        "extra_body",
        "headers",
        "timeout",
    }
)
# In the schema but meaningless through the gateway: accepted and dropped (so SDKs that
# send them keep working). stream_options is ours to set (usage is always asked).
IGNORED = frozenset(
    {
        "store",
        "metadata",
        "service_tier",
        "stream_options",
        "prompt_cache_key",
        "prompt_cache_retention",
        "prompt_cache_options",
        "modalities",
        "audio",
    }
)
# In the schema, refused with a hint: their answers have no place in our response.
UNSUPPORTED = {
    "functions": "deprecated by OpenAI: use tools",
    "function_call": "deprecated by OpenAI: use tool_choice",
}
# In the schema, passed on as given (after the JSON checks).
PASSTHROUGH = frozenset(
    {"verbosity", "prediction", "web_search_options", "safety_identifier", "moderation"}
)
# The rest of the schema has typed request fields (request_checks.PARSERS).
CHAT_SCHEMA = (
    (FORBIDDEN & {"model", "messages", "stream"})
    | IGNORED
    | set(UNSUPPORTED)
    | PASSTHROUGH
    | set(checks.PARSERS)
)

MAX_PARAMETERS_BYTES = 32 * 1024


def provider_parameters(request: ChatRequest, model: ResolvedModel) -> dict[str, Any]:
    """The provider call's parameters (model, messages and stream apart): the tenant's
    defaults, under the request's passed-on parameters, under its typed fields (those
    given in ``parameters`` included); both token caps lowered to the tenant's limit.
    Raises InvalidArgument naming every refused parameter."""
    request, passed = merge_parameters(request, model.allowed_extras)
    checks.check(request)
    body: dict[str, Any] = {}
    for key, value in model.extra_parameters.items():
        if key not in FORBIDDEN and key not in IGNORED:
            body[key] = _integral(value)
    body.update(passed)
    body.update(checks.wire_fields(request))
    cap_tokens(body, model.token_limit)
    return body


def merge_parameters(
    request: ChatRequest, allowed_extras: frozenset[str]
) -> tuple[ChatRequest, dict[str, Any]]:
    """The request with its typed fields filled from ``parameters``, and the parameters
    to pass on as they are."""
    params = request.parameters
    _check_size(params)
    violations: list[FieldViolation] = []
    fill: dict[str, Any] = {}
    passed: dict[str, Any] = {}
    for key, value in params.items():
        path = f"parameters.{key}"
        if key in FORBIDDEN:
            violations.append(FieldViolation(path, "may not be set by a request"))
        elif key in UNSUPPORTED:
            violations.append(FieldViolation(path, UNSUPPORTED[key]))
        elif key in IGNORED:
            continue
        elif key in checks.PARSERS:
            attr, parse = checks.PARSERS[key]
            try:
                parsed = parse(value, path)
            except InvalidArgument as exc:
                violations.extend(exc.violations)
                continue
            if _unset(getattr(request, attr)):
                fill[attr] = parsed
        elif key in PASSTHROUGH or key in allowed_extras:
            problem = checks.json_problem(value)
            if problem:
                violations.append(FieldViolation(path, problem))
            else:
                passed[key] = _integral(value)
        else:
            violations.append(FieldViolation(path, "not a chat completion parameter"))
    if violations:
        names = ", ".join(v.field for v in violations)
        raise InvalidArgument(f"refused parameters: {names}", "INVALID_PARAMETERS", violations)
    return dataclasses.replace(request, **fill), passed


def _check_size(params: dict[str, Any]) -> None:
    size = checks.json_size(params)
    if size > MAX_PARAMETERS_BYTES:
        raise InvalidArgument.field("parameters", f"at most {MAX_PARAMETERS_BYTES} bytes of JSON")
    problem = checks.json_problem(params)
    if problem:
        raise InvalidArgument.field("parameters", problem)


def cap_tokens(body: dict[str, Any], limit: int | None) -> None:
    """A token limit (the tenant's, or what a token budget leaves) lowers both caps
    (never refuses); with neither asked, max_tokens is set to it."""
    if limit is None or limit <= 0:
        return
    asked = [k for k in ("max_tokens", "max_completion_tokens") if isinstance(body.get(k), int)]
    for key in asked:
        body[key] = min(body[key], limit)
    if not asked:
        body["max_tokens"] = limit


def _unset(value: Any) -> bool:
    return value is None or value == "" or value == () or value == {}


def _integral(value: Any) -> Any:
    """JSON Struct numbers are floats; 1000.0 means the integer the provider expects."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, dict):
        return {k: _integral(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_integral(v) for v in value]
    return value
