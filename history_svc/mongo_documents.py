"""Interactions <-> documents of the collection ``interacoes`` (field names from the spec)."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from history_svc.domain import Attempt, Erasure, Interaction, Metadata, Status, erasure_key

Document = dict[str, Any]

# Servers that keep documents as PostgreSQL jsonb (FerretDB's PostgreSQL backend) cannot
# store U+0000. There, texts are stored with a reversible escape: U+E000 (private use) is
# the escape character, "\ue000\ue000" stands for itself and "\ue0000" for U+0000.
_ESC = "\ue000"
_ESCAPED = re.compile(_ESC + "(.)", re.DOTALL)


def escape_text(text: str) -> str:
    return text.replace(_ESC, _ESC + _ESC).replace("\x00", _ESC + "0")


def unescape_text(text: str) -> str:
    return _ESCAPED.sub(lambda m: "\x00" if m.group(1) == "0" else m.group(1), text)


def _map_strings(value: Any, fn: Callable[[str], str]) -> Any:
    if isinstance(value, str):
        return fn(value)
    if isinstance(value, dict):
        return {fn(k): _map_strings(v, fn) for k, v in value.items()}
    if isinstance(value, list):
        return [_map_strings(v, fn) for v in value]
    return value


def _same(text: str) -> str:
    return text


def to_document(item: Interaction, escape: bool = False) -> Document:
    meta = item.metadata
    enc = escape_text if escape else _same
    return {
        "_id": item.interaction_id,
        "interacao_id": item.interaction_id,
        "distribuidor_id": item.tenant_id,
        "usuario_id": item.user_id,
        "assinatura_id": item.subscription_id,
        "llm_id": item.model_id,
        "nome_modelo": enc(item.model_name),
        "timestamp": item.timestamp,
        "dia": item.day,
        "conteudo_pergunta": enc(item.question),
        "conteudo_resposta": enc(item.answer),
        "metadados": {
            "tokens_utilizados": meta.tokens_used,
            "tempo_resposta_ms": meta.response_time_ms,
            "parametros_prompt": _map_strings(meta.prompt_parameters, enc),
            "tokens_prompt": meta.prompt_tokens,
            "tokens_resposta": meta.completion_tokens,
            "implantacao_id": meta.deployment_id,
            "modelo_resposta": enc(meta.answered_model),
            "tentativas": [
                {
                    "implantacao_id": a.deployment_id,
                    "modelo": enc(a.model),
                    "status": a.status,
                    "http_status": a.http_status,
                    "latencia_ms": a.latency_ms,
                }
                for a in meta.attempts
            ],
            "custo_nanos": meta.cost_nanos,
        },
        "status": item.status.value,
        "motivo_erro": enc(item.error_reason),
        "request_id": item.request_id,
        "motivo_parada": item.finish_reason,
        "resposta_truncada": item.answer_truncated,
    }


def from_document(doc: Document, escape: bool = False) -> Interaction:
    meta = doc.get("metadados") or {}
    dec = unescape_text if escape else _same
    return Interaction(
        interaction_id=doc["interacao_id"],
        tenant_id=doc["distribuidor_id"],
        user_id=doc["usuario_id"],
        timestamp=doc["timestamp"],
        subscription_id=doc.get("assinatura_id", ""),
        model_id=doc.get("llm_id", ""),
        model_name=dec(doc.get("nome_modelo", "")),
        question=dec(doc.get("conteudo_pergunta", "")),
        answer=dec(doc.get("conteudo_resposta", "")),
        metadata=Metadata(
            tokens_used=int(meta.get("tokens_utilizados", 0)),
            response_time_ms=int(meta.get("tempo_resposta_ms", 0)),
            prompt_parameters=dict(_map_strings(meta.get("parametros_prompt") or {}, dec)),
            prompt_tokens=int(meta.get("tokens_prompt", 0)),
            completion_tokens=int(meta.get("tokens_resposta", 0)),
            deployment_id=meta.get("implantacao_id", ""),
            answered_model=dec(meta.get("modelo_resposta", "")),
            attempts=tuple(
                Attempt(
                    a.get("implantacao_id", ""),
                    dec(a.get("modelo", "")),
                    a.get("status", ""),
                    int(a.get("http_status", 0)),
                    int(a.get("latencia_ms", 0)),
                )
                for a in meta.get("tentativas") or ()
            ),
            cost_nanos=int(meta.get("custo_nanos", 0)),
        ),
        status=Status(doc.get("status", "ok")),
        error_reason=dec(doc.get("motivo_erro", "")),
        request_id=doc.get("request_id", ""),
        finish_reason=doc.get("motivo_parada", ""),
        answer_truncated=bool(doc.get("resposta_truncada", False)),
    )


def erasure_document(erasure: Erasure) -> Document:
    return {
        "_id": erasure_key(erasure.tenant_id, erasure.user_id),
        "distribuidor_id": erasure.tenant_id,
        "usuario_id": erasure.user_id,
        "apagado_em": erasure.erase_time,
    }


def erasure_from_document(doc: Document) -> Erasure:
    return Erasure(doc["distribuidor_id"], doc["usuario_id"], doc["apagado_em"])
