"""Quota (plans, subscriptions, usage), history (list, search, stats) and chat."""

from __future__ import annotations

import argparse
import sys
from datetime import UTC, datetime, timedelta
from typing import Any

from google.protobuf import timestamp_pb2

from gatewayctl import chat_file, http_chat
from gatewayctl.admin import Result, pages, rid, tenant_of, user_of
from gatewayctl.client import CliError, Session
from gatewayctl.output import as_dict
from llmgw.history.v1 import history_pb2 as hpb
from llmgw.history.v1 import history_pb2_grpc as hrpc
from llmgw.llm.v1 import llm_pb2 as lpb
from llmgw.llm.v1 import llm_pb2_grpc as lrpc
from llmgw.quota.v1 import quota_pb2 as qpb
from llmgw.quota.v1 import quota_pb2_grpc as qrpc

PLAN_COLS = ["plan_id", "name", "tenant_id", "monthly_request_limit", "description"]
SUB_COLS = [
    "subscription_id",
    "user_id",
    "plan_id",
    "requests_used_this_month",
    "start_time",
    "end_time",
]
INTERACTION_COLS = [
    "timestamp",
    "interaction_id",
    "user_id",
    "model_name",
    "status",
    "question",
    "answer",
]
STATS_COLS = [
    "key",
    "interactions",
    "tokens",
    "prompt_tokens",
    "completion_tokens",
    "average_latency_ms",
    "errors",
]
GROUPS = {"day": hpb.GROUP_BY_DAY, "user": hpb.GROUP_BY_USER, "model": hpb.GROUP_BY_MODEL}


def quota(s: Session) -> qrpc.QuotaServiceStub:
    return qrpc.QuotaServiceStub(s.channel("quota"))


def plans(s: Session, a: argparse.Namespace) -> Result:
    st = quota(s)
    if a.action == "create":
        p = qpb.Plan(
            tenant_id=a.tenant,
            name=a.name,
            monthly_request_limit=a.limit,
            description=a.description,
        )
        return as_dict(
            s.call(st.CreatePlan, qpb.CreatePlanRequest(plan=p, request_id=rid(a))).plan
        ), []
    if a.action == "list":
        return pages(s, st.ListPlans, qpb.ListPlansRequest(tenant_id=a.tenant), "plans", a)[
            0
        ], PLAN_COLS
    if a.action == "get":
        return as_dict(s.call(st.GetPlan, qpb.GetPlanRequest(plan_id=a.id)).plan), []
    s.call(st.DeletePlan, qpb.DeletePlanRequest(plan_id=a.id))
    return {"deleted": a.id}, []


def subscriptions(s: Session, a: argparse.Namespace) -> Result:
    req: Any
    st = quota(s)
    tenant = tenant_of(s, a)
    if a.action == "create":
        req = qpb.CreateSubscriptionRequest(
            tenant_id=tenant, user_id=a.user, plan_id=a.plan, request_id=rid(a)
        )
        return as_dict(s.call(st.CreateSubscription, req).subscription), []
    if a.action == "list":
        req = qpb.ListSubscriptionsRequest(tenant_id=tenant, user_id=a.user, active_only=a.active)
        return pages(s, st.ListSubscriptions, req, "subscriptions", a)[0], SUB_COLS
    if a.action == "get":
        req = qpb.GetSubscriptionRequest(tenant_id=tenant, subscription_id=a.id)
        return as_dict(s.call(st.GetSubscription, req).subscription), []
    if a.action == "change-plan":
        req = qpb.ChangeSubscriptionPlanRequest(
            tenant_id=tenant, subscription_id=a.id, plan_id=a.plan, request_id=rid(a)
        )
        return as_dict(s.call(st.ChangeSubscriptionPlan, req).subscription), []
    req = qpb.EndSubscriptionRequest(tenant_id=tenant, subscription_id=a.id, request_id=rid(a))
    return as_dict(s.call(st.EndSubscription, req).subscription), []


def usage(s: Session, a: argparse.Namespace) -> Result:
    req = qpb.GetUsageRequest(tenant_id=tenant_of(s, a), user_id=user_of(s, a))
    return as_dict(s.call(quota(s).GetUsage, req)), []


DEAD_LETTER_COLS = ["id", "tenant_id", "user_id", "attempts", "failure_class", "last_error"]


def dead_letters(s: Session, a: argparse.Namespace) -> Result:
    """Settlement records history refused for good (platform admins): list or retry."""
    st = quota(s)
    if a.action == "list":
        req = qpb.ListDeadLettersRequest()
        return pages(s, st.ListDeadLetters, req, "dead_letters", a)[0], DEAD_LETTER_COLS
    reply = s.call(st.RetryDeadLetters, qpb.RetryDeadLettersRequest(ids=a.ids))
    return {"retried": reply.retried}, []


def _ts(when: datetime) -> timestamp_pb2.Timestamp:
    ts = timestamp_pb2.Timestamp()
    ts.FromDatetime(when)
    return ts


def history(s: Session, a: argparse.Namespace) -> Result:
    req: Any
    st = hrpc.HistoryServiceStub(s.channel("history"))
    tenant = tenant_of(s, a)
    user = user_of(s, a)
    if a.action == "list":
        req = hpb.ListInteractionsRequest(tenant_id=tenant, user_id=user, model_id=a.model_id)
        return pages(s, st.ListInteractions, req, "interactions", a)[0], INTERACTION_COLS
    if a.action == "search":
        req = hpb.SearchInteractionsRequest(tenant_id=tenant, query=a.query, user_id=user)
        return pages(s, st.SearchInteractions, req, "interactions", a)[0], INTERACTION_COLS
    if a.action == "get":
        req = hpb.GetInteractionRequest(tenant_id=tenant, interaction_id=a.id)
        return as_dict(s.call(st.GetInteraction, req).interaction), []
    end = datetime.now(UTC) + timedelta(minutes=1)
    req = hpb.GetUsageStatsRequest(
        tenant_id=tenant,
        start_time=_ts(end - timedelta(days=a.days)),
        end_time=_ts(end),
        group_by=GROUPS[a.group_by],
        user_id=user,
    )
    reply = s.call(st.GetUsageStats, req)
    rows = [as_dict(b) for b in reply.buckets] + [{**as_dict(reply.total), "key": "TOTAL"}]
    return rows, STATS_COLS


def chat(s: Session, a: argparse.Namespace) -> Result:
    """Streams to the terminal (or waits for the whole answer with --no-stream); with
    --file, the messages, tools and parameters of an OpenAI-shaped JSON file (the
    message words, if any, are appended as a user message). Tool calls are printed.
    With --http, the same through the HTTP door (gatewayctl.http_chat)."""
    if a.http:
        http_chat.chat(a, s.api_key, s.timeout)
        return None, []
    st = lrpc.LlmServiceStub(s.channel("llm"))
    fields: dict[str, Any] = chat_file.request_fields(chat_file.load(a.file)) if a.file else {}
    msgs = fields.setdefault("messages", [])
    if a.system:
        msgs.insert(0, lpb.Message(role=lpb.MESSAGE_ROLE_SYSTEM, content=a.system))
    if a.message:
        msgs.append(lpb.Message(role=lpb.MESSAGE_ROLE_USER, content=" ".join(a.message)))
    if not msgs:
        raise CliError("nothing to send: give a message or --file", 2)
    fields |= {"model": a.model, "idempotency_key": a.idempotency_key}
    for name in ("temperature", "max_tokens", "top_p"):
        if getattr(a, name) is not None:
            fields[name] = getattr(a, name)
    if a.no_stream or a.json:
        reply = s.call(st.Chat, lpb.ChatRequest(**fields))
        if a.json:
            return as_dict(reply), []
        chat_file.print_answer(reply)
        _footer(reply)
        return None, []
    streamed = False
    for event in s.call(st.ChatStream, lpb.ChatStreamRequest(**fields)):
        kind = event.WhichOneof("event")
        if kind == "delta":
            sys.stdout.write(event.delta)
            sys.stdout.flush()
            streamed = True
        elif kind == "done":
            if streamed:
                print()
            chat_file.print_answer(event.done, text_printed=streamed)
            _footer(event.done)
    return None, []


def _footer(reply: lpb.ChatResponse) -> None:
    u = reply.usage
    print(
        f"[{reply.model} · {u.prompt_tokens}+{u.completion_tokens} tokens · "
        f"{reply.latency_ms} ms · {reply.interaction_id}]",
        file=sys.stderr,
    )


def llm_models(s: Session, a: argparse.Namespace) -> Result:
    st = lrpc.LlmServiceStub(s.channel("llm"))
    reply = s.call(st.ListModels, lpb.ListModelsRequest(page_size=a.page_size))
    return [as_dict(m) for m in reply.models], ["name", "provider", "global", "description"]
