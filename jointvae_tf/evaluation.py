"""Evaluating a trained JointVAE: disentanglement metrics, discrete accuracy, reconstruction.

    model = evaluation.load_model("runs/dsprites")          # model_dir, .keras, or a PyTorch reference folder
    results = evaluation.evaluate(model, "dsprites", seed=0)
    print(evaluation.format_table(results))

`evaluate` computes, on one dataset, every metric the dataset supports:

  reconstruction     reconstruction loss under the model's likelihood (Bernoulli unless trained
                     with another; nats per image, summed over pixels) of the
                     posterior mode, with KL_z and KL_c, on the evaluation images; with
                     discrete latents also "prototype_nll": the same loss of each image under
                     its category's prototype (z = 0, the prior's mean, and the one-hot argmax
                     of each discrete latent), a label-free reading of how well the categories
                     alone describe the images
  discrete_accuracy  argmax of each discrete latent against class labels (mnist and other
                     labelled data: the test split; dsprites: the shape factor of sampled
                     images), after the best one-to-one renaming of categories ("hungarian",
                     as the JointVAE paper reports) and after a majority renaming
  factor_vae, mig,   disentanglement scores on the dSprites ground truth (`data.DSprites`),
  beta_vae, dci, sap from `metrics.make_representation_fn(model.encode)`: continuous means
                     followed by the one-hot argmax of each discrete latent; one
                     `metrics.CachedRepresentation` serves the ground-truth metrics, so each dSprites
                     factor combination is rendered and encoded once (same scores as encoding every sample)

Metrics a dataset cannot support are left out of "metrics" and listed under "skipped"
with the reason. Each metric draws from its own `np.random.RandomState(seed)`, so a
metric's value does not depend on which others run. `run` adds the model_dir plumbing
the evaluate binary needs: metrics.json (written atomically) and pictures.
"""

from __future__ import annotations

import dataclasses
import os
import time
from typing import Any, Iterable

import numpy as np
import tensorflow as tf

from jointvae_tf.model import losses
from jointvae_tf.training import checkpoints
from jointvae_tf import metrics as jv_metrics
from jointvae_tf.model import JointVAE

METRICS = ("reconstruction", "discrete_accuracy", "factor_vae", "mig", "beta_vae", "dci", "sap")
GROUND_TRUTH_METRICS = ("factor_vae", "mig", "beta_vae", "dci", "sap")
METRICS_FILE = "metrics.json"
IMAGES_SUBDIR = "images"
# Datasets whose labels are one class per image (the discrete accuracy's target).
CLASS_LABELLED = ("mnist", "fashion_mnist", "idx", "npz")
# Batch of the labelled pass; images are re-batched so no test image is dropped.
EVAL_BATCH_SIZE = 100
NUM_EXAMPLE_IMAGES = 8


class EvaluationError(ValueError):
    """Bad input to an evaluation: no model, unknown dataset, mismatched image shape."""


@dataclasses.dataclass(frozen=True)
class MetricSizes:
    """Sample sizes of the metrics (defaults: the published protocols' numbers)."""

    factor_vae_variance: int = 10000
    factor_vae_train: int = 10000
    factor_vae_eval: int = 5000
    mig_train: int = 10000
    beta_vae_train: int = 10000
    beta_vae_eval: int = 5000
    dci_train: int = 10000
    dci_test: int = 5000
    sap_train: int = 10000
    sap_test: int = 5000
    # dsprites has no test split: discrete accuracy and reconstruction use this many sampled images.
    ground_truth_images: int = 10000
    batch_size: int = 64

    def __post_init__(self):
        for field in dataclasses.fields(self):
            value = getattr(self, field.name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise EvaluationError(f"{field.name} must be an integer >= 1, got {value!r}")

    def scaled(self, **overrides) -> "MetricSizes":
        return dataclasses.replace(self, **overrides)


# Images per encoder call when the cache encodes dSprites' combinations: 1.3x the
# throughput of 64 on a 2-core CPU, with the same codes bit for bit (see CachedRepresentation).
CACHE_ENCODE_BATCH_SIZE = 1024


# ------------------------------------------------------------------------------ loading
def load_model(source: str) -> tuple[JointVAE, dict[str, Any]]:
    """(model, info) from a model_dir, a `.keras` file, or a folder of the PyTorch reference (model.pt + specs.json).

    info holds "dataset" (the dataset the model was trained on, when recorded), "step"
    and "kind". Raises EvaluationError with one clear line when nothing loadable is there.
    """
    if not source:
        raise EvaluationError("no model given: pass --model_dir=DIR (a model_dir, a .keras file or a reference folder)")
    from jointvae_tf.compat import torch as torch_compat

    torch_files = (torch_compat.STATE_DICT_FILE, torch_compat.SPECS_FILE)
    is_torch = (
        os.path.isdir(source)
        and not os.path.isfile(os.path.join(source, checkpoints.CONFIG_FILE))
        and all(os.path.isfile(os.path.join(source, name)) for name in torch_files)
    )
    try:
        if is_torch:
            specs = torch_compat.read_specs(os.path.join(source, torch_compat.SPECS_FILE))
            model = torch_compat.load_torch_checkpoint(os.path.join(source, torch_compat.STATE_DICT_FILE), specs)
            return model, {"kind": "pytorch_reference", "dataset": torch_compat.dataset_name(specs), "step": None}
        model = checkpoints.restore_model(source)
    except (FileNotFoundError, ImportError) as error:
        raise EvaluationError(str(error)) from None
    except (ValueError, OSError, tf.errors.OpError) as error:
        raise EvaluationError(f"cannot load a model from {source}: {error}") from None
    info: dict[str, Any] = {"kind": "keras" if source.endswith(".keras") else "model_dir", "dataset": None, "step": None}
    config_dir = os.path.dirname(os.path.abspath(source)) if source.endswith(".keras") else source
    if os.path.isfile(os.path.join(config_dir, checkpoints.CONFIG_FILE)):
        try:
            info["dataset"] = checkpoints.read_config(config_dir).get("dataset")
        except ValueError:
            pass
    if info["kind"] == "model_dir":
        latest = checkpoints.latest_checkpoint(source)
        info["step"] = checkpoints.checkpoint_step(latest) if latest else None
    return model, info


# ------------------------------------------------------------------------------ data
def dataset_kind(dataset_name: str) -> str:
    """The kind of a dataset name (mnist, dsprites, idx, ...); EvaluationError for unknown names."""
    from jointvae_tf import data

    try:
        return data.parse_name(dataset_name)[0]
    except ValueError as error:
        raise EvaluationError(str(error)) from None


def ground_truth_for(dataset_name: str):
    """(ground truth sampler or None, reason when None) for the disentanglement metrics."""
    from jointvae_tf import data

    if dataset_kind(dataset_name) == "dsprites":
        return data.DSprites(), None
    return None, f"{dataset_name} has no ground-truth factor sampler (only dsprites has one)"


def check_image_shape(model: JointVAE, image_shape: Iterable[int], dataset_name: str) -> None:
    expected, got = tuple(int(d) for d in model.image_shape), tuple(int(d) for d in image_shape)
    if expected != got:
        raise EvaluationError(
            f"the model takes images {list(expected)} but dataset {dataset_name} gives {list(got)}: "
            "evaluate on the data set the model was trained on"
        )


def labelled_images(dataset_name: str, data_dir=None, manual_dir=None, num_images: int | None = None,
                    channels: int | None = None, image_size: int | None = None):
    """(dataset of (images, labels) batches or of images, reason when unlabelled, split used).

    The test split in its own order, re-batched to EVAL_BATCH_SIZE without dropping any image,
    limited to `num_images`. Class-labelled data yields (images, labels); other data yields
    images only, with the reason. Raises EvaluationError when no split can be opened.
    """
    from jointvae_tf import data

    kind = dataset_kind(dataset_name)
    with_labels = kind in CLASS_LABELLED
    reason = None if with_labels else f"{dataset_name} has no class labels"
    errors = []
    for split in ("test", "train"):
        for labels in ((True, False) if with_labels else (False,)):
            try:
                dataset = data.load_dataset(dataset_name, split=split, data_dir=data_dir, manual_dir=manual_dir,
                                            batch_size=1, shuffle=False, with_labels=labels, channels=channels,
                                            image_size=image_size)
            except (ValueError, FileNotFoundError) as error:
                errors.append(f"{split}: {error}")
                continue
            if with_labels and not labels:
                reason = f"{dataset_name} ({split} split) has no labels"
            dataset = dataset.unbatch()
            if num_images is not None:
                dataset = dataset.take(num_images)
            return dataset.batch(EVAL_BATCH_SIZE).prefetch(tf.data.AUTOTUNE), reason, split
    raise EvaluationError(f"cannot open dataset {dataset_name}: {errors[0] if errors else 'no split'}")


# ------------------------------------------------------------------------------ passes
def _batch_pass_fn(model: JointVAE):
    """A tf.function: images -> (recon loss sum, prototype NLL sum, KL_z sums [cont], KL_c sums [num_discrete],
    [categories_i]).

    The reconstruction decodes the posterior mode (continuous means, one-hot argmax categories); the
    prototype decodes z = 0 with the same categories (0 when the model has no discrete latent).
    """
    height, width, channels = model.image_shape

    def nll_sum(images, latent):
        logits = model.decoder_logits(latent, training=False)
        return tf.reduce_sum(losses.negative_log_likelihood(images, logits, model.likelihood))

    @tf.function(input_signature=[tf.TensorSpec([None, height, width, channels], tf.float32)])
    def batch_pass(images):
        out = model.encode(images)
        one_hots = [tf.one_hot(tf.argmax(l, axis=-1), tf.shape(l)[-1]) for l in out["logits"]]
        continuous = [out["mean"]] if model.latent_spec.continuous else []
        recon = nll_sum(images, tf.concat(continuous + one_hots, axis=-1))
        prototype = (nll_sum(images, tf.concat([tf.zeros_like(c) for c in continuous] + one_hots, axis=-1))
                     if one_hots else tf.constant(0.0))
        n = tf.cast(tf.shape(images)[0], tf.float32)
        kl_z = losses.kl_normal(out["mean"], out["log_var"]) * n if model.latent_spec.continuous else tf.zeros([0])
        kl_c = losses.kl_categorical_uniform(out["logits"]) * n if out["logits"] else tf.zeros([0])
        categories = [tf.argmax(l, axis=-1) for l in out["logits"]]
        return recon, prototype, kl_z, kl_c, categories

    return batch_pass


def encode_fn(model: JointVAE):
    """`model.encode` compiled once for any batch size (for `make_representation_fn`)."""
    height, width, channels = model.image_shape
    compiled = tf.function(model.encode, input_signature=[tf.TensorSpec([None, height, width, channels], tf.float32)])

    def encode(images):
        out = compiled(tf.convert_to_tensor(np.asarray(images, np.float32)))
        return {"mean": out["mean"].numpy(), "log_var": out["log_var"].numpy(),
                "logits": [l.numpy() for l in out["logits"]]}

    return encode


def image_pass(model: JointVAE, batches: Iterable) -> dict[str, Any]:
    """Runs the model over batches of images or (images, labels); returns sums and collected arrays.

    Returns {"num_images", "reconstruction_loss", "prototype_nll" (None without discrete latents),
    "kl_continuous", "kl_discrete" (means per image),
    "kl_continuous_per_dim" [cont], "kl_discrete_per_latent" [num_discrete] (idem), "categories": [int [n]] per discrete latent, "labels": int [n] or None, "examples": first images}.
    """
    batch_pass = _batch_pass_fn(model)
    totals = np.zeros(2)  # reconstruction, prototype NLL
    kl_z_sums = np.zeros(model.latent_spec.continuous)
    kl_c_sums = np.zeros(model.latent_spec.num_discrete)
    num = 0
    categories: list[list[np.ndarray]] = [[] for _ in model.latent_spec.discrete]
    labels, examples = [], None
    for batch in batches:
        images, batch_labels = (batch if isinstance(batch, (tuple, list)) else (batch, None))
        images = tf.convert_to_tensor(images, tf.float32)
        if examples is None:
            examples = images[:NUM_EXAMPLE_IMAGES].numpy()
        recon, prototype, kl_z, kl_c, cats = batch_pass(images)
        totals += [float(recon), float(prototype)]
        kl_z_sums += kl_z.numpy()
        kl_c_sums += kl_c.numpy()
        num += int(images.shape[0])
        for i, c in enumerate(cats):
            categories[i].append(c.numpy())
        if batch_labels is not None:
            labels.append(np.asarray(batch_labels))
    if num == 0:
        raise EvaluationError("the evaluation data yielded no image")
    return {
        "num_images": num,
        "reconstruction_loss": totals[0] / num,
        "prototype_nll": totals[1] / num if model.latent_spec.num_discrete else None,
        "kl_continuous": float(kl_z_sums.sum()) / num,
        "kl_discrete": float(kl_c_sums.sum()) / num,
        "kl_continuous_per_dim": (kl_z_sums / num).tolist(),
        "kl_discrete_per_latent": (kl_c_sums / num).tolist(),
        "categories": [np.concatenate(c) for c in categories],
        "labels": np.concatenate(labels) if labels else None,
        "examples": examples,
    }


def accuracy_metrics(categories: list[np.ndarray], labels: np.ndarray) -> dict[str, float]:
    """Discrete accuracy (hungarian and majority) of each discrete latent's argmax against labels.

    Keys: "discrete_accuracy" / "discrete_accuracy_majority" for the first (usually only) discrete
    latent, suffixed "_<i>" for the others.
    """
    labels = np.asarray(labels).astype(np.int64)
    result = {}
    for i, cats in enumerate(categories):
        suffix = "" if i == 0 else f"_{i}"
        cats = np.asarray(cats).astype(np.int64)
        result[f"discrete_accuracy{suffix}"] = jv_metrics.discrete_accuracy(cats, labels, "hungarian")
        result[f"discrete_accuracy_majority{suffix}"] = jv_metrics.discrete_accuracy(cats, labels, "majority")
    return result


def _ground_truth_batches(ground_truth, num_images: int, batch_size: int, random_state):
    """(images, shape labels) batches of `num_images` uniformly sampled dSprites factor combinations."""
    for start in range(0, num_images, batch_size):
        factors, images = ground_truth.sample(min(batch_size, num_images - start), random_state)
        yield images, factors[:, 0]


# ------------------------------------------------------------------------------ evaluate
def evaluate(
    model: JointVAE,
    dataset_name: str,
    data_dir: str | None = None,
    manual_dir: str | None = None,
    seed: int = 0,
    sizes: MetricSizes = MetricSizes(),
    metrics: Iterable[str] | None = None,
    num_accuracy_images: int | None = None,
    log=None,
) -> dict[str, Any]:
    """Every requested metric the dataset supports.

    Args:
      model: a JointVAE.
      dataset_name: a `data.load_dataset` name; dsprites gets the ground-truth metrics.
      data_dir, manual_dir: as in `data.load_dataset`.
      seed: seeds one `np.random.RandomState` per metric (and the dsprites image sample).
      sizes: the metrics' sample sizes.
      metrics: subset of METRICS (default: all).
      num_accuracy_images: labelled test images for discrete accuracy and reconstruction
        (default: the whole test split).
      log: optional callable(str) for progress lines.

    Returns:
      {"dataset", "seed", "metrics": {name: float}, "skipped": {metric: reason},
       "seconds": {metric: float}, "settings": {...}, "examples": images [n, H, W, C] (not JSON),
       and with "reconstruction": "per_latent": {"kl_continuous_per_dim": [cont], "kl_discrete_per_latent": [n]}}.
    """
    requested = tuple(METRICS if metrics is None else metrics)
    unknown = sorted(set(requested) - set(METRICS))
    if unknown:
        raise EvaluationError(f"unknown metrics {unknown}: known are {', '.join(METRICS)}")
    if num_accuracy_images is not None and (isinstance(num_accuracy_images, bool) or num_accuracy_images < 1):
        raise EvaluationError(f"num_accuracy_images must be >= 1, got {num_accuracy_images!r}")
    log = log or (lambda line: None)
    ground_truth, no_ground_truth = ground_truth_for(dataset_name)
    results: dict[str, Any] = {
        "dataset": dataset_name,
        "seed": int(seed),
        "metrics": {},
        "skipped": {},
        "seconds": {},
        "settings": dataclasses.asdict(sizes) | {"num_accuracy_images": num_accuracy_images},
        "examples": None,
    }
    out, skipped, seconds = results["metrics"], results["skipped"], results["seconds"]

    # Images with labels: the test split, or sampled dSprites with their shape.
    if ground_truth is not None:
        check_image_shape(model, ground_truth.observation_shape, dataset_name)
    if {"reconstruction", "discrete_accuracy"} & set(requested):
        start = time.perf_counter()
        if ground_truth is not None:
            num = num_accuracy_images or sizes.ground_truth_images
            batches = _ground_truth_batches(ground_truth, num, EVAL_BATCH_SIZE, np.random.RandomState(seed))
            reason, split = None, f"{num} sampled factor combinations, labels = shape"
        else:
            # As the model takes them: a model trained with --channels=3 on grey images sees them as RGB,
            # one trained with --image_size=128 sees them at 128x128.
            batches, reason, split = labelled_images(dataset_name, data_dir, manual_dir, num_accuracy_images,
                                                     channels=model.image_shape[-1], image_size=model.image_shape[0])
            check_image_shape(model, batches.element_spec[0].shape[1:] if isinstance(batches.element_spec, tuple)
                              else batches.element_spec.shape[1:], dataset_name)
        log(f"encoding {dataset_name} ({split})")
        passed = image_pass(model, batches)
        results["examples"] = passed["examples"]
        results["settings"]["evaluation_images"] = split
        out["num_evaluation_images"] = float(passed["num_images"])
        if "reconstruction" in requested:
            for key in ("reconstruction_loss", "kl_continuous", "kl_discrete", "prototype_nll"):
                if passed[key] is not None:
                    out[key] = float(passed[key])
            results["per_latent"] = {key: passed[key] for key in ("kl_continuous_per_dim", "kl_discrete_per_latent")}
        if "discrete_accuracy" in requested:
            if not model.latent_spec.num_discrete:
                skipped["discrete_accuracy"] = "the model has no discrete latent"
            elif passed["labels"] is None:
                skipped["discrete_accuracy"] = reason or f"{dataset_name} has no labels"
            else:
                out.update(accuracy_metrics(passed["categories"], passed["labels"]))
        seconds["images"] = time.perf_counter() - start

    gt_requested = [name for name in GROUND_TRUTH_METRICS if name in requested]
    if ground_truth is None:
        for name in gt_requested:
            skipped[name] = no_ground_truth
        return results
    # One cache for the ground-truth metrics: each dSprites factor combination is rendered and encoded
    # once (about 723k of the 2.9M the default sizes sample), with the same codes as encoding
    # every sample (`metrics.CachedRepresentation`).
    encode_batch_size = max(sizes.batch_size, CACHE_ENCODE_BATCH_SIZE)
    representation_fn = jv_metrics.CachedRepresentation(
        ground_truth, jv_metrics.make_representation_fn(encode_fn(model), batch_size=encode_batch_size),
        batch_size=sizes.batch_size, encode_batch_size=encode_batch_size)
    for name in gt_requested:
        start = time.perf_counter()
        log(f"computing {name}")
        random_state = np.random.RandomState(seed)
        if name == "factor_vae":
            score = jv_metrics.factor_vae_score(
                ground_truth, representation_fn, random_state, batch_size=sizes.batch_size,
                num_train=sizes.factor_vae_train, num_eval=sizes.factor_vae_eval,
                num_variance_estimate=sizes.factor_vae_variance)
            out["factor_vae_score"] = score["eval_accuracy"]
            out["factor_vae_train_accuracy"] = score["train_accuracy"]
            out["factor_vae_num_active_dims"] = score["num_active_dims"]
        elif name == "mig":
            out["mig"] = jv_metrics.mig(ground_truth, representation_fn, random_state, num_train=sizes.mig_train)["mig"]
        elif name == "dci":
            score = jv_metrics.dci(ground_truth, representation_fn, random_state, num_train=sizes.dci_train,
                                   num_test=sizes.dci_test)
            out.update({f"dci_{key}": value for key, value in score.items()})
        elif name == "sap":
            out["sap_score"] = jv_metrics.sap_score(ground_truth, representation_fn, random_state,
                                                    num_train=sizes.sap_train, num_test=sizes.sap_test)["sap_score"]
        else:
            score = jv_metrics.beta_vae_score(
                ground_truth, representation_fn, random_state, batch_size=sizes.batch_size,
                num_train=sizes.beta_vae_train, num_eval=sizes.beta_vae_eval)
            out["beta_vae_score"] = score["eval_accuracy"]
            out["beta_vae_train_accuracy"] = score["train_accuracy"]
        seconds[name] = time.perf_counter() - start
    results["settings"]["encoded_combinations"] = representation_fn.num_encoded
    return results


# ------------------------------------------------------------------------------ reporting
def measurement_row(results: dict[str, Any]) -> dict[str, Any]:
    """`evaluate`'s results as one flat row of numbers, as bench/reproduce.py records an epoch.

    The held-out terms get a "test_" prefix (test_reconstruction_loss, test_kl_continuous,
    test_kl_discrete, test_prototype_nll: the training averages keep the plain names), and the KL per latent
    dimension comes as test_kl_continuous_per_dim / test_kl_discrete_per_latent lists.
    """
    row = dict(results["metrics"])
    if "reconstruction_loss" in row:
        for key in ("reconstruction_loss", "kl_continuous", "kl_discrete", "prototype_nll"):
            if key in row:
                row[f"test_{key}"] = row.pop(key)
    for key, per_latent in results.get("per_latent", {}).items():
        row[f"test_{key}"] = [round(float(v), 5) for v in per_latent]
    return row


def json_results(results: dict[str, Any], **extra) -> dict[str, Any]:
    """The JSON-able part of `evaluate`'s results, with `extra` keys added."""
    value = {key: val for key, val in results.items() if key != "examples"}
    value.update(extra)
    return value


def format_table(results: dict[str, Any]) -> str:
    """A two-column table (metric | value) followed by one line per skipped metric."""
    rows = [(name, f"{value:.4f}" if isinstance(value, float) and not value.is_integer() else f"{value:g}")
            for name, value in sorted(results["metrics"].items())]
    width = max([len("metric")] + [len(name) for name, _ in rows])
    lines = [f"{'metric'.ljust(width)} | value", f"{'-' * width}-|-{'-' * 10}"]
    lines += [f"{name.ljust(width)} | {value}" for name, value in rows]
    lines += [f"skipped {name}: {reason}" for name, reason in sorted(results["skipped"].items())]
    return "\n".join(lines)


def run(
    source: str,
    dataset: str | None = None,
    output_dir: str | None = None,
    data_dir: str | None = None,
    manual_dir: str | None = None,
    seed: int = 0,
    sizes: MetricSizes = MetricSizes(),
    metrics: Iterable[str] | None = None,
    num_accuracy_images: int | None = None,
    pictures: bool = True,
    log=None,
) -> dict[str, Any]:
    """Loads `source`, evaluates it, writes output_dir/metrics.json and output_dir/images/*.png.

    `dataset` defaults to the one recorded with the model (config.json or specs.json);
    `output_dir` to source/eval (next to a .keras file: its folder's eval/).
    Returns the JSON written, plus "metrics_file".
    """
    model, info = load_model(source)
    dataset = dataset or info["dataset"]
    if not dataset:
        raise EvaluationError(f"{source} records no dataset: pass --dataset")
    dataset_kind(dataset)
    if output_dir is None:
        base = os.path.dirname(os.path.abspath(source)) if source.endswith(".keras") else source
        output_dir = os.path.join(base, "eval")
    results = evaluate(model, dataset, data_dir=data_dir, manual_dir=manual_dir, seed=seed, sizes=sizes,
                       metrics=metrics, num_accuracy_images=num_accuracy_images, log=log)
    images = {}
    if pictures:
        from jointvae_tf import viz

        images = viz.write_all(model, os.path.join(output_dir, IMAGES_SUBDIR), images=results["examples"])
    value = json_results(results, model=os.path.abspath(source), model_kind=info["kind"], step=info["step"],
                         images=images)
    path = os.path.join(output_dir, METRICS_FILE)
    checkpoints.write_json_atomic(path, value)
    value["metrics_file"] = path
    return value
