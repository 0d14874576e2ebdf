"""The training binary end to end, in subprocesses: resume after kill -9, NaN stop, bad flags, multi-worker."""

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time

import numpy as np
import pytest
import tensorflow as tf

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FAST = ["--dataset=dsprites", "--batch_size=16", "--latent_spec=cont=2,disc=3", "--image_every=100000",
        "--log_every=20", "--verbose=0"]


def _env(**extra):
    env = dict(os.environ, PYTHONPATH=ROOT, TF_CPP_MIN_LOG_LEVEL="2", CUDA_VISIBLE_DEVICES="")
    env.pop("TF_CONFIG", None)
    env.update(extra)
    return env


def _train(*flags, env=None, timeout=300):
    return subprocess.run([sys.executable, "-m", "jointvae_tf.train", *flags], cwd=ROOT, env=env or _env(),
                          capture_output=True, text=True, timeout=timeout)


def _checkpoint_step(model_dir):
    path = tf.train.latest_checkpoint(os.path.join(model_dir, "checkpoints"))
    return None if path is None else int(path.rsplit("-", 1)[1])


def test_trains_writes_everything_and_a_rerun_resumes(tmp_path):
    model_dir = str(tmp_path / "run")
    result = _train(*FAST, f"--model_dir={model_dir}", "--steps=60", "--checkpoint_every=30")
    assert result.returncode == 0, result.stderr[-3000:]
    assert _checkpoint_step(model_dir) == 60
    config = json.load(open(os.path.join(model_dir, "config.json")))
    assert config["model"]["latent_spec"] == {"cont": 2, "disc": [3]}
    assert config["model"]["cont_capacity"] == [0.0, 40.0, 300000, 150.0]  # the dsprites preset
    assert config["batch_size"] == 16 and config["learning_rate"] == 5e-4
    assert os.path.isfile(os.path.join(model_dir, "model.keras"))
    images = os.listdir(os.path.join(model_dir, "images"))
    assert any(name.startswith("traverse_continuous") for name in images)
    assert os.listdir(os.path.join(model_dir, "logs", "train"))
    # Same command, more steps: resumes at 60.
    result = _train(*FAST, f"--model_dir={model_dir}", "--steps=80", "--checkpoint_every=30")
    assert result.returncode == 0, result.stderr[-3000:]
    assert "resumed from" in result.stderr and "at step 60" in result.stderr
    assert _checkpoint_step(model_dir) == 80


def test_the_quick_start_flagfile_runs(tmp_path):
    """The README's main job: its flagfile parses and resolves; only the step budget is cut here."""
    model_dir = str(tmp_path / "run")
    result = _train("--flagfile=configs/quickstart_dsprites.cfg", f"--model_dir={model_dir}", "--steps=20",
                    "--steps_per_epoch=10", "--batch_size=16", "--verbose=0")
    assert result.returncode == 0, result.stderr[-3000:]
    config = json.load(open(os.path.join(model_dir, "config.json")))
    with open(os.path.join(ROOT, "configs", "quickstart_dsprites.cfg")) as flagfile:
        flags = dict(line.strip()[2:].split("=", 1) for line in flagfile if line.startswith("--"))
    assert config["dataset"] == flags["dataset"] == "dsprites"
    for name in ("cont_capacity", "disc_capacity"):
        assert config["model"][name] == [float(v) for v in flags[name].split(",")]
    assert config["model"]["latent_spec"] == {"cont": 6, "disc": [3]}
    assert set(os.listdir(os.path.join(model_dir, "images"))) >= {"traverse_continuous_example.png", "samples.png"}


def test_resumes_after_kill_9(tmp_path):
    model_dir = str(tmp_path / "run")
    flags = [*FAST, f"--model_dir={model_dir}", "--steps=100000", "--checkpoint_every=20"]
    process = subprocess.Popen([sys.executable, "-m", "jointvae_tf.train", *flags], cwd=ROOT, env=_env(),
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 240
    while (_checkpoint_step(model_dir) or 0) < 40:
        assert process.poll() is None and time.time() < deadline, "training did not checkpoint in time"
        time.sleep(0.2)
    process.send_signal(signal.SIGKILL)
    process.wait()
    saved = _checkpoint_step(model_dir)
    result = _train(*FAST, f"--model_dir={model_dir}", f"--steps={saved + 20}", "--checkpoint_every=20")
    assert result.returncode == 0, result.stderr[-3000:]
    resumed = int(re.search(r"resumed from .* at step (\d+)", result.stderr).group(1))
    assert resumed == saved  # lost at most checkpoint_every steps: the ones after the last checkpoint
    assert _checkpoint_step(model_dir) == saved + 20


def test_incompatible_resume_is_refused(tmp_path):
    model_dir = str(tmp_path / "run")
    assert _train(*FAST, f"--model_dir={model_dir}", "--steps=10").returncode == 0
    result = _train(*FAST, f"--model_dir={model_dir}", "--steps=20", "--latent_spec=cont=4,disc=3")
    assert result.returncode != 0
    assert "latent_spec" in result.stderr and "another --model_dir" in result.stderr
    assert _checkpoint_step(model_dir) == 10


def test_nan_loss_stops_and_keeps_the_last_good_checkpoint(tmp_path):
    model_dir = str(tmp_path / "run")
    assert _train(*FAST, f"--model_dir={model_dir}", "--steps=20", "--checkpoint_every=10").returncode == 0
    result = _train(*FAST, f"--model_dir={model_dir}", "--steps=400", "--checkpoint_every=10",
                    "--learning_rate=1e30")
    assert result.returncode != 0
    assert re.search(r"loss became (nan|inf)", result.stderr), result.stderr[-2000:]
    step = _checkpoint_step(model_dir)
    reader = tf.train.load_checkpoint(tf.train.latest_checkpoint(os.path.join(model_dir, "checkpoints")))
    for name in reader.get_variable_to_shape_map():
        value = reader.get_tensor(name)
        if np.issubdtype(np.asarray(value).dtype, np.floating):
            assert np.isfinite(value).all(), f"checkpoint at step {step} holds non-finite {name}"


@pytest.mark.parametrize(
    "flag, message",
    [
        ("--dataset=nonesuch", "nonesuch"),
        ("--latent_spec=cont=x", "'x'"),
        ("--cont_capacity=1,2", "min,max,num_iters,gamma"),
        ("--batch_size=0", "batch_size must be > 0"),
        ("--checkpoint_every=0", "checkpoint_every must be > 0"),
        ("--strategy=tpu", "tpu"),
    ],
)
def test_bad_flags_fail_with_one_clear_line(tmp_path, flag, message):
    result = _train(*FAST, f"--model_dir={tmp_path / 'run'}", "--steps=5", flag, timeout=120)
    assert result.returncode != 0
    assert message in result.stderr
    assert "Traceback" not in result.stderr


def _free_ports(n):
    sockets = [socket.socket() for _ in range(n)]
    for s in sockets:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


def test_two_workers_end_with_identical_weights(tmp_path):
    ports = _free_ports(2)
    cluster = {"worker": [f"127.0.0.1:{p}" for p in ports]}
    model_dir = str(tmp_path / "run")
    processes = []
    for index in range(2):
        env = _env(TF_CONFIG=json.dumps({"cluster": cluster, "task": {"type": "worker", "index": index}}))
        processes.append(subprocess.Popen(
            [sys.executable, "-m", "jointvae_tf.train", *FAST, f"--model_dir={model_dir}", "--steps=5",
             "--strategy=multi_worker", "--checkpoint_every=5"],
            cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        ))
    outputs = [p.communicate(timeout=300) for p in processes]
    for p, (_, err) in zip(processes, outputs):
        assert p.returncode == 0, err[-3000:]
    chief = tf.train.load_checkpoint(tf.train.latest_checkpoint(os.path.join(model_dir, "checkpoints")))
    worker_dir = os.path.join(model_dir, "workers", "worker_1", "checkpoints")
    worker = tf.train.load_checkpoint(tf.train.latest_checkpoint(worker_dir))
    # Weights and Adam's moments alike (the weights are stored under optimizer/_trainable_variables).
    names = [n for n in chief.get_variable_to_shape_map() if n != "_CHECKPOINTABLE_OBJECT_GRAPH"]
    assert len([n for n in names if "_trainable_variables" in n]) >= 20
    for name in names:
        np.testing.assert_array_equal(chief.get_tensor(name), worker.get_tensor(name), err_msg=name)
    assert _checkpoint_step(model_dir) == 5
