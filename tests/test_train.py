"""The training binary end to end, in subprocesses: resume after kill -9, NaN stop, bad flags, multi-worker."""

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time

import numpy as np
import pytest
import tensorflow as tf
from binary_runs import run_in_one_process

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


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory):
    """(model_dir, CompletedProcess) of one 60-step run, checkpointed at 30 and 60; tests copy it before use."""
    model_dir = str(tmp_path_factory.mktemp("trained") / "run")
    return model_dir, _train(*FAST, f"--model_dir={model_dir}", "--steps=60", "--checkpoint_every=30")


def _copy_of(trained_run, tmp_path):
    """A copy of the shared run's model_dir in tmp_path (the run must have succeeded)."""
    model_dir, result = trained_run
    assert result.returncode == 0, result.stderr[-3000:]
    return shutil.copytree(model_dir, str(tmp_path / "run"))


def test_trains_writes_everything_and_a_rerun_resumes(trained_run, tmp_path):
    model_dir = _copy_of(trained_run, tmp_path)
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


@pytest.mark.serial
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


def test_incompatible_resume_is_refused(trained_run, tmp_path):
    model_dir = _copy_of(trained_run, tmp_path)
    result = _train(*FAST, f"--model_dir={model_dir}", "--steps=80", "--latent_spec=cont=4,disc=3")
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert "latent_spec" in result.stderr and "another --model_dir" in result.stderr
    assert _checkpoint_step(model_dir) == 60


def test_nan_loss_stops_and_keeps_the_last_good_checkpoint(trained_run, tmp_path):
    model_dir = _copy_of(trained_run, tmp_path)
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


BAD_FLAGS = [
    ("--dataset=nonesuch", "nonesuch"),
    ("--latent_spec=cont=x", "'x'"),
    ("--cont_capacity=1,2", "min,max,num_iters,gamma"),
    ("--batch_size=0", "batch_size must be > 0"),
    ("--checkpoint_every=0", "checkpoint_every must be > 0"),
    ("--strategy=tpu", "tpu"),
    ("--learning_rate=nan", "learning_rate must be > 0 and finite, got nan"),
    ("--temperature=1.0,0.5", "temperature annealing must be 'start,end,num_iters' (3 numbers), got '1.0,0.5'"),
    ("--temperature=-1", "temperature must be > 0 and finite, got '-1'"),
    ("--discrete_kl=gumbel", "discrete_kl must be 'categorical' or 'concrete', got 'gumbel'"),
    ("--category_balance=-2", "jointvae-train: error: category_balance must be a finite number >= 0 (0: off), "
                              "got -2.0\n"),
    ("--latent_independence=-3", "jointvae-train: error: latent_independence must be a finite number >= 0 (0: off), "
                                 "got -3.0\n"),
    ("--image_size=128", "jointvae-train: error: dsprites images are 64x64, got image_size=128\n"),
    ("--likelihood=mse", "jointvae-train: error: likelihood must be one of bernoulli, gaussian, laplace, "
                         "continuous_bernoulli, got 'mse'\n"),
    ("--precision=float16", "jointvae-train: error: precision must be float32, mixed_bfloat16 or mixed_float16, "
                            "got 'float16'\n"),
    ("--temperature=0,0.5,10", "jointvae-train: error: Anneal start must be > 0 and finite, got 0.0\n"),
]


@pytest.fixture(scope="module")
def bad_flag_results(tmp_path_factory):
    """{flag: Run} of jointvae-train with each bad flag, and on a model_dir that is a file, all in one process
    (one TensorFlow import). The binary's own exit on bad input, in its own process:
    test_incompatible_resume_is_refused."""
    folder = tmp_path_factory.mktemp("bad_flags")
    cases = {flag: [*FAST, f"--model_dir={folder / f'run_{i}'}", "--steps=5", flag]
             for i, (flag, _) in enumerate(BAD_FLAGS)}
    (folder / "file").write_text("a user's file")
    cases["file"] = [*FAST, f"--model_dir={folder / 'file'}", "--steps=5"]
    return folder, run_in_one_process("jointvae_tf.train", cases, cwd=ROOT, env=_env())


@pytest.mark.parametrize("flag, message", BAD_FLAGS)
def test_bad_flags_fail_with_one_clear_line(bad_flag_results, flag, message):
    _, results = bad_flag_results
    result = results[flag]
    assert result.returncode == 1
    assert message in result.stderr
    assert "Traceback" not in result.stderr


def test_a_model_dir_that_is_a_file_fails_with_one_line_and_the_file_is_kept(bad_flag_results):
    folder, results = bad_flag_results
    assert results["file"].returncode == 1 and "is a file, not a folder" in results["file"].stderr
    assert "Traceback" not in results["file"].stderr and (folder / "file").read_text() == "a user's file"


def test_temperature_straight_through_discrete_kl_and_likelihood_flags_reach_the_model(tmp_path):
    model_dir = str(tmp_path / "run")
    result = _train(*FAST, f"--model_dir={model_dir}", "--steps=10", "--temperature=1.0,0.5,20000",
                    "--straight_through", "--discrete_kl=concrete", "--likelihood=continuous_bernoulli",
                    "--category_balance=15", "--latent_independence=5")
    assert result.returncode == 0, result.stderr[-3000:]
    config = json.load(open(os.path.join(model_dir, "config.json")))
    assert config["model"]["temperature"] == [1.0, 0.5, 20000]
    assert config["model"]["straight_through"] is True and config["model"]["discrete_kl"] == "concrete"
    assert config["likelihood"] == config["model"]["likelihood"] == "continuous_bernoulli"
    assert config["model"]["category_balance"] == 15.0 and config["model"]["latent_independence"] == 5.0
    assert "temperature: 0.99" in result.stdout  # the run's last logs: T falls from 1.0


def test_an_unwritable_model_dir_fails_with_one_line(tmp_path):
    read_only = tmp_path / "read_only"
    read_only.mkdir()
    read_only.chmod(0o555)
    # Root ignores permission bits: drop that capability for the process, as a normal user has none.
    prefix = ["setpriv", "--inh-caps=-dac_override,-dac_read_search",
              "--bounding-set=-dac_override,-dac_read_search"] if os.geteuid() == 0 else []
    model_dirs = {"itself": read_only, "inside": read_only / "run"}
    results = run_in_one_process("jointvae_tf.train", {case: [*FAST, f"--model_dir={model_dir}", "--steps=5"]
                                                       for case, model_dir in model_dirs.items()},
                                 cwd=ROOT, env=_env(), prefix=prefix)
    for case, model_dir in model_dirs.items():
        assert results[case].returncode == 1, results[case].stderr[-2000:]
        assert f"model_dir {model_dir} cannot be written: Permission denied" in results[case].stderr
        assert "Traceback" not in results[case].stderr
    assert os.listdir(read_only) == []


def _start(*flags, env=None, log=None):
    """A training process in the background, its stdout+stderr in `log`."""
    return subprocess.Popen([sys.executable, "-m", "jointvae_tf.train", *flags], cwd=ROOT, env=env or _env(),
                            stdout=log or subprocess.DEVNULL, stderr=subprocess.STDOUT, text=True)


def _wait_until(condition, process, what, timeout=240):
    deadline = time.time() + timeout
    while not condition():
        assert process.poll() is None, f"training exited ({process.returncode}) before {what}"
        assert time.time() < deadline, f"timed out waiting for {what}"
        time.sleep(0.2)


def _stop_with(signum, model_dir, log_path, while_running=lambda process: None):
    """Trains until two epochs of 10 steps are done, calls `while_running`, sends `signum`; returns (process, log)."""
    with open(log_path, "w") as log:
        process = _start(*FAST, f"--model_dir={model_dir}", "--steps=100000", "--checkpoint_every=100000",
                         "--steps_per_epoch=10", "--verbose=2", log=log)
        try:
            _wait_until(lambda: "Epoch 3/" in log_path.read_text(), process, "two epochs")
            while_running(process)
            process.send_signal(signum)
            process.wait(timeout=120)
        finally:
            process.kill()
    output = log_path.read_text()
    assert "Traceback" not in output and "KeyboardInterrupt" not in output, output[-3000:]
    stopped = re.search(rf"stopped by {signal.Signals(signum).name} at step (\d+); checkpoint \S+ckpt-(\d+)", output)
    assert stopped, output[-3000:]
    step = int(stopped.group(1))
    assert step >= 20 and step == int(stopped.group(2)) == _checkpoint_step(model_dir)  # no periodic checkpoint ran
    assert not os.path.exists(os.path.join(model_dir, ".lock"))
    return process, step


@pytest.mark.serial
def test_sigterm_saves_the_current_step_and_a_second_run_is_locked_out(tmp_path):
    model_dir = str(tmp_path / "run")

    def second_run(first):
        second = _train(*FAST, f"--model_dir={model_dir}", "--steps=50", timeout=120)
        assert second.returncode == 1
        assert f"model_dir {model_dir} is in use by another training run (pid {first.pid} on" in second.stderr
        assert "Traceback" not in second.stderr

    process, step = _stop_with(signal.SIGTERM, model_dir, tmp_path / "log.txt", second_run)
    assert process.returncode == 143  # 128 + SIGTERM, as schedulers expect
    resumed = _train(*FAST, f"--model_dir={model_dir}", f"--steps={step + 10}")
    assert resumed.returncode == 0 and f"at step {step}" in resumed.stderr, resumed.stderr[-3000:]


@pytest.mark.serial
def test_ctrl_c_saves_the_current_step(tmp_path):
    process, _ = _stop_with(signal.SIGINT, str(tmp_path / "run"), tmp_path / "log.txt")
    assert process.returncode == 130  # 128 + SIGINT


@pytest.mark.serial
def test_mirrored_training_resumes_after_every_kill_9(tmp_path):
    """Two logical CPUs under MirroredStrategy: kill -9s at checkpoints, each resumed from there."""
    model_dir = str(tmp_path / "run")
    mirrored = ["--strategy=mirrored", "--cpu_replicas=2", "--checkpoint_every=10"]
    saved = 0
    for kill in range(2):
        process = _start(*FAST, *mirrored, f"--model_dir={model_dir}", "--steps=100000",
                         f"--learning_rate={5e-4 * (kill + 1)}")  # resuming with another rate reads the old one
        try:
            _wait_until(lambda: (_checkpoint_step(model_dir) or 0) >= saved + 20, process, "two new checkpoints")
        finally:
            process.send_signal(signal.SIGKILL)
            process.wait()
        assert _checkpoint_step(model_dir) >= saved + 20
        saved = _checkpoint_step(model_dir)
    result = _train(*FAST, *mirrored, f"--model_dir={model_dir}", f"--steps={saved + 10}")
    assert result.returncode == 0, result.stderr[-3000:]
    assert f"at step {saved}" in result.stderr and "learning rate 0.0005 (checkpoint had 0.001)" in result.stderr
    assert _checkpoint_step(model_dir) == saved + 10


def _free_ports(n):
    sockets = [socket.socket() for _ in range(n)]
    for s in sockets:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


@pytest.mark.serial
def test_two_workers_resume_after_kill_9_and_end_with_identical_weights(tmp_path):
    ports = _free_ports(2)
    cluster = {"worker": [f"127.0.0.1:{p}" for p in ports]}
    model_dir = str(tmp_path / "run")

    def start_workers(steps):
        processes = []
        for index in range(2):
            env = _env(TF_CONFIG=json.dumps({"cluster": cluster, "task": {"type": "worker", "index": index}}))
            processes.append(subprocess.Popen(
                [sys.executable, "-m", "jointvae_tf.train", *FAST, f"--model_dir={model_dir}", f"--steps={steps}",
                 "--strategy=multi_worker", "--checkpoint_every=5"],
                cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            ))
        return processes

    # Round 1: killed (-9, both workers) once the chief has checkpointed.
    processes = start_workers(100000)
    try:
        _wait_until(lambda: (_checkpoint_step(model_dir) or 0) >= 10, processes[0], "a chief checkpoint")
    finally:
        for p in processes:
            p.kill()
            p.communicate()
    saved = _checkpoint_step(model_dir)
    # Round 2: both resume from the chief's checkpoint and train 5 more steps.
    processes = start_workers(saved + 5)
    outputs = [p.communicate(timeout=300) for p in processes]
    for p, (_, err) in zip(processes, outputs):
        assert p.returncode == 0, err[-3000:]
        assert re.search(rf"resumed from \S+ckpt-{saved} at step {saved}", err), err[-3000:]
    chief = tf.train.load_checkpoint(tf.train.latest_checkpoint(os.path.join(model_dir, "checkpoints")))
    worker_dir = os.path.join(model_dir, "workers", "worker_1", "checkpoints")
    worker = tf.train.load_checkpoint(tf.train.latest_checkpoint(worker_dir))
    # Weights and Adam's moments alike (the weights are stored under optimizer/_trainable_variables).
    names = [n for n in chief.get_variable_to_shape_map() if n != "_CHECKPOINTABLE_OBJECT_GRAPH"]
    assert len([n for n in names if "_trainable_variables" in n]) >= 20
    for name in names:
        np.testing.assert_array_equal(chief.get_tensor(name), worker.get_tensor(name), err_msg=name)
    assert _checkpoint_step(model_dir) == saved + 5
