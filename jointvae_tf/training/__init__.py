"""The training side: from a configuration to a trained model_dir.

  * `presets`:     each dataset's reference recipe (latent spec, capacities, steps);
  * `distribute`:  the tf.distribute strategy for one device, several GPUs or several machines;
  * `checkpoints`: the model_dir (config.json, checkpoints, its lock) and loading a model back;
  * `callbacks`:   checkpointing, the NaN guard, TensorBoard scalars and pictures, stop on a signal;
  * `train_lib`:   `TrainConfig` and `train(config)`: configuration -> strategy -> data -> model -> fit.

The `jointvae-train` binary (`python -m jointvae_tf.train`) only turns flags into a `TrainConfig`.
"""

from jointvae_tf.training.train_lib import TrainConfig, train, validate

__all__ = ["TrainConfig", "train", "validate"]
