"""Test data that lives outside the repository, in ../shared/data beside the clone.

A plain clone has no ../shared: tests that need it skip with the path they looked for.
CI has it, and sets JOINTVAE_REQUIRE_TEST_DATA=1 so that a missing file fails instead of
skipping quietly (see `skip_policy`). JOINTVAE_SHARED_DATA points elsewhere if needed.

    from shared_data import shared_data
    images = jd.read_idx(shared_data("mnist", "t10k-images-idx3-ubyte.gz"))
"""

import os

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SHARED_DATA_ENV = "JOINTVAE_SHARED_DATA"


def shared_data_root() -> str:
    """The shared data folder: $JOINTVAE_SHARED_DATA, else ../shared/data beside the clone."""
    return os.environ.get(SHARED_DATA_ENV) or os.path.normpath(os.path.join(ROOT, "..", "shared", "data"))


def shared_data(*parts: str) -> str:
    """The path of a shared data file or folder; skips the calling test (or fixture) when it is absent."""
    path = os.path.join(shared_data_root(), *parts)
    if not os.path.exists(path):
        pytest.skip(f"shared test data not found: {path} (../shared/data is not beside this clone)")
    return path
