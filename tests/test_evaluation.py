"""jointvae_tf.evaluation: metrics on dsprites and labelled MNIST, seeding, skipped metrics and bad input."""

import json
import os

import numpy as np
import pytest
from shared_data import shared_data

from jointvae_tf import evaluation
from jointvae_tf.model import losses
from jointvae_tf.training import checkpoints
from jointvae_tf.model import JointVAE

SMALL = evaluation.MetricSizes(
    factor_vae_variance=200, factor_vae_train=30, factor_vae_eval=20, mig_train=200, beta_vae_train=20,
    beta_vae_eval=10, ground_truth_images=150, batch_size=16, dci_train=200, dci_test=100, sap_train=200,
    sap_test=100,
)


@pytest.fixture(scope="module")
def dsprites_model():
    return JointVAE((64, 64, 1), "cont=2,disc=3", seed=1)


@pytest.fixture(scope="module")
def mnist_model():
    return JointVAE((32, 32, 1), "cont=2,disc=10", seed=2)


@pytest.fixture(scope="module")
def dsprites_results(dsprites_model):
    return evaluation.evaluate(dsprites_model, "dsprites", seed=3, sizes=SMALL)


def test_dsprites_has_every_metric_in_range(dsprites_results):
    values = dsprites_results["metrics"]
    for key in ("factor_vae_score", "factor_vae_train_accuracy", "mig", "beta_vae_score", "beta_vae_train_accuracy",
                "discrete_accuracy", "discrete_accuracy_majority", "dci_disentanglement", "dci_completeness",
                "dci_informativeness_train", "dci_informativeness_test", "sap_score"):
        assert 0.0 <= values[key] <= 1.0, key
    assert values["reconstruction_loss"] > 0 and values["kl_continuous"] >= 0 and values["kl_discrete"] >= 0
    assert values["num_evaluation_images"] == SMALL.ground_truth_images
    assert 0 <= values["factor_vae_num_active_dims"] <= 2 + 3
    assert dsprites_results["skipped"] == {}
    assert dsprites_results["examples"].shape == (evaluation.NUM_EXAMPLE_IMAGES, 64, 64, 1)
    # Majority renaming is never worse than one-to-one renaming.
    assert values["discrete_accuracy_majority"] >= values["discrete_accuracy"]


def test_kl_per_latent_adds_up_to_the_totals_and_matches_the_loss_functions(dsprites_model):
    images = np.random.RandomState(0).uniform(size=(70, 64, 64, 1)).astype(np.float32)
    passed = evaluation.image_pass(dsprites_model, [images[:64], images[64:]])
    out = dsprites_model.encode(images)
    expected_z = losses.kl_normal(out["mean"], out["log_var"]).numpy()
    expected_c = losses.kl_categorical_uniform(out["logits"]).numpy()
    np.testing.assert_allclose(passed["kl_continuous_per_dim"], expected_z, rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(passed["kl_discrete_per_latent"], expected_c, rtol=1e-4, atol=1e-6)
    assert len(passed["kl_continuous_per_dim"]) == 2 and len(passed["kl_discrete_per_latent"]) == 1
    assert passed["kl_continuous"] == pytest.approx(sum(passed["kl_continuous_per_dim"]))
    assert passed["kl_discrete"] == pytest.approx(sum(passed["kl_discrete_per_latent"]))


def test_same_seed_same_numbers_other_seed_other_sample(dsprites_model, dsprites_results):
    again = evaluation.evaluate(dsprites_model, "dsprites", seed=3, sizes=SMALL)
    assert again["metrics"] == dsprites_results["metrics"]
    other = evaluation.evaluate(dsprites_model, "dsprites", seed=4, sizes=SMALL, metrics=["reconstruction"])
    assert other["metrics"]["reconstruction_loss"] != dsprites_results["metrics"]["reconstruction_loss"]


def test_each_metric_has_its_own_random_state(dsprites_model, dsprites_results):
    alone = evaluation.evaluate(dsprites_model, "dsprites", seed=3, sizes=SMALL, metrics=["mig"])
    assert alone["metrics"] == {"mig": dsprites_results["metrics"]["mig"]}
    alone = evaluation.evaluate(dsprites_model, "dsprites", seed=3, sizes=SMALL, metrics=["sap", "dci"])
    assert alone["metrics"] == {key: value for key, value in dsprites_results["metrics"].items()
                                if key.startswith("dci_") or key == "sap_score"}
    assert len(alone["metrics"]) == 5


def test_mnist_accuracy_on_test_labels_and_ground_truth_metrics_skipped(mnist_model):
    dataset = f"idx:{shared_data('mnist')}"
    results = evaluation.evaluate(mnist_model, dataset, num_accuracy_images=250)
    values = results["metrics"]
    assert values["num_evaluation_images"] == 250  # not a multiple of the batch: nothing dropped
    assert 0.0 <= values["discrete_accuracy"] <= values["discrete_accuracy_majority"] <= 1.0
    assert values["reconstruction_loss"] > 0
    assert results["settings"]["evaluation_images"] == "test"
    assert set(results["skipped"]) == set(evaluation.GROUND_TRUTH_METRICS)
    for reason in results["skipped"].values():
        assert "no ground-truth factor" in reason
    table = evaluation.format_table(results)
    assert "discrete_accuracy" in table and "skipped factor_vae: " in table


def test_accuracy_metrics_rename_categories():
    labels = np.array([0, 0, 1, 1, 2, 2])
    categories = [np.array([5, 5, 3, 3, 3, 1]), np.array([0, 1, 0, 1, 0, 1])]
    values = evaluation.accuracy_metrics(categories, labels)
    assert values["discrete_accuracy"] == pytest.approx(5 / 6)
    assert values["discrete_accuracy_majority"] == pytest.approx(5 / 6)
    assert values["discrete_accuracy_1"] == pytest.approx(2 / 6)


def test_labelled_images_reach_the_model_with_its_channel_count(tmp_path):
    """A model trained with --channels=3 on grey images is evaluated on them as RGB, as it was trained."""
    random = np.random.RandomState(0)
    path = str(tmp_path / "grey.npz")
    np.savez(path, x_test=(random.rand(40, 32, 32) * 255).astype("uint8"), y_test=random.randint(0, 3, 40))
    model = JointVAE((32, 32, 3), "cont=2,disc=3", seed=0)
    results = evaluation.evaluate(model, f"npz:{path}", metrics=["reconstruction", "discrete_accuracy"])
    assert results["metrics"]["num_evaluation_images"] == 40
    assert 0.0 <= results["metrics"]["discrete_accuracy"] <= 1.0


def test_model_without_discrete_latent_skips_accuracy():
    model = JointVAE((64, 64, 1), "cont=2", seed=0)
    results = evaluation.evaluate(model, "dsprites", sizes=SMALL, metrics=["discrete_accuracy", "mig"])
    assert results["skipped"] == {"discrete_accuracy": "the model has no discrete latent"}
    assert 0.0 <= results["metrics"]["mig"] <= 1.0


@pytest.mark.parametrize(
    "dataset, metrics, message",
    [
        ("nonsense", None, "unknown dataset 'nonsense'"),
        ("idx:/no/such/folder", ["reconstruction"], "cannot open dataset"),
        ("dsprites", ["speed"], "unknown metrics ['speed']"),
    ],
)
def test_bad_input_is_one_clear_error(dsprites_model, dataset, metrics, message):
    with pytest.raises(evaluation.EvaluationError, match=None) as error:
        evaluation.evaluate(dsprites_model, dataset, sizes=SMALL, metrics=metrics)
    assert message in str(error.value)


def test_image_shape_mismatch(mnist_model):
    with pytest.raises(evaluation.EvaluationError, match=r"takes images \[32, 32, 1\] but dataset dsprites gives "
                                                         r"\[64, 64, 1\]"):
        evaluation.evaluate(mnist_model, "dsprites", sizes=SMALL)


def test_bad_sizes():
    with pytest.raises(evaluation.EvaluationError, match="mig_train must be an integer >= 1"):
        evaluation.MetricSizes(mig_train=0)


def test_load_model_errors(tmp_path):
    with pytest.raises(evaluation.EvaluationError, match="not found"):
        evaluation.load_model(str(tmp_path / "missing"))
    with pytest.raises(evaluation.EvaluationError, match="config.json not found"):
        evaluation.load_model(str(tmp_path))
    with pytest.raises(evaluation.EvaluationError, match="no model given"):
        evaluation.load_model("")


def test_run_writes_metrics_json_and_pictures(tmp_path, dsprites_model):
    model_dir = str(tmp_path / "run")
    checkpoints.save_model_dir(dsprites_model, model_dir, {"dataset": "dsprites"})
    result = evaluation.run(model_dir, seed=3, sizes=SMALL, metrics=["reconstruction", "discrete_accuracy", "mig"])
    path = os.path.join(model_dir, "eval", "metrics.json")
    assert result["metrics_file"] == path
    written = json.load(open(path))
    assert written["dataset"] == "dsprites" and written["model_kind"] == "model_dir"
    assert set(written["metrics"]) >= {"mig", "discrete_accuracy", "reconstruction_loss"}
    assert written["skipped"] == {}
    assert written["images"] and all(os.path.isfile(p) for p in written["images"].values())
    assert not [name for name in os.listdir(os.path.dirname(path)) if name.startswith(".tmp")]


def test_reference_pytorch_model_loads_with_its_dataset():
    pytest.importorskip("torch")
    model, info = evaluation.load_model(shared_data("reference_models", "dsprites"))
    assert info == {"kind": "pytorch_reference", "dataset": "dsprites", "step": None}
    results = evaluation.evaluate(model, info["dataset"], sizes=SMALL, metrics=["discrete_accuracy"])
    assert 0.0 <= results["metrics"]["discrete_accuracy"] <= 1.0


@pytest.mark.parametrize("likelihood", ["bernoulli", "laplace", "continuous_bernoulli"])
def test_reconstruction_is_the_models_likelihood_at_the_posterior_mode(likelihood):
    model = JointVAE((32, 32, 1), "cont=2,disc=3", seed=4, likelihood=likelihood)
    images = np.random.RandomState(1).uniform(size=(30, 32, 32, 1)).astype(np.float32)
    passed = evaluation.image_pass(model, [images[:16], images[16:]])
    expected = losses.reconstruction_loss(images, model.decoder_logits(model.latent(images)), likelihood)
    # abs: a sum of 1,024 float32 pixel terms of up to ~1 nat each, in batches or whole, rounds differently by
    # ~1e-5 nats; the continuous Bernoulli's terms cancel to a total near 0 (0.0152), where rel alone fails.
    assert passed["reconstruction_loss"] == pytest.approx(float(expected), rel=1e-5, abs=1e-4)


def test_prototype_nll_decodes_the_prior_mean_with_each_images_categories():
    model = JointVAE((32, 32, 1), "cont=3,disc=4,2", seed=5)
    images = (np.random.RandomState(2).uniform(size=(40, 32, 32, 1)) > 0.5).astype(np.float32)
    model(images[:1])
    for weight in model.weights:  # larger weights: an untrained decoder hardly sees z
        weight.assign(weight * 4.0)
    passed = evaluation.image_pass(model, [images[:32], images[32:]])
    logits = model.encode(images)["logits"]
    one_hots = [np.eye(n)[np.argmax(l, axis=-1)] for n, l in zip((4, 2), logits)]
    prototype = np.asarray(model.decoder_logits(np.concatenate([np.zeros((40, 3))] + one_hots, -1).astype(np.float32)))
    # Bernoulli NLL from logits, written out: softplus(l) - x * l.
    nll = np.logaddexp(0.0, prototype) - images * prototype
    assert passed["prototype_nll"] == pytest.approx(nll.reshape(40, -1).sum(-1).mean(), rel=1e-5)
    assert passed["prototype_nll"] != pytest.approx(passed["reconstruction_loss"], rel=1e-3)
    no_discrete = evaluation.image_pass(JointVAE((32, 32, 1), "cont=3", seed=5), [images])
    assert no_discrete["prototype_nll"] is None
    results = evaluation.evaluate(JointVAE((64, 64, 1), "cont=2", seed=5), "dsprites", sizes=SMALL,
                                  metrics=["reconstruction"])
    assert "prototype_nll" not in results["metrics"] and "reconstruction_loss" in results["metrics"]


def test_prototype_nll_of_the_released_mnist_model():
    # Measured on 2026-12-06 (and on 2026-12-01 with a separate script): 277.93 nats on the 10,000 test digits.
    pytest.importorskip("torch")
    model, _ = evaluation.load_model(shared_data("reference_models", "mnist"))
    results = evaluation.evaluate(model, "idx:" + shared_data("mnist"), metrics=["reconstruction"])
    assert results["metrics"]["prototype_nll"] == pytest.approx(277.93, abs=0.02)
    row = evaluation.measurement_row(results)
    assert row["test_prototype_nll"] == results["metrics"]["prototype_nll"] and "prototype_nll" not in row
