"""The count of open WatchAlerts streams (services/monitoring/entrypoints/watch_streams.py)."""

from __future__ import annotations

import pytest

from services.monitoring.entrypoints.watch_streams import StreamRefused, WatchStreams


def test_per_identity_bound_then_the_total_one_and_a_closed_stream_frees_its_place():
    streams = WatchStreams(per_identity=2, most=3)
    a1, a2 = streams.open("a"), streams.open("a")
    with pytest.raises(StreamRefused, match="MONITORING_WATCH_STREAMS_PER_IDENTITY=2") as e:
        streams.open("a")
    assert "每个身份的上限 2 个" in str(e.value) and "'a'" in str(e.value)
    streams.open("b")
    with pytest.raises(StreamRefused, match="MONITORING_WATCH_STREAMS_MAX=3") as e:
        streams.open("c")
    assert "总上限 3 个" in str(e.value)
    a1.close()
    a1.close()  # once however often: the done callback and the generator's finally both close
    assert streams.total == 2 and streams.by_identity == {"a": 1, "b": 1}
    streams.open("c")
    a2.close()
    assert streams.by_identity == {"b": 1, "c": 1}
    streams.open("a")
