"""A pytest plugin: with JOINTVAE_REQUIRE_TEST_DATA=1 (set by .ci/run) every skip is a failure.

A plain clone skips what it cannot run (no ../shared/data, no torch, no second logical CPU);
CI has all of it, so there a skip means a test silently stopped testing: it fails instead,
with the skip's reason.
"""

import os

import pytest

REQUIRE_ENV = "JOINTVAE_REQUIRE_TEST_DATA"


def _required() -> bool:
    return os.environ.get(REQUIRE_ENV) == "1"


def _as_failure(report) -> None:
    reason = report.longrepr[-1] if isinstance(report.longrepr, tuple) else str(report.longrepr)
    report.outcome = "failed"
    report.longrepr = f"{reason}\n(skipping is not allowed with {REQUIRE_ENV}=1)"


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    if _required() and report.skipped and not hasattr(report, "wasxfail"):
        _as_failure(report)


@pytest.hookimpl(hookwrapper=True)
def pytest_make_collect_report(collector):
    outcome = yield
    report = outcome.get_result()
    if _required() and report.skipped:
        _as_failure(report)


def pytest_report_header(config):
    return f"{REQUIRE_ENV}={os.environ.get(REQUIRE_ENV, '')!s}: skips are {'failures' if _required() else 'allowed'}"
