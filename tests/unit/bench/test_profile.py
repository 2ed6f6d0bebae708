"""py-spy collapsed stacks summarised into self / inclusive shares."""

import pytest

from bench.profile import top_frames


def test_top_frames_self_and_total():
    collapsed = "\n".join(
        [
            "main (a.py:1);handle (b.py:2);encode (c.py:3) 6",
            "main (a.py:1);handle (b.py:2) 2",
            "main (a.py:1);poll (d.py:4) 2",
            "garbage line",
        ]
    )
    top = top_frames(collapsed, limit=2)
    assert [t["frame"] for t in top] == ["encode (c.py)", "handle (b.py)"]
    assert top[0]["self_pct"] == pytest.approx(60.0)
    assert top[1]["total_pct"] == pytest.approx(80.0)
    assert top_frames("") == []


def test_lines_fold_into_functions_and_filter_by_package():
    collapsed = "\n".join(
        [
            "run (asyncio/runners.py:118);Chat (llm_svc/servicer.py:30);post (openai/x.py:9) 3",
            "run (asyncio/runners.py:118);Chat (llm_svc/servicer.py:31) 1",
        ]
    )
    top = top_frames(collapsed, by="total", only=("llm_svc/",))
    assert top == [{"frame": "Chat (llm_svc/servicer.py)", "self_pct": 25.0, "total_pct": 100.0}]
