"""A true upper bound of a call's tokens, without a tokenizer (no vocabulary download):
what quota's Reserve holds against a monthly token budget. Standard library only.

- prompt: every byte-level BPE token (OpenAI's, Llama's, Mistral's...) encodes at least one
  byte, so a text has at most as many tokens as UTF-8 bytes. To the bytes of every message
  (text, name, refusal, tool calls, tool call ids) and of the tool definitions and
  response format sent, add ``PER_MESSAGE`` per message (the chat template's framing:
  OpenAI documents 3 to 4), ``PRIMING`` for the reply, and ``PER_IMAGE`` per image part
  (an image costs tokens its URL's bytes do not bound: OpenAI's largest high-detail image
  is under 1,600 tokens);
- completion: n (choices) x the call's max tokens (max_tokens or max_completion_tokens,
  whichever is lower, after the tenant's own token limit). With a token budget quota lowers
  that cap to what the budget leaves, and the call is sent with the lowered cap.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from llm_svc.domain import ChatRequest

PER_MESSAGE = 4
PRIMING = 3
PER_IMAGE = 1600
_PROMPT_PARAMETERS = ("tools", "tool_choice", "response_format", "functions", "prediction")


@dataclass(frozen=True)
class Hold:
    """What Reserve needs to hold tokens and check the plan: the model asked, the prompt's
    bound, the completions asked (0 for none) and the cap per completion (0: none)."""

    model: str = ""
    prompt_bound: int = 0
    choices: int = 1
    max_tokens: int = 0


def chat_hold(request: ChatRequest, parameters: dict[str, Any]) -> Hold:
    """``parameters``: what the provider is sent (after the tenant's own token limit)."""
    size = PRIMING
    for m in request.messages:
        size += PER_MESSAGE + m.text_bytes() + len(m.name.encode())
        size += len(m.tool_call_id.encode()) + PER_IMAGE * len(m.images)
        size += sum(len(c.id.encode()) + len(c.name.encode()) for c in m.tool_calls)
    for key in _PROMPT_PARAMETERS:
        if key in parameters:
            size += len(json.dumps(parameters[key], ensure_ascii=False).encode())
    n = parameters.get("n")
    return Hold(
        request.model, size, n if isinstance(n, int) and n > 0 else 1, asked_cap(parameters)
    )


def embed_hold(model: str, inputs: tuple[str, ...]) -> Hold:
    """An embeddings call: its inputs' bytes, no completion."""
    return Hold(model, sum(len(t.encode()) for t in inputs), 0, 0)


def asked_cap(parameters: dict[str, Any]) -> int:
    """The completion cap the call asks for (the lower of both names); 0 for none."""
    caps = [
        v
        for k in ("max_tokens", "max_completion_tokens")
        if isinstance(v := parameters.get(k), int) and not isinstance(v, bool) and v > 0
    ]
    return min(caps) if caps else 0
