"""jointvae_tf.runtime: importing the package asks TensorFlow for oneDNN, unless the user decided."""

import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PROBE = "import {first}; import jointvae_tf as jv; print(os.environ.get('TF_ENABLE_ONEDNN_OPTS'), jv.runtime.onednn_enabled())"


def _env_without_onednn_setting() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "TF_ENABLE_ONEDNN_OPTS"}
    env["TF_CPP_MIN_LOG_LEVEL"] = "3"
    return env


def _probe(first: str, env_value: str | None) -> list[str]:
    env = _env_without_onednn_setting()
    if env_value is not None:
        env["TF_ENABLE_ONEDNN_OPTS"] = env_value
    env["PYTHONPATH"] = ROOT
    code = "import os; " + PROBE.format(first=first)
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    return out.stdout.split()


def test_import_before_tensorflow_turns_onednn_on():
    assert _probe("sys", None) == ["1", "True"]


@pytest.mark.parametrize("value, enabled", [("0", "False"), ("1", "True")])
def test_user_setting_wins(value, enabled):
    assert _probe("sys", value) == [value, enabled]


def test_tensorflow_imported_first_keeps_its_choice():
    variable, enabled = _probe("tensorflow", None)
    assert variable == "None"
    default = subprocess.run(
        [sys.executable, "-c", "from tensorflow.python.util import _pywrap_util_port as p; print(p.IsMklEnabled())"],
        env=_env_without_onednn_setting(), capture_output=True, text=True, check=True,
    ).stdout.split()[-1]
    assert enabled == default


def test_request_onednn_leaves_a_set_variable_alone(monkeypatch):
    from jointvae_tf import runtime

    monkeypatch.setenv("TF_ENABLE_ONEDNN_OPTS", "0")
    assert runtime.request_onednn() is False
    assert os.environ["TF_ENABLE_ONEDNN_OPTS"] == "0"
    monkeypatch.delenv("TF_ENABLE_ONEDNN_OPTS")
    assert runtime.request_onednn() is False  # tensorflow is already imported in this process
    assert "TF_ENABLE_ONEDNN_OPTS" not in os.environ
