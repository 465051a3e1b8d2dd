"""A pytest plugin for `bench/suite_cpu.py`: each test's CPU seconds, in its test process and in the children
that ended during it and were waited for (the commands and servers a test starts and stops; not the team
stack's services, which `stack up` leaves to init), one tab-separated line a test in $PRICECAST_TEST_CPU."""

from __future__ import annotations

import os
import resource

import pytest


def _cpu() -> tuple[float, float]:
    me, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime, children.ru_utime + children.ru_stime


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_protocol(item: pytest.Item, nextitem: pytest.Item | None):  # noqa: ANN201 - a hook wrapper
    before = _cpu()
    yield
    after = _cpu()
    with open(os.environ["PRICECAST_TEST_CPU"], "a") as out:  # one short line: appends from the workers don't mix
        out.write(f"{after[0] - before[0]:.2f}\t{after[1] - before[1]:.2f}\t{item.nodeid}\n")
