"""Test session set-up: two logical CPU devices, so tf.distribute tests run without GPUs.

The CPU must be split before TensorFlow initialises its devices, hence here, at import.
jointvae_tf is imported before TensorFlow, as users import it, so the tests run on the
same (oneDNN) CPU kernels as training does.
"""

import fcntl
import os
import tempfile

import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import jointvae_tf  # noqa: E402,F401  (before TensorFlow: see jointvae_tf.runtime)
import tensorflow as tf  # noqa: E402

NUM_LOGICAL_CPUS = 2

_cpus = tf.config.list_physical_devices("CPU")
try:
    tf.config.set_logical_device_configuration(
        _cpus[0], [tf.config.LogicalDeviceConfiguration()] * NUM_LOGICAL_CPUS
    )
except RuntimeError:  # devices already initialised by an earlier import: tests that need two skip
    pass


# ------------------------------------------------------------------------- pytest-xdist scheduling
# pytest.ini runs the suite on two workers (-n 2 --dist loadgroup --no-loadscope-reorder). Each xdist
# group runs on one worker, its tests one after another:
# - tests marked `xdist_group("processes")` (training binaries killed or signalled once they reach a
#   point, several cooperating processes, ports, model_dir locks) share that one group: no two overlap;
# - every other test is grouped by its module (tests/export/ as one: its session fixtures train and
#   export once), so a module- or session-scoped fixture is built once, on one worker.
# A test marked `alone` (a timed measurement) runs while the other worker runs nothing: every test
# holds a readers-writer lock (flock) from its setup to its teardown, shared, `alone` ones exclusively.
# Groups are queued slowest first (as measured in CI), so that no long one is left for the end.
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SLOWEST_GROUPS = ("processes", "tests/test_train.py", "tests/training/test_train_lib.py",
                  "tests/model/test_jointvae.py", "tests/export", "tests/compat/test_import_torch.py")


def pytest_configure(config):
    config.addinivalue_line("markers", "alone: runs while no other test runs, also under pytest-xdist")


def _group(item):
    marker = item.get_closest_marker("xdist_group")
    if marker is not None:
        return str(marker.args[0] if marker.args else marker.kwargs.get("name", "default"))
    path = os.path.relpath(str(item.path), ROOT).replace(os.sep, "/")
    return "tests/export" if path.startswith("tests/export/") else path


@pytest.hookimpl(tryfirst=True)  # before xdist's own hook, which reads the markers
def pytest_collection_modifyitems(config, items):
    for item in items:
        if item.get_closest_marker("xdist_group") is None:
            item.add_marker(pytest.mark.xdist_group(_group(item)))
    rank = {group: i for i, group in enumerate(SLOWEST_GROUPS)}
    items.sort(key=lambda item: rank.get(_group(item), len(rank)))  # stable: keeps the order within a group


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_protocol(item, nextitem):
    """Setup, call and teardown under the lock; nothing to lock outside pytest-xdist workers."""
    worker = getattr(item.config, "workerinput", None)
    if worker is None:
        yield
        return
    alone = item.get_closest_marker("alone") is not None
    path = os.path.join(tempfile.gettempdir(), f"jointvae-tests-{worker['testrunuid']}.lock")
    # The turnstile gives an `alone` test priority: while it waits, no new test starts on the other worker.
    with open(path + ".turnstile", "a") as turnstile, open(path, "a") as lock:
        fcntl.flock(turnstile, fcntl.LOCK_EX)
        fcntl.flock(lock, fcntl.LOCK_EX if alone else fcntl.LOCK_SH)
        if not alone:
            fcntl.flock(turnstile, fcntl.LOCK_UN)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)
            fcntl.flock(turnstile, fcntl.LOCK_UN)
