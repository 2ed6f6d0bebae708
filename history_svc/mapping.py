"""proto <-> domain for history."""

from __future__ import annotations

from gateway_common.errors import InvalidArgument
from gateway_common.protoconv import (
    dict_to_struct,
    from_timestamp,
    struct_to_dict,
    timestamp_value,
    to_timestamp,
)
from history_svc.domain import (
    Bucket,
    Erasure,
    Filter,
    GroupBy,
    Interaction,
    Metadata,
    Outcome,
    RecordResult,
    Status,
)
from llmgw.history.v1 import history_pb2 as pb

_STATUS_IN = {
    pb.INTERACTION_STATUS_UNSPECIFIED: Status.OK,
    pb.INTERACTION_STATUS_OK: Status.OK,
    pb.INTERACTION_STATUS_ERROR: Status.ERROR,
    pb.INTERACTION_STATUS_CANCELLED: Status.CANCELLED,
}
_STATUS_OUT = {
    Status.OK: pb.INTERACTION_STATUS_OK,
    Status.ERROR: pb.INTERACTION_STATUS_ERROR,
    Status.CANCELLED: pb.INTERACTION_STATUS_CANCELLED,
}
GROUP_BY = {
    pb.GROUP_BY_DAY: GroupBy.DAY,
    pb.GROUP_BY_USER: GroupBy.USER,
    pb.GROUP_BY_MODEL: GroupBy.MODEL,
}


_OUTCOME_OUT = {
    Outcome.CREATED: pb.RECORD_OUTCOME_CREATED,
    Outcome.DUPLICATE: pb.RECORD_OUTCOME_DUPLICATE,
    Outcome.ERASED: pb.RECORD_OUTCOME_ERASED,
    Outcome.REJECTED: pb.RECORD_OUTCOME_REJECTED,
}


def record_entry(msg: pb.Interaction) -> Interaction | RecordResult:
    """The interaction to record, or its rejection when it cannot even be read."""
    if not msg.HasField("timestamp"):
        return RecordResult(
            msg.interaction_id,
            Outcome.REJECTED,
            "FIELD_REQUIRED",
            "interaction.timestamp: required",
        )
    try:
        return interaction_in(msg)
    except InvalidArgument as exc:
        return RecordResult(msg.interaction_id, Outcome.REJECTED, exc.reason, exc.message)


def record_result_out(result: RecordResult) -> pb.RecordResult:
    return pb.RecordResult(
        interaction_id=result.interaction_id,
        outcome=_OUTCOME_OUT[result.outcome],
        reason=result.reason,
        message=result.message,
    )


def erasure_out(erasure: Erasure) -> pb.Erasure:
    return pb.Erasure(
        tenant_id=erasure.tenant_id,
        user_id=erasure.user_id,
        erase_time=to_timestamp(erasure.erase_time),
    )


def interaction_in(msg: pb.Interaction) -> Interaction:
    """The interaction to record (its timestamp is set)."""
    meta = msg.metadata
    return Interaction(
        interaction_id=msg.interaction_id,
        tenant_id=msg.tenant_id,
        user_id=msg.user_id,
        timestamp=timestamp_value(msg.timestamp, "interaction.timestamp"),
        subscription_id=msg.subscription_id,
        model_id=msg.model_id,
        model_name=msg.model_name,
        question=msg.question,
        answer=msg.answer,
        metadata=Metadata(
            tokens_used=meta.tokens_used,
            response_time_ms=meta.response_time_ms,
            prompt_parameters=struct_to_dict(
                meta.prompt_parameters, "interaction.metadata.prompt_parameters"
            ),
            prompt_tokens=meta.prompt_tokens,
            completion_tokens=meta.completion_tokens,
        ),
        status=_STATUS_IN.get(msg.status, Status.OK),
        error_reason=msg.error_reason,
        request_id=msg.request_id,
        finish_reason=msg.finish_reason,
        answer_truncated=msg.answer_truncated,
    )


def interaction_out(item: Interaction) -> pb.Interaction:
    meta = item.metadata
    return pb.Interaction(
        interaction_id=item.interaction_id,
        tenant_id=item.tenant_id,
        user_id=item.user_id,
        subscription_id=item.subscription_id,
        model_id=item.model_id,
        model_name=item.model_name,
        timestamp=to_timestamp(item.timestamp),
        question=item.question,
        answer=item.answer,
        metadata=pb.InteractionMetadata(
            tokens_used=meta.tokens_used,
            response_time_ms=meta.response_time_ms,
            prompt_parameters=dict_to_struct(meta.prompt_parameters),
            prompt_tokens=meta.prompt_tokens,
            completion_tokens=meta.completion_tokens,
        ),
        status=_STATUS_OUT[item.status],
        error_reason=item.error_reason,
        request_id=item.request_id,
        finish_reason=item.finish_reason,
        answer_truncated=item.answer_truncated,
    )


def list_filter(req: pb.ListInteractionsRequest) -> Filter:
    return Filter(
        tenant_id=req.tenant_id,
        user_id=req.user_id,
        model_id=req.model_id,
        start=from_timestamp(req, "start_time"),
        end=from_timestamp(req, "end_time"),
    )


def search_filter(req: pb.SearchInteractionsRequest) -> Filter:
    return Filter(
        tenant_id=req.tenant_id,
        user_id=req.user_id,
        start=from_timestamp(req, "start_time"),
        end=from_timestamp(req, "end_time"),
        text=req.query,
    )


def stats_filter(req: pb.GetUsageStatsRequest) -> Filter:
    return Filter(
        tenant_id=req.tenant_id,
        user_id=req.user_id,
        start=from_timestamp(req, "start_time"),
        end=from_timestamp(req, "end_time"),
    )


def bucket_out(bucket: Bucket) -> pb.UsageStatsBucket:
    return pb.UsageStatsBucket(
        key=bucket.key,
        interactions=bucket.interactions,
        tokens=bucket.tokens,
        prompt_tokens=bucket.prompt_tokens,
        completion_tokens=bucket.completion_tokens,
        average_latency_ms=bucket.average_latency_ms,
        errors=bucket.errors,
        cost_nanos=bucket.cost_nanos,
    )


def encoded_size(item: Interaction) -> int:
    """The bytes ``item`` takes in a list or search answer (for the page byte budget)."""
    return interaction_out(item).ByteSize()
