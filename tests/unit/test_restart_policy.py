"""A supervised child that dies is restarted after a delay that doubles while it keeps dying
soon after each start, starts afresh once it has run a while, and is given up on after a bound."""

from __future__ import annotations

import pytest

from payflow.supervisor import RestartPolicy

POLICY = RestartPolicy()


def test_the_delay_doubles_from_one_second_and_stops_at_thirty() -> None:
    delays = [POLICY.delay_seconds(exits) for exits in range(1, 9)]

    assert delays == [1.0, 2.0, 4.0, 8.0, 16.0, 30.0, 30.0, 30.0]


def test_the_supervisor_gives_up_after_the_bound_of_quick_exits() -> None:
    assert POLICY.delay_seconds(8) == 30.0
    assert POLICY.delay_seconds(9) is None


def test_an_exit_soon_after_a_start_adds_to_the_quick_exits_in_a_row() -> None:
    assert POLICY.quick_exits(before=0, ran_seconds=0.5) == 1
    assert POLICY.quick_exits(before=3, ran_seconds=299.9) == 4


def test_a_child_that_ran_a_while_is_restarted_after_the_first_delay_again() -> None:
    exits = POLICY.quick_exits(before=7, ran_seconds=300.0)

    assert exits == 1
    assert POLICY.delay_seconds(exits) == 1.0


def test_a_child_dying_at_once_forever_is_restarted_eight_times_in_about_two_minutes() -> None:
    """The defaults."""
    exits, waited, restarts = 0, 0.0, 0
    while (delay := POLICY.delay_seconds(exits := POLICY.quick_exits(exits, 0.1))) is not None:
        waited += delay
        restarts += 1

    assert restarts == 8
    assert waited == 1 + 2 + 4 + 8 + 16 + 30 + 30 + 30


@pytest.mark.parametrize("bad", [{"first_delay_seconds": 0.0},
                                 {"first_delay_seconds": 40.0},
                                 {"max_quick_exits": 0}])
def test_a_policy_that_cannot_work_is_refused(bad: dict[str, float]) -> None:
    with pytest.raises(AssertionError):
        RestartPolicy(**bad)  # type: ignore[arg-type]


def test_a_worker_found_stuck_a_minute_after_every_start_is_given_up_on() -> None:
    exits, restarts = 0, 0
    while POLICY.delay_seconds(exits := POLICY.quick_exits(exits, ran_seconds=90.0)):
        restarts += 1

    assert restarts == 8
