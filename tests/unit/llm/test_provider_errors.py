"""How provider failures map to statuses (issue 13, finding 6): the SDK's aiohttp
transport reports a refused or reset connection as a timeout; the OS error underneath
decides."""

from __future__ import annotations

import httpx2
import openai

from llm_svc.provider import _failed


def _timeout_caused_by(cause: BaseException) -> openai.APITimeoutError:
    request = httpx2.Request("POST", "http://127.0.0.1:9/v1/chat/completions")
    inner = httpx2.ConnectTimeout(str(cause))
    inner.__cause__ = cause
    outer = openai.APITimeoutError(request)
    outer.__cause__ = inner
    return outer


def test_refused_connection_is_unavailable() -> None:
    error = _failed("m", _timeout_caused_by(ConnectionRefusedError(111, "refused")))
    assert (error.code_name, error.reason) == ("UNAVAILABLE", "PROVIDER_UNAVAILABLE")


def test_reset_connection_is_unavailable() -> None:
    error = _failed("m", _timeout_caused_by(ConnectionResetError(104, "reset")))
    assert (error.code_name, error.reason) == ("UNAVAILABLE", "PROVIDER_UNAVAILABLE")


def test_real_timeouts_stay_deadline_exceeded() -> None:
    for exc in (TimeoutError(), _timeout_caused_by(TimeoutError("connect timed out"))):
        error = _failed("m", exc)
        assert (error.code_name, error.reason) == ("DEADLINE_EXCEEDED", "PROVIDER_TIMEOUT")
