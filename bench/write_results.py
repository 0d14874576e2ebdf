"""Turns finished reproduction runs (bench/reproduce.py, one model_dir per seed) into results/<name>/.

    python bench/write_results.py --name=mnist --runs=runs/mnist_s0,runs/mnist_s1,runs/mnist_s2
    python bench/write_results.py --name=mnist --runs=... --ship    # also packs jointvae_tf/pretrained/mnist/

Reads each run's reproduce.json ("per_epoch" rows, "final", "paper", "reference") and config.json
(the recipe), and writes, atomically and with the umask's permissions:

  metrics.json                every seed's final metrics, the picked seed and why, the paper's figure,
                              median / min / max over seeds of the main metric (mnist: discrete_accuracy,
                              dsprites: factor_vae_score), the reference model's results when measured
  README.md                   the model card: data, recipe, steps, seed, CPU time, a table of every
                              seed's figures, the pick and its criterion
  curves.png                  per seed against the step: the main metric, the test reconstruction loss,
                              and the test KL per latent dimension (totals for runs that predate it)
  traverse_continuous.png,    latent traversals of the picked model (`jointvae_tf.viz`)
  traverse_discrete_<i>.png

The pick uses no labels. `--pick=held_out_loss` (the default) takes the run with the lowest final
held-out negative ELBO, test_reconstruction_loss + test_kl_continuous + test_kl_discrete (nats per
test image); `--pick=prototype_nll` the run with the lowest final test_prototype_nll (each test
image's NLL under its category's prototype, `jointvae_tf.evaluation.image_pass`: how well the
discrete latent alone explains the images). Both read reproduce.json's "final" or, without one, its
last epoch row; a non-finite value is never picked. `--ship` packs the picked model with `jointvae_tf.pretrained.pack`
(float16 weights by default) and measures the packed file again, with the picked run's final
measurement settings (its data, seed, metrics and sample sizes; `--data` to read the data from
elsewhere): the card's and metrics.json's "shipped_metrics" are those of the weights that ship.

Needs matplotlib (`pip install "jointvae-tf[results]"`). Exit codes: 0 written; 1 a bad input
(one line naming it and what is allowed).
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import statistics
import sys
from typing import Any

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

REPORT_FILE = "reproduce.json"
MAIN_METRIC = {"mnist": "discrete_accuracy", "dsprites": "factor_vae_score"}
# The held-out negative ELBO's terms (nats per test image), as reproduce.py names them.
HELD_OUT_TERMS = ("test_reconstruction_loss", "test_kl_continuous", "test_kl_discrete")
# Label-free picks: criterion -> (its name in prose, what it takes).
PICKS = {
    "held_out_loss": ("held-out loss",
                      "lowest final held-out negative ELBO (test reconstruction loss + KL_z + KL_c, nats per test "
                      "image): chosen without labels, so the main metric does not choose its own winner"),
    "prototype_nll": ("prototype NLL",
                      "lowest final prototype NLL (nats per test image under its most probable category's "
                      "prototype, decoded at z = 0): chosen without labels, by how well the discrete latent alone "
                      "explains the test images"),
}
# Settings every seed of one recipe shares (config.json keys; "model." for the model section).
RECIPE_KEYS = ("preset", "batch_size", "learning_rate", "steps_per_epoch", "model.image_shape",
               "model.latent_spec", "model.temperature", "model.cont_capacity", "model.disc_capacity",
               # Recorded by newer runs only (None for older ones).
               "model.straight_through", "model.discrete_kl", "model.likelihood", "model.category_balance",
               "model.latent_independence")
DEFAULT_RESULTS_DIR = os.path.join(ROOT, "results")
# What bench/reproduce.py measures at the end of a run, for reports that predate its "final_metrics".
FINAL_METRICS = {"mnist": ("reconstruction", "discrete_accuracy"),
                 "dsprites": ("reconstruction", "discrete_accuracy", "factor_vae", "mig")}


class ResultsError(ValueError):
    """A bad input: a missing or malformed run, runs that disagree, an unknown criterion."""


@dataclasses.dataclass
class Run:
    """One reproduction run: its folder, reproduce.json and config.json, and what is read from them."""

    model_dir: str
    report: dict[str, Any]
    config: dict[str, Any]
    final: dict[str, Any]
    final_source: str  # "final" or "last_epoch"

    @property
    def label(self) -> str:
        return os.path.basename(os.path.normpath(self.model_dir))

    @property
    def seed(self) -> int:
        return self.report.get("seed", self.config.get("seed"))

    @property
    def step(self) -> int | None:
        rows = self.report.get("per_epoch") or []
        return self.final.get("step") or (rows[-1]["step"] if rows else None)

    @property
    def cpu_seconds(self) -> float | None:
        """Training CPU time: the last epoch row's train_cpu_seconds_total."""
        rows = self.report.get("per_epoch") or []
        return rows[-1].get("train_cpu_seconds_total") if rows else None

    @property
    def held_out_loss(self) -> float:
        """test recon + KL_z + KL_c of the final measurement; infinity when not finite."""
        missing = [key for key in HELD_OUT_TERMS if not isinstance(self.final.get(key), (int, float))]
        if missing:
            raise ResultsError(f"{self.model_dir}: {REPORT_FILE} {self.final_source} has no {', '.join(missing)}: "
                               "the held-out loss needs them (a run of bench/reproduce.py measures them)")
        total = float(sum(self.final[key] for key in HELD_OUT_TERMS))
        return total if math.isfinite(total) else math.inf

    def criterion_value(self, criterion: str) -> float:
        """The final measurement's value of a PICKS criterion (lower is better); infinity when not finite."""
        if criterion == "held_out_loss":
            return self.held_out_loss
        value = self.final.get("test_prototype_nll")
        if not isinstance(value, (int, float)):
            raise ResultsError(f"{self.model_dir}: {REPORT_FILE} {self.final_source} has no test_prototype_nll: "
                               "--pick=prototype_nll needs it (run the run's bench/reproduce.py command again: "
                               "a finished run is measured again)")
        return float(value) if math.isfinite(value) else math.inf

    def recipe(self) -> dict[str, Any]:
        values = {}
        for key in RECIPE_KEYS:
            section, _, field = key.rpartition(".")
            values[field] = (self.config.get(section) or {}).get(field) if section else self.config.get(field)
        values["is_preset"] = self.report.get("is_preset")
        return values


# ------------------------------------------------------------------------------ reading
def read_run(model_dir: str) -> Run:
    """A Run from model_dir (reproduce.json + config.json); ResultsError naming what is missing."""
    from jointvae_tf.training import checkpoints

    if not os.path.isdir(model_dir):
        raise ResultsError(f"run {model_dir} not found: --runs takes model_dirs written by bench/reproduce.py")
    path = os.path.join(model_dir, REPORT_FILE)
    try:
        with open(path, encoding="utf-8") as f:
            report = json.load(f)
    except FileNotFoundError:
        raise ResultsError(f"{path} not found: --runs takes model_dirs written by bench/reproduce.py") from None
    except json.JSONDecodeError as error:
        raise ResultsError(f"{path} is not valid JSON: {error}") from None
    if not isinstance(report, dict) or report.get("dataset") not in MAIN_METRIC:
        raise ResultsError(f"{path} names dataset {report.get('dataset') if isinstance(report, dict) else None!r}: "
                           f"allowed: {', '.join(MAIN_METRIC)}")
    try:
        config = checkpoints.read_config(model_dir)
    except (FileNotFoundError, ValueError) as error:
        raise ResultsError(str(error)) from None
    rows = report.get("per_epoch") or []
    if isinstance(report.get("final"), dict):
        final, source = report["final"], "final"
    elif rows:
        final, source = rows[-1], "last_epoch"
    else:
        raise ResultsError(f"{path} has neither a final measurement nor an epoch row: "
                           "the run has not finished an epoch")
    return Run(model_dir, report, config, final, source)


def read_runs(model_dirs: list[str]) -> list[Run]:
    """Every run, checked to be seeds of one recipe on one dataset (ResultsError otherwise)."""
    if not model_dirs:
        raise ResultsError("no runs given: --runs takes a comma-separated list of model_dirs, one per seed")
    runs = [read_run(d) for d in model_dirs]
    first = runs[0]
    for run in runs[1:]:
        if run.report["dataset"] != first.report["dataset"]:
            raise ResultsError(f"runs {first.model_dir} and {run.model_dir} are on different datasets "
                               f"({first.report['dataset']}, {run.report['dataset']}): give seeds of one reproduction")
        if run.recipe() != first.recipe():
            differ = sorted(k for k, v in run.recipe().items() if first.recipe().get(k) != v)
            raise ResultsError(f"runs {first.model_dir} and {run.model_dir} differ in {', '.join(differ)}: "
                               "give seeds of one recipe")
    seeds = [run.seed for run in runs]
    for i, run in enumerate(runs):
        if seeds.index(run.seed) != i:
            raise ResultsError(f"runs {runs[seeds.index(run.seed)].model_dir} and {run.model_dir} both have seed "
                               f"{run.seed}: give one run per seed")
    return runs


def pick_run(runs: list[Run], criterion: str = "held_out_loss") -> Run:
    """The run to ship by `criterion` (see PICKS); ResultsError when unknown or when no run qualifies."""
    if criterion not in PICKS:
        raise ResultsError(f"--pick={criterion!r} is not a criterion: allowed: {', '.join(PICKS)}")
    values = [run.criterion_value(criterion) for run in runs]
    best = min(range(len(runs)), key=lambda i: values[i])
    if not math.isfinite(values[best]):
        raise ResultsError(f"no run has a finite {PICKS[criterion][0]}: nothing to pick")
    return runs[best]


# ------------------------------------------------------------------------------ outputs
def _median_min_max(values: list[float]) -> dict[str, Any]:
    finite = [v for v in values if isinstance(v, (int, float)) and math.isfinite(v)]
    if not finite:
        return {"median": None, "min": None, "max": None, "seeds": 0}
    return {"median": statistics.median(finite), "min": min(finite), "max": max(finite), "seeds": len(finite)}


def _reference(runs: list[Run], picked: Run) -> dict[str, Any] | None:
    """reproduce.json's "reference" (the model of --reference_model_dir), from the picked run or else the first."""
    for run in [picked, *runs]:
        if isinstance(run.report.get("reference"), dict):
            reference = dict(run.report["reference"])
            if reference.get("model"):  # a path of the measuring machine: keep its folder name only
                reference["model"] = os.path.basename(os.path.normpath(reference["model"]))
            return reference
    return None


def metrics_summary(name: str, runs: list[Run], picked: Run, criterion: str) -> dict[str, Any]:
    """The content of metrics.json."""
    dataset = picked.report["dataset"]
    main = MAIN_METRIC[dataset]
    return {
        "name": name,
        "dataset": dataset,
        "main_metric": main,
        "recipe": picked.recipe(),
        "pick": {"criterion": criterion, "description": PICKS[criterion][1], "seed": picked.seed,
                 "run": picked.label, "value": picked.criterion_value(criterion),
                 "held_out_loss": picked.held_out_loss},
        "paper": picked.report.get("paper"),
        main: _median_min_max([run.final.get(main) for run in runs]),
        "runs": [{"seed": run.seed, "run": run.label, "step": run.step, "measured": run.final_source,
                  "held_out_loss": run.held_out_loss, "train_cpu_seconds": run.cpu_seconds,
                  "metrics": run.final} for run in runs],
        "reference": _reference(runs, picked),
    }


def _number(value, digits: int = 4) -> str:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return "-"
    return f"{value:.{digits}g}" if isinstance(value, float) else str(value)


def model_card(summary: dict[str, Any], runs: list[Run], picked: Run, pictures: list[str],
               shipped: str | None) -> str:
    """The README.md of results/<name>/ (markdown)."""
    main, recipe, pick = summary["main_metric"], summary["recipe"], summary["pick"]
    stats = summary[main]
    paper = summary.get("paper") or {}
    cpu = picked.cpu_seconds
    lines = [
        f"# {summary['name']}: JointVAE on {summary['dataset']}",
        "",
        f"Written by `bench/write_results.py` from {len(runs)} run(s) of `bench/reproduce.py --dataset="
        f"{summary['dataset']}`, one per seed.",
        "",
        "## Model",
        "",
        f"- data: {summary['dataset']} ({picked.report.get('data', summary['dataset']).split(':')[0]} input), "
        f"images {recipe['image_shape']}",
        f"- recipe: preset `{recipe['preset']}`{'' if recipe.get('is_preset') is not False else ' (overridden)'}, "
        f"latents {recipe['latent_spec']}, continuous capacity {recipe['cont_capacity']} and discrete capacity "
        f"{recipe['disc_capacity']} (min, max, iterations, gamma), temperature {recipe['temperature']}, "
        f"learning rate {recipe['learning_rate']}, batch {recipe['batch_size']}"
        + "".join(f", {key.replace('_', ' ')} {recipe[key]}"
                  for key in ("straight_through", "discrete_kl", "likelihood", "category_balance",
                              "latent_independence")
                  if recipe.get(key) is not None),
        f"- {'shipped' if shipped else 'picked (not shipped)'}: seed {picked.seed}, {picked.step} steps, "
        f"{_number(cpu / 60 if cpu else None, 3)} training CPU minutes (`train_cpu_seconds_total` of its last "
        "epoch row)",
        f"- {main}: {_number(picked.final.get(main))} (median over {stats['seeds']} seeds "
        f"{_number(stats['median'])}, min {_number(stats['min'])}, max {_number(stats['max'])}); "
        f"paper: {_number(paper.get(main))} ({paper.get('note', 'no figure recorded')})",
    ]
    if shipped:
        lines.append(f"- shipped in `{shipped}` ({summary.get('weights_dtype')} weights): "
                     f"`jointvae_tf.pretrained.load({summary['name']!r})`; measured again on the shipped file: "
                     + ", ".join(f"{key} {_number(value, 5)}" for key, value in sorted(
                         summary.get("shipped_metrics", {}).items()) if isinstance(value, (int, float))))
    lines += ["", "## Every seed", "",
              f"| seed | run | step | {main} | test recon | test KL_z | test KL_c | held-out loss | prototype NLL "
              "| CPU min | measured |",
              "|---|---|---|---|---|---|---|---|---|---|---|"]
    for run in runs:
        mark = " (picked)" if run is picked else ""
        cells = [f"{run.seed}{mark}", run.label, _number(run.step), _number(run.final.get(main)),
                 *(_number(run.final.get(key), 5) for key in HELD_OUT_TERMS), _number(run.held_out_loss, 5),
                 _number(run.final.get("test_prototype_nll"), 5),
                 _number(run.cpu_seconds / 60 if run.cpu_seconds else None, 3), run.final_source]
        lines.append("| " + " | ".join(cells) + " |")
    reference = summary.get("reference")
    if reference:
        lines += ["", f"Reference model ({reference.get('kind', 'reference')}, `{reference.get('model')}`), same "
                  f"measurement: {main} {_number(reference.get(main))}, test reconstruction loss "
                  f"{_number(reference.get('test_reconstruction_loss'), 5)}."]
    lines += ["", "## The pick", "",
              f"Seed {pick['seed']} ({pick['run']}), by `--pick={pick['criterion']}`: {pick['description']}. "
              f"Its {PICKS[pick['criterion']][0]}: {_number(pick['value'], 6)} nats.",
              "", "## Pictures", "", "![learning curves](curves.png)", ""]
    lines += [f"![{os.path.splitext(p)[0]}]({p})" for p in pictures]
    return "\n".join(lines) + "\n"


def _series(rows: list[dict[str, Any]], key: str):
    points = [(row["step"], row[key]) for row in rows if isinstance(row.get(key), (int, float))]
    return [p[0] for p in points], [p[1] for p in points]


def _kl_series(rows: list[dict[str, Any]]) -> dict[str, tuple[list, list]]:
    """{label: (steps, values)}: KL per latent dimension, or the totals for rows without them."""
    series = {}
    for key, prefix in (("test_kl_continuous_per_dim", "z"), ("test_kl_discrete_per_latent", "c")):
        width = max((len(row.get(key) or []) for row in rows), default=0)
        for i in range(width):
            points = [(row["step"], row[key][i]) for row in rows if len(row.get(key) or []) > i]
            series[f"{prefix}{i}"] = ([p[0] for p in points], [p[1] for p in points])
    for key, prefix, label in (("test_kl_continuous", "z", "KL_z total"), ("test_kl_discrete", "c", "KL_c total")):
        if not any(name.startswith(prefix) for name in series):
            steps, values = _series(rows, key)
            if steps:
                series[label] = (steps, values)
    return series


def import_pyplot():
    """matplotlib.pyplot on the Agg backend; ResultsError (one line) when matplotlib is missing."""
    try:
        import matplotlib
    except ImportError:
        raise ResultsError('matplotlib is not installed: pip install "jointvae-tf[results]" '
                           "(or pip install matplotlib) to draw the curves") from None
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_curves(path: str, runs: list[Run], main: str) -> str:
    """Writes curves.png atomically: main metric and test reconstruction loss per seed, KL per latent per seed."""
    from jointvae_tf import fileio

    plt = import_pyplot()
    cols = 2
    rows = 1 + math.ceil(len(runs) / cols)
    figure, axes = plt.subplots(rows, cols, figsize=(6 * cols, 3.6 * rows), squeeze=False)
    for ax, key, title in ((axes[0][0], main, main), (axes[0][1], "test_reconstruction_loss",
                                                       "test reconstruction loss (nats)")):
        for run in runs:
            steps, values = _series(run.report.get("per_epoch") or [], key)
            ax.plot(steps, values, marker=".", label=f"seed {run.seed}")
        ax.set(title=title, xlabel="step")
        ax.legend(fontsize="small")
    for i, run in enumerate(runs):
        ax = axes[1 + i // cols][i % cols]
        for label, (steps, values) in _kl_series(run.report.get("per_epoch") or []).items():
            ax.plot(steps, values, label=label, linestyle="--" if label.startswith(("c", "KL_c")) else "-")
        ax.set(title=f"seed {run.seed}: test KL per latent (nats)", xlabel="step")
        ax.legend(fontsize="x-small", ncol=2)
    for j in range(len(runs), (rows - 1) * cols):
        axes[1 + j // cols][j % cols].axis("off")
    figure.tight_layout()
    with fileio.atomic_path(path) as tmp:
        figure.savefig(tmp, format="png", dpi=80)
    plt.close(figure)
    return path


def write_traversals(out_dir: str, model_dir: str) -> list[str]:
    """The picked model's continuous and discrete traversals as PNGs in out_dir; returns the file names."""
    from jointvae_tf import viz
    from jointvae_tf.training import checkpoints

    model = checkpoints.restore_model(model_dir)
    grids = {}
    if model.latent_spec.continuous:
        grids["traverse_continuous"] = viz.traverse_continuous(model, size=10)
    for i in range(model.latent_spec.num_discrete):
        grids[f"traverse_discrete_{i}"] = viz.traverse_discrete(model, i, size=8)
    for name, grid in grids.items():
        viz.write_png(os.path.join(out_dir, f"{name}.png"), grid)
    return [f"{name}.png" for name in grids]


def measure_like_final(model, run: Run, data: str | None = None) -> dict[str, Any]:
    """`model` measured as bench/reproduce.py measured `run` at the end: same data, seed, metrics, sample sizes.

    `data` replaces the run's data location (reproduce.json "data", e.g. idx:/path/to/mnist) when
    the run was made elsewhere.
    """
    from jointvae_tf import evaluation

    report = run.report
    dataset = data or report.get("data") or report["dataset"]
    metrics = report.get("final_metrics") or FINAL_METRICS[report["dataset"]] + (
        ("beta_vae",) if "beta_vae_score" in run.final else ())
    sizes = evaluation.MetricSizes(**report.get("final_metric_sizes", {}))
    try:
        results = evaluation.evaluate(model, dataset, seed=int(report.get("seed", run.seed)), sizes=sizes,
                                      metrics=metrics)
    except (OSError, ValueError) as error:
        raise ResultsError(f"measuring the shipped weights on {dataset} failed: {error} "
                           "(pass --data to say where the data is)") from None
    return evaluation.measurement_row(results)


def write_results(model_dirs: list[str], name: str, results_dir: str = DEFAULT_RESULTS_DIR,
                  pick: str = "held_out_loss", ship: bool = False, pretrained_root: str | None = None,
                  overwrite: bool = False, weights_dtype: str = "float16", data: str | None = None) -> dict[str, Any]:
    """Writes results_dir/name/ from the runs (and with `ship`, the pretrained entry); returns metrics.json's content.

    Raises:
      ResultsError (a ValueError): one line naming the bad input.
    """
    from jointvae_tf import fileio, pretrained

    pretrained.check_name(name)
    import_pyplot()  # before any work: a missing matplotlib is a one-line error, not a half-written folder
    runs = read_runs(model_dirs)
    picked = pick_run(runs, pick)
    out_dir = os.path.join(results_dir, name)
    fileio.check_output_location(out_dir, {f"run {run.model_dir}": run.model_dir for run in runs}, "results folder")
    if os.path.isdir(out_dir) and os.listdir(out_dir) and not overwrite:
        raise ResultsError(f"results folder {out_dir} exists and is not empty: pass --overwrite to replace its files")
    if os.path.exists(out_dir) and not os.path.isdir(out_dir):
        raise ResultsError(f"results folder {out_dir} is a file: give --results_dir a folder")

    summary = metrics_summary(name, runs, picked, pick)
    shipped = None
    if ship:  # first: a refused entry (one exists, no --overwrite) leaves no results behind either
        card = {"metrics": picked.final, "main_metric": summary["main_metric"], "pick": summary["pick"],
                "seeds": {k: summary[summary["main_metric"]][k] for k in ("median", "min", "max", "seeds")},
                "paper": summary["paper"], "results": f"results/{name}/"}
        shipped_metrics = {}

        def measure(model):
            shipped_metrics.update(measure_like_final(model, picked, data))
            return {"shipped_metrics": shipped_metrics, "weights_dtype": weights_dtype}

        shipped = pretrained.pack(picked.model_dir, name, dest_root=pretrained_root, card=card,
                                  dataset=summary["dataset"], overwrite=overwrite, weights_dtype=weights_dtype,
                                  measure=measure)
        summary["shipped_metrics"] = shipped_metrics
        summary["weights_dtype"] = weights_dtype
        inside_repo = os.path.commonpath([os.path.realpath(shipped), ROOT]) == ROOT
        shipped = os.path.relpath(os.path.realpath(shipped), ROOT) if inside_repo else shipped
    summary["shipped"] = shipped
    os.makedirs(out_dir, exist_ok=True)
    pictures = write_traversals(out_dir, picked.model_dir)
    plot_curves(os.path.join(out_dir, "curves.png"), runs, summary["main_metric"])
    fileio.write_json(os.path.join(out_dir, "metrics.json"), summary)
    fileio.write_bytes(os.path.join(out_dir, "README.md"),
                       model_card(summary, runs, picked, pictures, shipped).encode("utf-8"))
    return summary


# ------------------------------------------------------------------------------ binary
def main(argv):
    from absl import app, flags

    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {' '.join(argv[1:])}")
    FLAGS = flags.FLAGS
    runs = [d for d in (FLAGS.runs or "").split(",") if d]
    try:
        summary = write_results(runs, FLAGS.name, FLAGS.results_dir, FLAGS.pick, FLAGS.ship,
                                FLAGS.pretrained_root, FLAGS.overwrite, FLAGS.weights_dtype, FLAGS.data)
    except (ValueError, FileNotFoundError) as error:
        print(f"write_results: error: {error}", file=sys.stderr)
        return 1
    main_metric = summary["main_metric"]
    print(json.dumps({"results": os.path.join(FLAGS.results_dir, FLAGS.name), "pick": summary["pick"],
                      main_metric: summary[main_metric], "shipped": summary["shipped"]}, sort_keys=True))
    return 0


def define_flags():
    """The binary's flags (defined here, not at import, so tests can import the module)."""
    from absl import flags

    flags.DEFINE_string("name", None, "Name of the results (results/<name>/) and of the shipped model, e.g. mnist.")
    flags.DEFINE_string("runs", None, "Comma-separated model_dirs written by bench/reproduce.py, one per seed.")
    flags.DEFINE_string("pick", "held_out_loss", f"How to choose the run to ship, without labels: "
                        f"{', '.join(PICKS)}.")
    flags.DEFINE_string("results_dir", DEFAULT_RESULTS_DIR, "Folder of the results/<name>/ folders.")
    flags.DEFINE_bool("ship", False, "Also pack the picked model into jointvae_tf/pretrained/<name>/.")
    flags.DEFINE_string("pretrained_root", None, "Where --ship packs (default: the package's pretrained folder, "
                        "or $JOINTVAE_PRETRAINED_DIR).")
    flags.DEFINE_bool("overwrite", False, "Replace the files of an existing results/<name>/ and pretrained entry.")
    flags.DEFINE_enum("weights_dtype", "float16", ["float16", "float32"],
                      "How --ship stores the weights (float16: half the bytes, measured again as shipped).")
    flags.DEFINE_string("data", None, "With --ship: where the shipped weights are measured (a dataset name or "
                        "idx:PATH); default the picked run's own data (reproduce.json \"data\").")
    flags.mark_flags_as_required(["name", "runs"])


if __name__ == "__main__":
    from absl import app

    define_flags()
    app.run(main)
