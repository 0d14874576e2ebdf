"""Evaluates a trained JointVAE: `python -m jointvae_tf.evaluate --model_dir=runs/dsprites`.

Writes output_dir/metrics.json and pictures under output_dir/images, and prints a table
(metric | value). On dsprites: FactorVAE, MIG, BetaVAE, DCI and SAP scores on the ground truth, the
shape accuracy of the discrete latent and the reconstruction loss; on labelled data (mnist,
fashion_mnist, idx:, npz:): discrete accuracy against the test labels and the reconstruction
loss. Metrics a data set cannot support are skipped with a line saying why. --model_dir takes
a model_dir, a .keras file, or a folder holding a PyTorch reference model (model.pt + specs.json).
The logic lives in `jointvae_tf.evaluation`.
"""

from __future__ import annotations

import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from absl import app, flags, logging  # noqa: E402

FLAGS = flags.FLAGS
flags.DEFINE_string("model_dir", None, "A model_dir, a .keras file, or a folder with a PyTorch model.pt + specs.json.")
flags.DEFINE_string("dataset", None, "Dataset to evaluate on (default: the one the model was trained on).")
flags.DEFINE_string("data_dir", None, "TFDS data_dir (where prepared data sets live).")
flags.DEFINE_string("manual_dir", None, "Folder with a data set's original download files, to build it offline.")
flags.DEFINE_string("output_dir", None, "Where metrics.json and images/ go (default: <model_dir>/eval).")
flags.DEFINE_integer("seed", 0, "Seed of every metric's random state.")
flags.DEFINE_list("metrics", None, "Subset of reconstruction, discrete_accuracy, factor_vae, mig, beta_vae, dci, sap "
                  "(default: all).")
flags.DEFINE_integer("factor_vae_variance", 10000, "FactorVAE: points for the global variances.")
flags.DEFINE_integer("factor_vae_train", 10000, "FactorVAE: training votes.")
flags.DEFINE_integer("factor_vae_eval", 5000, "FactorVAE: evaluation votes.")
flags.DEFINE_integer("mig_train", 10000, "MIG: points.")
flags.DEFINE_integer("beta_vae_train", 10000, "BetaVAE: training points.")
flags.DEFINE_integer("beta_vae_eval", 5000, "BetaVAE: evaluation points.")
flags.DEFINE_integer("dci_train", 10000, "DCI: points the trees are fitted on.")
flags.DEFINE_integer("dci_test", 5000, "DCI: points of the test informativeness.")
flags.DEFINE_integer("sap_train", 10000, "SAP: points the single-latent classifiers are fitted on.")
flags.DEFINE_integer("sap_test", 5000, "SAP: points they are scored on.")
flags.DEFINE_integer("num_accuracy_images", None,
                     "Images for discrete accuracy and reconstruction (default: the whole test split; "
                     "dsprites: 10,000 sampled).")
flags.DEFINE_bool("pictures", True, "Write traversals, samples and reconstructions to output_dir/images.")

SIZE_FLAGS = ("factor_vae_variance", "factor_vae_train", "factor_vae_eval", "mig_train", "beta_vae_train",
              "beta_vae_eval", "dci_train", "dci_test", "sap_train", "sap_test")


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {' '.join(argv[1:])}")
    from jointvae_tf import evaluation

    try:
        sizes = evaluation.MetricSizes(**{name: FLAGS[name].value for name in SIZE_FLAGS})
        result = evaluation.run(
            FLAGS.model_dir, dataset=FLAGS.dataset, output_dir=FLAGS.output_dir, data_dir=FLAGS.data_dir,
            manual_dir=FLAGS.manual_dir, seed=FLAGS.seed, sizes=sizes, metrics=FLAGS.metrics,
            num_accuracy_images=FLAGS.num_accuracy_images, pictures=FLAGS.pictures, log=logging.info,
        )
    except (ValueError, FileNotFoundError, ImportError, RuntimeError) as error:
        print(f"jointvae-evaluate: error: {error}", file=sys.stderr)
        return 1
    print(f"model: {result['model']}  dataset: {result['dataset']}  seed: {result['seed']}")
    print(evaluation.format_table(result))
    print(f"wrote {result['metrics_file']}")
    return 0


def run():
    """Console script entry point (jointvae-evaluate)."""
    app.run(main)


if __name__ == "__main__":
    run()
