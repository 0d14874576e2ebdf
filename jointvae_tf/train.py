"""Trains a JointVAE: `python -m jointvae_tf.train --dataset=dsprites --model_dir=runs/dsprites`.

Flags left unset take the dataset's preset (the reference's hyperparameters, see
jointvae_tf/training/presets.py). Running the same command again resumes from the latest checkpoint.
`--flagfile=FILE` reads flags from a file (see configs/).
"""

from __future__ import annotations

import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from absl import app, flags, logging  # noqa: E402

FLAGS = flags.FLAGS
flags.DEFINE_string("dataset", "dsprites", "mnist, fashion_mnist, dsprites, celeb_a, shapes3d, folder:PATH, idx:PATH or npz:PATH.")
flags.DEFINE_string("data_dir", None, "TFDS data_dir (where prepared data sets live).")
flags.DEFINE_string("manual_dir", None, "Folder with a data set's original download files, to build it offline.")
flags.DEFINE_integer("channels", None, "Convert every image to 1 (grayscale) or 3 (RGB) channels (default: as stored).")
flags.DEFINE_integer("image_size", None, "Resize images to this square side: 32, 64, 128 or 256 (default: the "
                     "data set's, 32 for MNIST-like, 64 otherwise); the networks add a stride-2 block per doubling.")
flags.DEFINE_string("preset", None, "Preset to take unset hyperparameters from (default: the dataset's).")
flags.DEFINE_string("latent_spec", None, "Latents, e.g. 'cont=10,disc=10' or 'cont=32,disc=2,2,2'.")
flags.DEFINE_string("cont_capacity", None, "Continuous capacity 'min,max,num_iters,gamma'.")
flags.DEFINE_string("disc_capacity", None, "Discrete capacity 'min,max,num_iters,gamma'.")
flags.DEFINE_string("temperature", None, "Gumbel-softmax temperature: a number (0.67), or 'start,end,num_iters' "
                    "(e.g. 1.0,0.5,20000) to anneal it exponentially with the training step.")
flags.DEFINE_bool("straight_through", False, "Straight-through Gumbel-softmax: the decoder gets one-hot discrete "
                  "samples in training, with the relaxed samples' gradients.")
flags.DEFINE_string("discrete_kl", "categorical", "Discrete KL term in training: categorical (analytic, the "
                    "reference's) or concrete (Monte-Carlo KL of the relaxed samples).")
flags.DEFINE_string("likelihood", "bernoulli", "Decoder likelihood p(x | z): bernoulli (the reference's), gaussian "
                    "(fixed variance 1/2: squared error), laplace (fixed scale 1/2: absolute error) or "
                    "continuous_bernoulli (normalised on [0, 1]).")
flags.DEFINE_float("category_balance", 0.0, "Weight of a category balance term (not the paper's): the KL of the "
                   "batch's aggregate categorical posterior to uniform; 0 (default) is off.")
flags.DEFINE_float("latent_independence", 0.0, "Weight of a latent independence term (not the paper's): a Gaussian "
                   "estimate of I(z; c), the mutual information between the continuous and discrete latents over "
                   "the batch's aggregate posterior; 0 (default) is off.")
flags.DEFINE_integer("batch_size", None, "Global batch size (split across replicas).")
flags.DEFINE_float("learning_rate", None, "Adam learning rate.")
flags.DEFINE_integer("steps", None, "Total training steps (default: the preset's, e.g. 30,000 for dsprites_fast, "
                     "else the longest capacity schedule).")
flags.DEFINE_integer("epochs", None, "Total epochs (instead of --steps).")
flags.DEFINE_integer("steps_per_epoch", None, "Steps per Keras epoch (default: one pass over finite data, else 1000).")
flags.DEFINE_string("model_dir", os.path.join("runs", "dsprites"), "Where checkpoints, logs, pictures and config.json go.")
flags.DEFINE_integer("seed", 0, "Seed of data order, initial weights and sampling noise.")
flags.DEFINE_enum("strategy", "auto", ["auto", "default", "mirrored", "multi_worker"], "tf.distribute strategy.")
flags.DEFINE_string("precision", "float32", "Keras dtype policy: float32, mixed_bfloat16 (CPUs with AVX-512 BF16, "
                    "TPUs) or mixed_float16 (GPUs; with loss scaling). Variables stay float32.")
flags.DEFINE_integer("cpu_replicas", 1, "Split the CPU into N logical devices (mirrored training without GPUs).")
flags.DEFINE_integer("checkpoint_every", 1000, "Steps between checkpoints.")
flags.DEFINE_integer("keep_checkpoints", 3, "How many recent checkpoints to keep.")
flags.DEFINE_integer("log_every", 100, "Steps between TensorBoard scalar writes.")
flags.DEFINE_integer("image_every", 2000, "Steps between traversal pictures.")
flags.DEFINE_string("verbose", "auto", "Keras progress: auto, 0 (silent), 1 (bar) or 2 (a line per epoch).")


# What shells and schedulers expect of a process ended by a signal: 128 + its number.
EXIT_CODES = {"SIGINT": 130, "SIGTERM": 143}


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {' '.join(argv[1:])}")
    import tensorflow as tf

    from jointvae_tf.training import distribute

    try:
        distribute.split_cpu(FLAGS.cpu_replicas)
        from jointvae_tf.training import train_lib

        config = train_lib.TrainConfig(
            **{field: FLAGS[field].value for field in train_lib.TrainConfig.__dataclass_fields__}
        )
        if config.verbose != "auto":
            config.verbose = int(config.verbose)
        summary = train_lib.train(config)
    except (ValueError, FileNotFoundError, FloatingPointError, RuntimeError, OSError, MemoryError,
            tf.errors.OpError) as error:
        message = getattr(error, "message", None) or str(error) or type(error).__name__  # tf.errors keep theirs
        if isinstance(error, MemoryError) or "OOM" in message or "ResourceExhausted" in type(error).__name__:
            message = f"out of memory: {message.splitlines()[0]} (a smaller --batch_size or --latent_spec?)"
        logging.error("%s", message)
        print(f"jointvae-train: error: {message.splitlines()[0]}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("jointvae-train: interrupted again while stopping: the last checkpoint is the one saved before",
              file=sys.stderr)
        return EXIT_CODES["SIGINT"]
    if summary["interrupted"]:
        print(f"jointvae-train: stopped by {summary['interrupted']} at step {summary['step']}; "
              f"checkpoint {summary['checkpoint']} (run the same command to resume)", file=sys.stderr)
        return EXIT_CODES[summary["interrupted"]]
    logging.info("trained to step %d of %d; checkpoint %s", summary["step"], summary["total_steps"], summary["checkpoint"])
    print(f"model_dir: {summary['model_dir']}  step: {summary['step']}  "
          + "  ".join(f"{k}: {v:.4g}" for k, v in sorted(summary["logs"].items())))
    return 0


def run():
    """Console script entry point (jointvae-train)."""
    app.run(main)


if __name__ == "__main__":
    run()
