"""Choosing a tf.distribute strategy: one device, several GPUs, logical CPU replicas, several machines.

    auto          MirroredStrategy when more than one GPU (or CPU replica) is visible, else the default
    default       the default strategy (one device)
    mirrored      MirroredStrategy over every GPU, or over the logical CPUs made by `split_cpu`
    multi_worker  MultiWorkerMirroredStrategy from the TF_CONFIG environment variable
"""

from __future__ import annotations

import json
import os

import tensorflow as tf

STRATEGIES = ("auto", "default", "mirrored", "multi_worker")


def split_cpu(num_replicas: int) -> None:
    """Splits the CPU into `num_replicas` logical devices; must run before TensorFlow initialises.

    Raises:
      ValueError: num_replicas < 1.
      RuntimeError: TensorFlow's devices were already initialised with another layout.
    """
    if num_replicas < 1:
        raise ValueError(f"cpu_replicas must be >= 1, got {num_replicas}")
    cpu = tf.config.list_physical_devices("CPU")[0]
    current = tf.config.get_logical_device_configuration(cpu)
    if num_replicas == 1 and not current or current and len(current) == num_replicas:
        return
    try:
        tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * num_replicas)
    except RuntimeError as error:
        raise RuntimeError(
            f"cannot split the CPU into {num_replicas} devices: TensorFlow is already initialised ({error})"
        ) from None


def task_info() -> tuple[str, int, int]:
    """(task type, task index, number of workers) from TF_CONFIG, ("", 0, 1) without it."""
    raw = os.environ.get("TF_CONFIG")
    if not raw:
        return "", 0, 1
    try:
        config = json.loads(raw)
        cluster, task = config["cluster"], config["task"]
        workers = len(cluster.get("worker", [])) + len(cluster.get("chief", []))
        return task["type"], int(task["index"]), max(workers, 1)
    except (ValueError, KeyError, TypeError) as error:
        raise ValueError(f"TF_CONFIG is not valid ({error!r}): expected {{'cluster': {{...}}, 'task': {{'type', 'index'}}}}") from None


def is_chief() -> bool:
    """True on the task that writes checkpoints and pictures: the chief, or worker 0 without a chief."""
    task_type, index, _ = task_info()
    raw = os.environ.get("TF_CONFIG")
    has_chief = bool(raw) and "chief" in json.loads(raw).get("cluster", {})
    return task_type in ("", "chief") or (task_type == "worker" and index == 0 and not has_chief)


def make_strategy(name: str = "auto") -> tf.distribute.Strategy:
    """Builds the named strategy (see the module docstring)."""
    if name not in STRATEGIES:
        raise ValueError(f"unknown strategy {name!r}; allowed: {', '.join(STRATEGIES)}")
    if name == "multi_worker":
        if not os.environ.get("TF_CONFIG"):
            raise ValueError("strategy multi_worker needs the TF_CONFIG environment variable (cluster and task)")
        task_info()  # validates TF_CONFIG
        return tf.distribute.MultiWorkerMirroredStrategy()
    gpus = [d.name for d in tf.config.list_logical_devices("GPU")]
    cpus = [d.name for d in tf.config.list_logical_devices("CPU")]
    devices = gpus if gpus else cpus
    if name == "mirrored" or (name == "auto" and len(devices) > 1):
        return tf.distribute.MirroredStrategy(devices)
    return tf.distribute.get_strategy()
