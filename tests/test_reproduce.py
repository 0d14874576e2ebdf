"""bench/reproduce.py end to end: a reproduction stopped by SIGTERM resumes with every measured epoch kept."""

import json
import os
import signal
import subprocess
import sys
import time

import pytest
from shared_data import shared_data

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SCRIPT = os.path.join(ROOT, "bench", "reproduce.py")


def _command(model_dir, mnist_dir, epochs):
    return [sys.executable, SCRIPT, "--dataset=mnist", f"--mnist_dir={mnist_dir}", f"--model_dir={model_dir}",
            "--steps_per_epoch=10", f"--epochs={epochs}", "--skip_final", "--seed=3", "--measure_every=2"]


def _env():
    return dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", CUDA_VISIBLE_DEVICES="")


def _rows(model_dir):
    with open(os.path.join(model_dir, "reproduce.json"), encoding="utf-8") as file:
        return json.load(file)["per_epoch"]


@pytest.mark.serial
def test_sigterm_stops_with_its_exit_code_and_a_resume_keeps_every_measured_epoch(tmp_path):
    mnist_dir = shared_data("mnist")
    model_dir = str(tmp_path / "run")
    report = os.path.join(model_dir, "reproduce.json")
    process = subprocess.Popen(_command(model_dir, mnist_dir, epochs=1000), cwd=ROOT, env=_env(),
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 300
        while not (os.path.exists(report) and _rows(model_dir)):
            assert process.poll() is None, process.stderr.read()
            assert time.monotonic() < deadline, "no epoch measured in 300 s"
            time.sleep(0.5)
        process.send_signal(signal.SIGTERM)
        _, stderr = process.communicate(timeout=300)
    finally:
        process.kill()
    assert process.returncode == 128 + signal.SIGTERM, stderr
    assert "reproduce: stopped by SIGTERM at step" in stderr and "Traceback" not in stderr, stderr
    before = _rows(model_dir)
    assert [row["epoch"] for row in before] == list(range(1, len(before) + 1))
    with open(report, encoding="utf-8") as file:
        stopped = json.load(file)["stopped"]  # the time spent in the epoch in flight, for the resumed run to count
    assert stopped["step"] >= 10 * len(before) and stopped["train_cpu_seconds"] >= 0

    resumed = subprocess.run(_command(model_dir, mnist_dir, epochs=len(before) + 1), cwd=ROOT, env=_env(),
                             capture_output=True, text=True, timeout=600)
    assert resumed.returncode == 0, resumed.stderr
    after = _rows(model_dir)
    # The epochs measured before the stop are kept as they were, and the run continues after them.
    assert after[:len(before)] == before
    assert [row["epoch"] for row in after] == list(range(1, len(before) + 2))
    assert after[-1]["step"] == 10 * (len(before) + 1)
    totals = [row["train_cpu_seconds_total"] for row in after]
    assert totals == sorted(totals) and totals[-1] > totals[len(before) - 1]
    # The resumed epoch counts the stopped run's time in it (rows round to 0.1 s).
    assert totals[-1] - totals[len(before) - 1] >= round(stopped["train_cpu_seconds"], 1) - 0.1
    with open(report, encoding="utf-8") as file:
        assert "stopped" not in json.load(file)  # a run that ends normally leaves nothing pending
    # --measure_every=2: even epochs and the last one are measured, the others keep their training averages.
    measured = [row["epoch"] for row in after if "discrete_accuracy" in row]
    assert measured == [e for e in range(1, len(after) + 1) if e % 2 == 0 or e == len(after)]
    assert all("reconstruction_loss" in row for row in after)



# Each flag set: the default --epochs bench/reproduce.py resolves (no training), or main()'s exit code and
# stderr for a bad one. One interpreter for all of them: importing TensorFlow dominates.
_SETTINGS_SCRIPT = """
import contextlib, io, json, sys
sys.path.insert(0, sys.argv[1])
import reproduce
from absl import flags
out = []
for argv in json.loads(sys.argv[2]):
    flags.FLAGS.unparse_flags()
    flags.FLAGS(["reproduce", *argv])
    if argv[-1].startswith("--model_dir"):
        err = io.StringIO()
        with contextlib.redirect_stderr(err):
            out.append([reproduce.main(["reproduce"]), err.getvalue()])
    else:
        out.append(reproduce._settings()[3])
print(json.dumps(out))
"""


def test_a_preset_sets_the_default_epochs_and_a_preset_of_another_dataset_is_one_line_and_exit_1(tmp_path):
    import json

    cases = [["--dataset=dsprites", "--preset=dsprites_fast"],
             ["--dataset=dsprites", "--preset=dsprites_fast", "--steps_per_epoch=4000"],
             ["--dataset=dsprites"], ["--dataset=mnist"],
             ["--dataset=dsprites", "--preset=mnist", f"--model_dir={tmp_path / 'run'}"]]
    result = subprocess.run([sys.executable, "-c", _SETTINGS_SCRIPT, os.path.dirname(SCRIPT), json.dumps(cases)],
                            env=_env(), capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    fast, fast_4000, reference, mnist, bad = json.loads(result.stdout.strip().splitlines()[-1])
    assert (fast, fast_4000) == (30, 8)  # dsprites_fast's 30,000 steps in epochs of 1,000 / 4,000 (the last one whole)
    assert reference is None  # the reference dSprites recipe: give --epochs or --minutes
    assert mnist == 10
    assert bad == [1, "reproduce: error: --preset=mnist is not a dsprites recipe: use one of dsprites, dsprites_fast\n"]
    assert not (tmp_path / "run").exists()
