"""Reproduces the JointVAE paper's figures on CPU: trains with a dataset's preset, measuring every epoch.

    python bench/reproduce.py --dataset=mnist --epochs=10
    python bench/reproduce.py --dataset=dsprites --minutes=30 --budget=cpu \
        --reference_model_dir=../shared/data/reference_models/dsprites

Each "epoch" (`--steps_per_epoch` steps; MNIST: 940 steps, about one pass over the 60,000
images, chosen a multiple of 10 so Keras runs 10 steps per call; dSprites: 1,000) is one
`train_lib.train` call that resumes from the model_dir, followed by `evaluation.evaluate`:

  * the epoch's training averages: reconstruction loss, KL_z, KL_c (and the capacities);
  * MNIST: discrete accuracy (Hungarian and majority) and reconstruction on the 10,000 t10k
    test images, read from `--mnist_dir` (IDX files, no network);
  * dSprites: FactorVAE score, MIG, DCI and SAP on the procedural dSprites ground truth, with
    the smaller `--epoch_*` sample sizes, plus the shape accuracy of the discrete latent;
  * wall time and the training's CPU time (`time.process_time`, all threads).

After the last epoch the model is measured again with the full sample sizes (the protocols'
defaults: FactorVAE 10,000 variance / 10,000 train / 5,000 eval votes, MIG 10,000, DCI and SAP
10,000 train / 5,000 test points), and so is
`--reference_model_dir` (a model trained by the original PyTorch code, imported through
`jointvae_tf.compat`) with the same metrics and seed. One JSON object per epoch and a final
summary go to stdout and, atomically, to model_dir/reproduce.json.

`--cont_capacity`, `--disc_capacity`, `--temperature`, `--straight_through`, `--discrete_kl`,
`--likelihood`, `--category_balance` and `--latent_independence` try other recipes: they are passed to `train_lib.TrainConfig`, recorded in the report, and set
its "is_preset" to false.
"""

from __future__ import annotations

import os
import signal
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

from absl import app, flags  # noqa: E402

FLAGS = flags.FLAGS
flags.DEFINE_enum("dataset", "mnist", ["mnist", "dsprites"], "Which reproduction to run.")
flags.DEFINE_string("preset", None, "Recipe (default: the dataset's, the reference's); dsprites also takes "
                    "dsprites_fast, whose schedule sets the default --epochs.")
flags.DEFINE_integer("epochs", None, "Number of epochs (default: 10 for mnist; the preset's steps for dsprites_fast; "
                     "otherwise for dsprites, until --minutes).")
flags.DEFINE_float("minutes", None, "Training budget in minutes (see --budget); stops after the epoch that exceeds it.")
flags.DEFINE_enum("budget", "cpu", ["cpu", "wall"], "Whether --minutes counts training CPU time or wall time.")
flags.DEFINE_integer("steps_per_epoch", None, "Steps per epoch (default: 940 for mnist, 1000 for dsprites).")
flags.DEFINE_string("model_dir", None, "Where to train (default: runs/reproduce/<preset>); an existing one resumes.")
flags.DEFINE_string("mnist_dir", os.path.join("..", "shared", "data", "mnist"),
                    "Folder of the MNIST IDX files (train-* for training, t10k-* for the test accuracy).")
flags.DEFINE_string("cont_capacity", None, "Override the preset's continuous capacity 'min,max,iters,gamma' "
                    "(the run is then labelled as not the preset).")
flags.DEFINE_string("disc_capacity", None, "Override the preset's discrete capacity (idem).")
flags.DEFINE_string("temperature", None, "Override the preset's Gumbel-softmax temperature: a number, or "
                    "'start,end,num_iters' to anneal it (idem).")
flags.DEFINE_bool("straight_through", False, "Straight-through Gumbel-softmax samples in training (idem).")
flags.DEFINE_string("discrete_kl", None, "Discrete KL in training: categorical (the preset's) or concrete (idem).")
flags.DEFINE_string("likelihood", None, "Decoder likelihood in training: bernoulli (the preset's), gaussian, laplace "
                    "or continuous_bernoulli (idem).")
flags.DEFINE_float("category_balance", None, "Weight of the category balance term, KL(q(c) || uniform) "
                   "(not the paper's; 0 or unset: off) (idem).")
flags.DEFINE_float("latent_independence", None, "Weight of the latent independence term, a Gaussian estimate of "
                   "I(z; c) over the batch (not the paper's; 0 or unset: off) (idem).")
flags.DEFINE_integer("seed", 0, "Seed of training and of every metric.")
flags.DEFINE_integer("measure_every", 1, "Measure the model every N epochs (and after the last one); the other "
                     "epochs keep only their training averages. Long runs spend less time measuring.", lower_bound=1)
flags.DEFINE_integer("epoch_factor_vae_variance", 1000, "dSprites per-epoch FactorVAE: points for the variances.")
flags.DEFINE_integer("epoch_factor_vae_train", 500, "dSprites per-epoch FactorVAE: training votes.")
flags.DEFINE_integer("epoch_factor_vae_eval", 300, "dSprites per-epoch FactorVAE: evaluation votes.")
flags.DEFINE_integer("epoch_mig_train", 2000, "dSprites per-epoch MIG: points.")
flags.DEFINE_integer("epoch_accuracy_images", 2000, "dSprites per-epoch shape accuracy: sampled images.")
flags.DEFINE_integer("epoch_dci_train", 2000, "dSprites per-epoch DCI: training points (test: half as many).")
flags.DEFINE_integer("epoch_sap_train", 2000, "dSprites per-epoch SAP: training points (test: half as many).")
flags.DEFINE_integer("factor_vae_variance", 10000, "Final FactorVAE: points for the variances.")
flags.DEFINE_integer("factor_vae_train", 10000, "Final FactorVAE: training votes.")
flags.DEFINE_integer("factor_vae_eval", 5000, "Final FactorVAE: evaluation votes.")
flags.DEFINE_integer("mig_train", 10000, "Final MIG: points.")
flags.DEFINE_integer("accuracy_images", 10000, "Final dSprites shape accuracy: sampled images.")
flags.DEFINE_integer("dci_train", 10000, "Final DCI: training points (test: half as many).")
flags.DEFINE_integer("sap_train", 10000, "Final SAP: training points (test: half as many).")
flags.DEFINE_bool("final_beta_vae", False, "Also compute the BetaVAE score (10,000 / 5,000 points) at the end.")
flags.DEFINE_string("reference_model_dir", None,
                    "A PyTorch reference model (model.pt + specs.json) or model_dir to measure with the same "
                    "final metrics, e.g. ../shared/data/reference_models/dsprites.")
flags.DEFINE_bool("skip_final", False, "Skip the full-size final measurement of the trained model.")

PAPER = {
    "mnist": {"discrete_accuracy": 0.887, "note": "Dupont 2018, Table 1 (JointVAE, MNIST), long GPU training"},
    "dsprites": {"factor_vae_score": 0.69, "note": "Dupont 2018, Table 2 (JointVAE, dSprites), 300k iterations"},
}
EPOCH_KEYS = {
    "mnist": ("reconstruction_loss", "kl_continuous", "kl_discrete", "discrete_accuracy", "discrete_accuracy_majority",
              "test_reconstruction_loss", "test_prototype_nll"),
    "dsprites": ("reconstruction_loss", "kl_continuous", "kl_discrete", "factor_vae_score", "mig",
                 "dci_disentanglement", "sap_score", "discrete_accuracy"),
}


def _print(value):
    import json

    print(json.dumps(value, sort_keys=True), flush=True)


def _settings():
    from jointvae_tf import evaluation

    from jointvae_tf.training import presets

    allowed = {"mnist": ("mnist",), "dsprites": ("dsprites", "dsprites_fast")}[FLAGS.dataset]
    if FLAGS.preset is not None and FLAGS.preset not in allowed:
        raise ValueError(f"--preset={FLAGS.preset} is not a {FLAGS.dataset} recipe: use one of {', '.join(allowed)}")
    if FLAGS.dataset == "mnist":
        dataset, preset, steps_per_epoch = f"idx:{FLAGS.mnist_dir}", "mnist", FLAGS.steps_per_epoch or 940
        epoch_metrics = final_metrics = ("reconstruction", "discrete_accuracy")
        epoch_sizes = final_sizes = evaluation.MetricSizes()
    else:
        dataset, preset, steps_per_epoch = "dsprites", FLAGS.preset or "dsprites", FLAGS.steps_per_epoch or 1000
        epoch_metrics = ("reconstruction", "discrete_accuracy", "factor_vae", "mig", "dci", "sap")
        final_metrics = epoch_metrics + (("beta_vae",) if FLAGS.final_beta_vae else ())
        epoch_sizes = evaluation.MetricSizes(
            factor_vae_variance=FLAGS.epoch_factor_vae_variance, factor_vae_train=FLAGS.epoch_factor_vae_train,
            factor_vae_eval=FLAGS.epoch_factor_vae_eval, mig_train=FLAGS.epoch_mig_train,
            ground_truth_images=FLAGS.epoch_accuracy_images, dci_train=FLAGS.epoch_dci_train,
            dci_test=max(1, FLAGS.epoch_dci_train // 2), sap_train=FLAGS.epoch_sap_train,
            sap_test=max(1, FLAGS.epoch_sap_train // 2))
        final_sizes = evaluation.MetricSizes(
            factor_vae_variance=FLAGS.factor_vae_variance, factor_vae_train=FLAGS.factor_vae_train,
            factor_vae_eval=FLAGS.factor_vae_eval, mig_train=FLAGS.mig_train,
            ground_truth_images=FLAGS.accuracy_images, dci_train=FLAGS.dci_train,
            dci_test=max(1, FLAGS.dci_train // 2), sap_train=FLAGS.sap_train, sap_test=max(1, FLAGS.sap_train // 2))
    preset_steps = presets.preset_for(preset).steps
    default_epochs = 10 if FLAGS.dataset == "mnist" else (
        -(-preset_steps // steps_per_epoch) if preset_steps else None)
    return dataset, preset, steps_per_epoch, default_epochs, epoch_metrics, final_metrics, epoch_sizes, final_sizes


def _measure(model, dataset, metrics, sizes):
    from jointvae_tf import evaluation

    start = time.perf_counter()
    results = evaluation.evaluate(model, dataset, seed=FLAGS.seed, sizes=sizes, metrics=metrics)
    values = evaluation.measurement_row(results)
    values["eval_seconds"] = round(time.perf_counter() - start, 1)
    return values


def _previous_rows(report_path: str, latest_step: int) -> tuple[list[dict], dict]:
    """What an earlier run of this model_dir saved, for the run that resumes from its newest checkpoint.

    Returns its per-epoch rows up to that checkpoint's step, and the training CPU and wall seconds it
    spent after its last row on work that checkpoint holds, with the training averages of an epoch
    it finished but did not measure ({"cpu": 0, "wall": 0, "logs": {}} when none): a run stopped in an
    epoch checkpoints it, and the run that finishes the epoch counts that time too.
    """
    import json

    unrecorded = {"cpu": 0.0, "wall": 0.0, "logs": {}}
    try:
        with open(report_path, encoding="utf-8") as file:
            saved = json.load(file)
        rows = saved.get("per_epoch", [])
        stopped = saved.get("stopped") or {}
        if isinstance(stopped, dict) and stopped.get("step", latest_step + 1) <= latest_step:
            unrecorded = {key: float(stopped.get(f"train_{key}_seconds", 0.0)) for key in ("cpu", "wall")}
            unrecorded["logs"] = {k: float(v) for k, v in (stopped.get("logs") or {}).items()}
    except FileNotFoundError:
        return [], unrecorded
    except (OSError, ValueError, AttributeError, TypeError) as error:
        raise ValueError(f"{report_path} exists but cannot be read to resume its epochs ({error}): "
                         "move it away to start the report afresh") from None
    return [row for row in rows if isinstance(row, dict) and row.get("step", latest_step + 1) <= latest_step], unrecorded


def _table(rows, keys):
    header = ["epoch", "step", *keys, "train_cpu_min", "wall_min"]
    lines = [" | ".join(header)]
    for row in rows:
        cells = [str(row["epoch"]), str(row["step"])]
        cells += [f"{row[k]:.4g}" if isinstance(row.get(k), float) else "-" for k in keys]
        cells += [f"{row['train_cpu_seconds_total'] / 60:.1f}", f"{row['wall_seconds_total'] / 60:.1f}"]
        lines.append(" | ".join(cells))
    return lines


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {' '.join(argv[1:])}")
    from jointvae_tf.training import callbacks as jv_callbacks
    from jointvae_tf import evaluation
    from jointvae_tf.training import train_lib
    from jointvae_tf.training import checkpoints

    try:
        dataset, preset, steps_per_epoch, default_epochs, epoch_metrics, final_metrics, epoch_sizes, final_sizes = \
            _settings()
    except ValueError as error:
        print(f"reproduce: error: {error}", file=sys.stderr)
        return 1
    model_dir = FLAGS.model_dir or os.path.join("runs", "reproduce", preset)
    epochs = FLAGS.epochs
    if epochs is None and FLAGS.minutes is None:
        epochs = default_epochs
        if epochs is None:
            print("reproduce: error: give --epochs or --minutes for dsprites", file=sys.stderr)
            return 1
    is_preset = not (FLAGS.cont_capacity or FLAGS.disc_capacity or FLAGS.temperature is not None
                     or FLAGS.straight_through or FLAGS.discrete_kl is not None or FLAGS.likelihood is not None
                     or bool(FLAGS.category_balance) or bool(FLAGS.latent_independence))
    report = {
        "dataset": FLAGS.dataset, "data": dataset, "model_dir": model_dir, "preset": preset,
        "is_preset": is_preset, "cont_capacity": FLAGS.cont_capacity, "disc_capacity": FLAGS.disc_capacity,
        "temperature": FLAGS.temperature, "straight_through": FLAGS.straight_through,
        "discrete_kl": FLAGS.discrete_kl, "likelihood": FLAGS.likelihood,
        "category_balance": FLAGS.category_balance, "latent_independence": FLAGS.latent_independence,
        "steps_per_epoch": steps_per_epoch, "epochs": epochs, "minutes": FLAGS.minutes, "budget": FLAGS.budget,
        "seed": FLAGS.seed, "epoch_metric_sizes": evaluation.dataclasses.asdict(epoch_sizes),
        "final_metric_sizes": evaluation.dataclasses.asdict(final_sizes), "final_metrics": list(final_metrics),
        "paper": PAPER[FLAGS.dataset], "per_epoch": [],
    }
    report_path = os.path.join(model_dir, "reproduce.json")

    def save():
        checkpoints.write_json_atomic(report_path, report)

    latest = checkpoints.latest_checkpoint(model_dir)
    latest_step = checkpoints.checkpoint_step(latest) if latest else 0
    epoch = latest_step // steps_per_epoch
    # A resumed run keeps the rows (and CPU and wall totals) of the epochs it already measured.
    report["per_epoch"], unrecorded = _previous_rows(report_path, latest_step)
    done = report["per_epoch"][-1] if report["per_epoch"] else {}
    # Time a stopped run spent in the epoch it checkpointed but did not finish belongs to that epoch.
    pending_cpu, pending_wall, pending_logs = unrecorded["cpu"], unrecorded["wall"], {}
    train_cpu_total = float(done.get("train_cpu_seconds_total", 0.0)) + pending_cpu
    train_wall_total = float(sum(row.get("train_wall_seconds") or 0.0 for row in report["per_epoch"])) + pending_wall
    wall_start = time.perf_counter() - float(done.get("wall_seconds_total", 0.0)) - pending_wall
    model, last_step = None, latest_step
    with jv_callbacks.StopOnSignal() as stop:  # SIGTERM/SIGINT: stop after the epoch in flight, saved
        try:
            if (latest and latest_step % steps_per_epoch == 0 and done.get("step", 0) < latest_step
                    and (latest_step // steps_per_epoch) % FLAGS.measure_every == 0):
                # Stopped after this epoch's checkpoint but before its measurement.
                model = checkpoints.restore_model(model_dir)
                row = {"epoch": epoch, "step": latest_step, "measured_after_resume": True, **unrecorded["logs"]}
                row.update(_measure(model, dataset, epoch_metrics, epoch_sizes))
                row.update(train_cpu_seconds=round(pending_cpu, 1), train_wall_seconds=round(pending_wall, 1),
                           train_cpu_seconds_total=round(train_cpu_total, 1),
                           wall_seconds_total=round(time.perf_counter() - wall_start, 1))
                pending_cpu = pending_wall = 0.0
                report["per_epoch"].append(row)
                _print(row)
                save()
            while not stop.received:
                if epochs is not None and epoch >= epochs:
                    break
                used = train_cpu_total if FLAGS.budget == "cpu" else train_wall_total
                if FLAGS.minutes is not None and used >= FLAGS.minutes * 60:
                    break
                epoch += 1
                config = train_lib.TrainConfig(
                    dataset=dataset, model_dir=model_dir, preset=preset, cont_capacity=FLAGS.cont_capacity,
                    disc_capacity=FLAGS.disc_capacity, temperature=FLAGS.temperature,
                    straight_through=FLAGS.straight_through, discrete_kl=FLAGS.discrete_kl or "categorical",
                    likelihood=FLAGS.likelihood or "bernoulli", category_balance=FLAGS.category_balance or 0.0,
                    latent_independence=FLAGS.latent_independence or 0.0,
                    steps=epoch * steps_per_epoch, steps_per_epoch=steps_per_epoch,
                    seed=FLAGS.seed, verbose=0, checkpoint_every=steps_per_epoch, image_every=10 * steps_per_epoch,
                )
                cpu0, wall0 = time.process_time(), time.perf_counter()
                summary = train_lib.train(config)
                train_cpu, train_wall = time.process_time() - cpu0, time.perf_counter() - wall0
                train_cpu_total += train_cpu
                train_wall_total += train_wall
                train_cpu, train_wall = train_cpu + pending_cpu, train_wall + pending_wall
                pending_cpu = pending_wall = 0.0
                model, last_step = summary["model"], summary["step"]
                if summary["interrupted"]:  # checkpointed mid-epoch; the next run finishes the epoch
                    stop.received = summary["interrupted"]
                    pending_cpu, pending_wall = train_cpu, train_wall
                    # An epoch whose last step ran: its training averages go with the time.
                    pending_logs = ({k: float(v) for k, v in summary["logs"].items()}
                                    if last_step == epoch * steps_per_epoch else {})
                    break
                row = {"epoch": epoch, "step": summary["step"]}
                row.update({k: float(v) for k, v in summary["logs"].items()})
                if epoch % FLAGS.measure_every == 0 or epoch == epochs:
                    row.update(_measure(model, dataset, epoch_metrics, epoch_sizes))
                row.update(train_cpu_seconds=round(train_cpu, 1), train_wall_seconds=round(train_wall, 1),
                           train_cpu_seconds_total=round(train_cpu_total, 1),
                           wall_seconds_total=round(time.perf_counter() - wall_start, 1),
                           images_per_second=round(steps_per_epoch * config_batch(summary) / train_wall, 1))
                report["per_epoch"].append(row)
                _print(row)
                save()
            if stop.received:
                # Training time not in a row yet (the epoch in flight): the resumed run adds it.
                report["stopped"] = {"step": last_step, "train_cpu_seconds": round(pending_cpu, 3),
                                     "train_wall_seconds": round(pending_wall, 3), "logs": pending_logs}
                save()
                print(f"reproduce: stopped by {stop.received} at step {last_step}, checkpointed and its epochs saved in "
                      f"{report_path} (run the same command to resume)", file=sys.stderr)
                return 128 + signal.Signals[stop.received].value

            if model is None and latest:
                model = checkpoints.restore_model(model_dir)
            report["table"] = _table(report["per_epoch"], EPOCH_KEYS[FLAGS.dataset])
            if model is not None and not FLAGS.skip_final:
                report["final"] = _measure(model, dataset, final_metrics, final_sizes)
                report["final"]["step"] = report["per_epoch"][-1]["step"] if report["per_epoch"] else None
                _print({"final": report["final"]})
                save()
            if FLAGS.reference_model_dir:
                reference, info = evaluation.load_model(FLAGS.reference_model_dir)
                if info["dataset"] and info["dataset"] != preset:
                    raise evaluation.EvaluationError(
                        f"{FLAGS.reference_model_dir} was trained on {info['dataset']}, not {preset}")
                report["reference"] = _measure(reference, dataset, final_metrics, final_sizes)
                report["reference"].update(model=os.path.abspath(FLAGS.reference_model_dir), kind=info["kind"])
                _print({"reference": report["reference"]})
            report["train_cpu_minutes"] = round(train_cpu_total / 60, 2)
            report["wall_minutes"] = round((time.perf_counter() - wall_start) / 60, 2)
            save()
        except (ValueError, FileNotFoundError, FloatingPointError, RuntimeError) as error:
            print(f"reproduce: error: {error}", file=sys.stderr)
            return 1
        except KeyboardInterrupt:
            print("reproduce: interrupted again while stopping: the last checkpoint is the one saved before",
                  file=sys.stderr)
            return 128 + signal.SIGINT.value
    print("\n".join(report["table"]))
    _print({"summary": {k: report.get(k) for k in ("dataset", "is_preset", "final", "reference", "paper",
                                                     "train_cpu_minutes", "wall_minutes")}})
    return 0


def config_batch(summary) -> int:
    from jointvae_tf.training import checkpoints

    return int(checkpoints.read_config(summary["model_dir"])["batch_size"])


if __name__ == "__main__":
    app.run(main)
