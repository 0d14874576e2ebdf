"""Interoperability with other JointVAE implementations.

    load_torch_checkpoint(model_pt, specs_json)   a JointVAE from the original PyTorch code's files
    torch_to_keras_weights(state_dict, model)     the pure layout mapping behind it

torch is an optional extra (`pip install 'jointvae-tf[torch]'`), imported only when a
checkpoint file is read.
"""

from jointvae_tf.compat.torch import (
    expected_state_dict_shapes,
    load_torch_checkpoint,
    model_from_specs,
    read_specs,
    read_state_dict,
    set_keras_weights,
    torch_to_keras_weights,
)

__all__ = [
    "expected_state_dict_shapes",
    "load_torch_checkpoint",
    "model_from_specs",
    "read_specs",
    "read_state_dict",
    "set_keras_weights",
    "torch_to_keras_weights",
]
