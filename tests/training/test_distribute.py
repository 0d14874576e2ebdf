import json

import pytest
import tensorflow as tf

from jointvae_tf.training import distribute


def test_strategy_choice():
    assert distribute.make_strategy("default").num_replicas_in_sync == 1
    cpus = tf.config.list_logical_devices("CPU")
    mirrored = distribute.make_strategy("mirrored")
    assert isinstance(mirrored, tf.distribute.MirroredStrategy)
    assert mirrored.num_replicas_in_sync == len(cpus)
    auto = distribute.make_strategy("auto")
    assert auto.num_replicas_in_sync == (len(cpus) if len(cpus) > 1 else 1)
    with pytest.raises(ValueError, match="unknown strategy 'tpu'; allowed: auto, default, mirrored, multi_worker"):
        distribute.make_strategy("tpu")


def test_multi_worker_needs_tf_config(monkeypatch):
    monkeypatch.delenv("TF_CONFIG", raising=False)
    with pytest.raises(ValueError, match="TF_CONFIG"):
        distribute.make_strategy("multi_worker")
    monkeypatch.setenv("TF_CONFIG", "{not json")
    with pytest.raises(ValueError, match="TF_CONFIG is not valid"):
        distribute.make_strategy("multi_worker")


def test_task_info_and_chief(monkeypatch):
    monkeypatch.delenv("TF_CONFIG", raising=False)
    assert distribute.task_info() == ("", 0, 1) and distribute.is_chief()
    cluster = {"worker": ["127.0.0.1:1", "127.0.0.1:2"]}
    monkeypatch.setenv("TF_CONFIG", json.dumps({"cluster": cluster, "task": {"type": "worker", "index": 1}}))
    assert distribute.task_info() == ("worker", 1, 2) and not distribute.is_chief()
    monkeypatch.setenv("TF_CONFIG", json.dumps({"cluster": cluster, "task": {"type": "worker", "index": 0}}))
    assert distribute.is_chief()
    cluster["chief"] = ["127.0.0.1:3"]
    monkeypatch.setenv("TF_CONFIG", json.dumps({"cluster": cluster, "task": {"type": "worker", "index": 0}}))
    assert not distribute.is_chief()


def test_split_cpu_after_initialisation_is_refused_clearly():
    tf.constant(1.0)  # TF is initialised by now (conftest split the CPU in two)
    distribute.split_cpu(len(tf.config.list_logical_devices("CPU")))  # the current layout: a no-op
    with pytest.raises(RuntimeError, match="cannot split the CPU into 5 devices"):
        distribute.split_cpu(5)
    with pytest.raises(ValueError, match="cpu_replicas must be >= 1, got 0"):
        distribute.split_cpu(0)
