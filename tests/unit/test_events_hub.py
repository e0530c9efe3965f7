"""EventHub: one bus socket fanned out to many clients, each with a bounded buffer."""

from __future__ import annotations

import asyncio

import pytest

from dagu.events import EventPublisher, run_event, step_event
from dagu.status import NodeStatus, RunStatus
from web.errors import ApiError
from web.events import EventFilter, EventHub


async def _until(predicate, what: str, timeout: float = 10.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not predicate():
        assert asyncio.get_running_loop().time() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.01)


def test_one_socket_fans_out_to_matching_clients_with_growing_ids(tmp_path):
    async def scenario():
        hub = EventHub(tmp_path / "events")
        every = hub.connect(EventFilter())
        runs_only = hub.connect(EventFilter(types=frozenset({"run"})))
        assert len(list((tmp_path / "events").iterdir())) == 1
        with EventPublisher(tmp_path / "events") as pub:
            pub.publish(run_event("etl", "r1", RunStatus.RUNNING))
            pub.publish(step_event("etl", "r1", "a", NodeStatus.RUNNING))
            pub.publish(run_event("etl", "r1", RunStatus.SUCCEEDED))
        await _until(lambda: every.queue.qsize() == 3, "three events for the unfiltered client")
        got = [every.queue.get_nowait() for _ in range(3)]
        assert [i for i, _ in got] == [1, 2, 3]
        assert [(i, e["statusLabel"]) for i, e in (runs_only.queue.get_nowait() for _ in range(2))] == [(1, "running"), (3, "succeeded")]
        hub.disconnect(every)
        assert hub.snapshot().subscribed
        hub.disconnect(runs_only)
        assert not hub.snapshot().subscribed and list((tmp_path / "events").iterdir()) == []

    asyncio.run(scenario())


def test_a_client_that_falls_behind_is_dropped_and_its_buffer_freed(tmp_path):
    async def scenario():
        hub = EventHub(tmp_path / "events", client_buffer=5)
        slow = hub.connect(EventFilter())
        fast = hub.connect(EventFilter())
        seen = []

        async def read_fast():
            while len(seen) < 8:
                seen.append(await fast.queue.get())

        reader = asyncio.create_task(read_fast())
        with EventPublisher(tmp_path / "events") as pub:
            for i in range(8):
                pub.publish(run_event("etl", f"r{i}", RunStatus.RUNNING))
                await asyncio.sleep(0.01)  # let the loop deliver, as a live server would
        await asyncio.wait_for(reader, 10)
        assert [e["dagRunId"] for _, e in seen] == [f"r{i}" for i in range(8)]
        # NOTE: the slow client read nothing; its 5 buffered events are gone, only the drop notice is left.
        assert slow.queue.qsize() == 1 and slow.queue.get_nowait() is None
        snap = hub.snapshot()
        assert (snap.clients, snap.dropped_clients) == (1, 1)
        hub.disconnect(fast)

    asyncio.run(scenario())


def test_a_run_id_filter_also_matches_sub_dag_runs_under_that_root():
    flt = EventFilter(run_id="root1")
    assert flt.matches({"type": "step", "dagName": "child", "dagRunId": "sub9", "rootDagRunId": "root1"})
    assert flt.matches({"type": "run", "dagName": "parent", "dagRunId": "root1"})
    assert not flt.matches({"type": "run", "dagName": "parent", "dagRunId": "root2"})


def test_types_may_be_comma_separated_or_repeated_and_unknown_ones_are_refused():
    assert EventFilter.from_query(None, None, ["run,step"]).types == {"run", "step"}
    assert EventFilter.from_query(None, None, ["queue", "run"]).types == {"queue", "run"}
    assert EventFilter.from_query("", "", []).types == {"run", "step", "queue"}
    with pytest.raises(ApiError) as err:
        EventFilter.from_query(None, None, ["runs"])
    assert err.value.status == 400 and "runs" in err.value.message
