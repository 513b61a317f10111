"""The upgrade rehearsal's downtime arithmetic (local_ecs.upgrade.Monitor.summary), on samples."""

from __future__ import annotations

from local_ecs.upgrade import Monitor


def _monitor(ui, heartbeats):
    monitor = Monitor.__new__(Monitor)
    monitor.ui, monitor.heartbeats = ui, heartbeats
    return monitor


def test_ui_downtime_is_the_time_without_a_200_in_the_window_and_the_longest_outage():
    ui = [(0, 200), (1, 200), (2, 0), (3, 0), (4, 503), (5, 200), (6, 0), (7, 200), (20, 0)]
    summary = _monitor(ui, []).summary(start=1, end=10)
    assert summary["ui_down_seconds"] == 4.0  # 2-5 and 6-7; the sample at 20 is after the window
    assert summary["ui_longest_outage_seconds"] == 3.0
    assert summary["ui_non_200_samples"] == 4


def test_scheduling_gap_is_the_longest_time_between_heartbeats_including_the_last_one_before_the_window():
    heartbeats = [(0, 1000.0), (5, 1005.0), (10, 1005.0), (15, None), (60, None), (70, 1075.0), (75, 1080.0)]
    summary = _monitor([], heartbeats).summary(start=8, end=80)
    assert summary["scheduling_gap_seconds"] == 70.0  # 1005 (before the window) -> 1075
    assert summary["scheduler_heartbeats_seen"] == 3


def test_no_heartbeat_at_all_reports_no_gap():
    assert _monitor([], [(1, None)]).summary(0, 10)["scheduling_gap_seconds"] is None
