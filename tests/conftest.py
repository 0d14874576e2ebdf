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
# pytest.ini runs the suite on two workers (-n 2 --dist loadfile --no-loadscope-reorder):
# - each module's tests run on one worker, one after another (tests/export/ as one module: its session
#   fixtures train and export once), so a module- or session-scoped fixture is built once;
# - a test marked `serial` (a training binary killed or signalled once it reaches a point, several
#   cooperating processes, ports, model_dir locks) waits for any other `serial` test to end: no two overlap;
# - a test marked `alone` (a timed measurement) runs while the other worker runs nothing.
# Both are flocks held from a test's setup to its teardown: every test holds a readers-writer lock shared,
# `alone` ones exclusively; `serial` ones also hold a second lock exclusively.
# (xdist's own `--dist loadgroup` needs `item._nodeid`, which pytest 9 no longer reads, so it would not group.)
# Modules are queued slowest first (as measured in CI), so that no long one is left for the end.
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SLOWEST_MODULES = ("tests/test_train.py", "tests/training/test_train_lib.py", "tests/model/test_jointvae.py",
                   "tests/export", "tests/compat/test_import_torch.py", "tests/test_reproduce.py")


def pytest_configure(config):
    config.addinivalue_line("markers", "serial: runs while no other serial test runs, also under pytest-xdist")
    config.addinivalue_line("markers", "alone: runs while no other test runs, also under pytest-xdist")


def _module(nodeid):
    """The scheduling unit of a test id: its module, or tests/export for every module there."""
    path = nodeid.split("::", 1)[0]
    return "tests/export" if path.startswith("tests/export/") else path


def pytest_xdist_make_scheduler(config, log):
    """`--dist loadfile`, with the modules of tests/export as one unit (they share session fixtures)."""
    from xdist.scheduler import LoadScopeScheduling

    class ModuleScheduling(LoadScopeScheduling):
        def _split_scope(self, nodeid):
            return _module(nodeid)

    return ModuleScheduling(config, log)


def pytest_collection_modifyitems(config, items):
    rank = {module: i for i, module in enumerate(SLOWEST_MODULES)}
    items.sort(key=lambda item: rank.get(_module(item.nodeid), len(rank)))  # stable: keeps each module's order


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_protocol(item, nextitem):
    """Setup, call and teardown under the locks; nothing to lock outside pytest-xdist workers."""
    worker = getattr(item.config, "workerinput", None)
    if worker is None:
        yield
        return
    alone = item.get_closest_marker("alone") is not None
    path = os.path.join(tempfile.gettempdir(), f"jointvae-tests-{worker['testrunuid']}")
    # The turnstile gives an `alone` test priority: while it waits, no new test starts on the other worker.
    with open(path + ".serial", "a") as serial, open(path + ".turnstile", "a") as turnstile, \
            open(path + ".lock", "a") as lock:
        if item.get_closest_marker("serial") is not None:
            fcntl.flock(serial, fcntl.LOCK_EX)
        fcntl.flock(turnstile, fcntl.LOCK_EX)
        fcntl.flock(lock, fcntl.LOCK_EX if alone else fcntl.LOCK_SH)
        if not alone:
            fcntl.flock(turnstile, fcntl.LOCK_UN)
        yield  # closing the files releases the locks
