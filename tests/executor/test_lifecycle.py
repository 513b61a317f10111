import pytest

from tests.executor.conftest import BOTH_PASS, arn_of, make_workload, poll

@pytest.mark.parametrize("cls", BOTH_PASS)
def test_launch_and_finish(cls, aws, make_executor, queue_and_launch):
    ex = make_executor(cls)
    w = make_workload("a")
    queue_and_launch(ex, w)
    arn = arn_of(ex, w.ti.key)
    assert ex.event_buffer[w.ti.key][0] == "running"
    aws.stop_task(arn, exit_codes={"base": 0})
    poll(ex)
    assert ex.event_buffer[w.ti.key][0] == "success", ex.event_buffer
