"""A streamed answer put back together: choice deltas (text, refusal, tool-call
fragments) into whole choices, the same ones a unary call returns. Standard library only."""

from __future__ import annotations

from dataclasses import dataclass, field

from llm_svc.domain import Choice, ChoiceDelta, Completion, StreamChunk, ToolCall, Usage


@dataclass
class _Call:
    id: str = ""
    name: str = ""
    arguments: list[str] = field(default_factory=list)


@dataclass
class _Choice:
    content: list[str] = field(default_factory=list)
    refusal: list[str] = field(default_factory=list)
    calls: dict[int, _Call] = field(default_factory=dict)
    finish_reason: str = ""


class StreamAssembly:
    def __init__(self) -> None:
        self._choices: dict[int, _Choice] = {}
        self.usage = Usage()

    def add(self, chunk: StreamChunk) -> list[ChoiceDelta]:
        """Takes a chunk in; returns its deltas worth sending on (those that carry text,
        a refusal or tool-call fragments)."""
        if chunk.usage is not None:
            self.usage = chunk.usage
        for d in chunk.choices:
            c = self._choices.setdefault(d.index, _Choice())
            c.content.append(d.content)
            c.refusal.append(d.refusal)
            c.finish_reason = d.finish_reason or c.finish_reason
            for t in d.tool_calls:
                call = c.calls.setdefault(t.index, _Call())
                call.id = call.id or t.id
                call.name = call.name or t.name
                call.arguments.append(t.arguments)
        return [d for d in chunk.choices if d.carries]

    def completion(self, finish_reason: str = "") -> Completion:
        """What was received so far; ``finish_reason`` overrides every choice's (e.g.
        "cancelled")."""
        choices = tuple(
            Choice(
                index=i,
                content="".join(c.content),
                refusal="".join(c.refusal),
                tool_calls=tuple(
                    ToolCall(call.id, call.name, "".join(call.arguments))
                    for _, call in sorted(c.calls.items())
                ),
                finish_reason=finish_reason or c.finish_reason,
            )
            for i, c in sorted(self._choices.items())
        )
        if not choices:
            return Completion("", finish_reason, self.usage)
        return Completion.of(choices, self.usage)
