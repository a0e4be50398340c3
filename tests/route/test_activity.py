"""What counts as a person using an environment."""

from __future__ import annotations

import pytest
from streamlit.proto.BackMsg_pb2 import BackMsg

from functions.route.activity import ActivityRecorder, is_person_message, is_person_request


def msg(**kw) -> bytes:
    m = BackMsg()
    for key, value in kw.items():
        if key == "rerun":
            m.rerun_script.query_string = "x=1"
            m.rerun_script.is_auto_rerun = value == "auto"
            m.rerun_script.widget_states.widgets.add().id = "slider-1"
        else:
            setattr(m, key, value)
    return m.SerializeToString()


@pytest.mark.parametrize("data,person", [
    (msg(rerun="click"), True),
    (msg(rerun="auto"), False),
    (msg(app_heartbeat=True), False),
    (msg(stop_script=True), True),
    (msg(clear_cache=True), True),
    (msg(load_git_info=True), False),
    (b"", False),
    (b"\xff\xff\xff", False),
    (b"\x5a\x10\x00", False),  # length past the end
    (b"not protobuf at all", False),
])
def test_websocket_messages(data, person):
    assert is_person_message(data) is person


@pytest.mark.parametrize("rest,person", [
    ("/", True), ("/static/js/main.js", True), ("/_stcore/upload_file/x", True),
    ("/_stcore/health", False), ("/_stcore/host-config", False), ("/_stcore/stream", False),
])
def test_http_requests(rest, person):
    assert is_person_request(rest) is person


class CountingStore:
    def __init__(self):
        self.writes = []

    def touch_activity(self, env_id, at, *, min_interval):
        self.writes.append(env_id)
        return True


def test_recorder_writes_at_most_once_per_interval():
    now = [1000.0]
    store = CountingStore()
    rec = ActivityRecorder(store, interval=60, clock=lambda: now[0])
    for _ in range(100):
        rec.record("a")
    rec.record("b")
    now[0] += 61
    rec.record("a")
    rec.close()
    assert sorted(store.writes) == ["a", "a", "b"]
