"""Imports JointVAE models trained with the original PyTorch code (Schlumberger/joint-vae).

A reference checkpoint is a folder holding

    model.pt     the module's state_dict (`torch.save(model.state_dict(), ...)`), often saved from a GPU
    specs.json   {"dataset": "mnist", "latent_spec": {"cont": 10, "disc": [10]},
                  "cont_capacity": [min, max, num_iters, gamma], "disc_capacity": [...], ...}

The reference modules map one to one onto the layers of `JointVAE`:

| PyTorch key prefix   | Keras layer                       | weight conversion                              |
|----------------------|-----------------------------------|------------------------------------------------|
| img_to_features.{2i} | encoder/conv_{i}                  | Conv2d (out, in, kh, kw) -> (kh, kw, in, out)  |
| features_to_hidden.0 | encoder/hidden                    | transpose; input rows (C,H,W) -> (H,W,C) order |
| fc_mean, fc_log_var  | encoder/mean, encoder/log_var     | transpose                                      |
| fc_alphas.{i}        | encoder/logits_{i}                | transpose                                      |
| latent_to_features.0 | decoder_logits/hidden             | transpose                                      |
| latent_to_features.2 | decoder_logits/features           | transpose; output columns and bias likewise    |
| features_to_img.{2i} | decoder_logits/deconv_{i}, and    | ConvTranspose2d (in, out, kh, kw)              |
|                      | decoder_logits/logits (the last)  |   -> (kh, kw, out, in)                         |

(The ReLUs sit at the odd indices of the reference's `nn.Sequential`s.) Both kinds of
convolution need the same axis transpose and no spatial flip, and Keras' 'same' padding
with kernel 4 and stride 2 is PyTorch's padding 1, so the imported model computes what
the reference computes (to float32 round-off).

The mapping functions (`expected_state_dict_shapes`, `torch_to_keras_weights`,
`set_keras_weights`, `model_from_specs`) read no files and work on numpy arrays; only
`read_state_dict` needs torch, imported when called (`pip install jointvae-tf[torch]`).
"""

from __future__ import annotations

import dataclasses
import json
import os
import warnings
from typing import Any, Mapping

import keras
import numpy as np

from jointvae_tf.training import presets
from jointvae_tf.model.latents import Capacity, LatentSpec
from jointvae_tf.model import JointVAE

STATE_DICT_FILE = "model.pt"
SPECS_FILE = "specs.json"

# Dataset names of the reference's specs.json (and TFDS' celeb_a) -> this project's preset names.
REFERENCE_DATASETS = {
    "mnist": "mnist",
    "fashion_mnist": "fashion_mnist",
    "dsprites": "dsprites",
    "chairs": "chairs",
    "celeba": "celeb_a",
    "celeb_a": "celeb_a",
}

# Torch -> Keras axis orders: Conv2d (out, in, kh, kw) -> (kh, kw, in, out) and
# ConvTranspose2d (in, out, kh, kw) -> (kh, kw, out, in) are the same transpose.
_CONV_AXES = (2, 3, 1, 0)
_DENSE_AXES = (1, 0)


@dataclasses.dataclass(frozen=True)
class LayerMapping:
    """One reference module and the Keras layer that takes its weight and bias.

    Attributes:
      torch_prefix: state_dict key prefix, e.g. "img_to_features.0" (keys are prefix + ".weight"/".bias").
      keras_path: "encoder/<layer name>" or "decoder_logits/<layer name>".
      conv: a (transposed) convolution; else a dense layer.
      input_features: (H, W, C) when the layer's input is a flattened feature map (PyTorch
        flattens it in (C, H, W) order, Keras in (H, W, C) order).
      output_features: (H, W, C) when the layer's output is reshaped into a feature map.
    """

    torch_prefix: str
    keras_path: str
    conv: bool = False
    input_features: tuple[int, int, int] | None = None
    output_features: tuple[int, int, int] | None = None


def _feature_shape(shape) -> tuple[int, int, int]:
    height, width, channels = (int(d) for d in shape[1:])
    return height, width, channels


def layer_mappings(model: JointVAE) -> list[LayerMapping]:
    """Every reference module of `model`'s architecture, in state_dict order."""
    convs = [layer for layer in model.encoder.layers if isinstance(layer, keras.layers.Conv2D)]
    deconvs = [layer for layer in model.decoder_logits.layers if isinstance(layer, keras.layers.Conv2DTranspose)]
    spec = model.latent_spec
    mappings = [
        LayerMapping(f"img_to_features.{2 * i}", f"encoder/{layer.name}", conv=True) for i, layer in enumerate(convs)
    ]
    mappings.append(
        LayerMapping("features_to_hidden.0", "encoder/hidden", input_features=_feature_shape(convs[-1].output.shape))
    )
    if spec.continuous:
        mappings += [LayerMapping("fc_mean", "encoder/mean"), LayerMapping("fc_log_var", "encoder/log_var")]
    mappings += [LayerMapping(f"fc_alphas.{i}", f"encoder/logits_{i}") for i in range(spec.num_discrete)]
    mappings += [
        LayerMapping("latent_to_features.0", "decoder_logits/hidden"),
        LayerMapping(
            "latent_to_features.2", "decoder_logits/features", output_features=_feature_shape(deconvs[0].input.shape)
        ),
    ]
    mappings += [
        LayerMapping(f"features_to_img.{2 * i}", f"decoder_logits/{layer.name}", conv=True)
        for i, layer in enumerate(deconvs)
    ]
    return mappings


def _keras_layer(model: JointVAE, path: str) -> keras.layers.Layer:
    network, name = path.split("/")
    return getattr(model, network).get_layer(name)


def _torch_shapes(mapping: LayerMapping, layer: keras.layers.Layer) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """The (weight, bias) shapes PyTorch stores for the Keras `layer`."""
    axes = _CONV_AXES if mapping.conv else _DENSE_AXES
    kernel_shape = tuple(int(d) for d in layer.kernel.shape)
    # Applying the inverse of the torch -> Keras transpose.
    weight_shape = tuple(kernel_shape[axes.index(i)] for i in range(len(axes)))
    return weight_shape, tuple(int(d) for d in layer.bias.shape)


def expected_state_dict_shapes(model: JointVAE) -> dict[str, tuple[int, ...]]:
    """{state_dict key: shape} of the reference module with `model`'s architecture."""
    shapes = {}
    for mapping in layer_mappings(model):
        weight_shape, bias_shape = _torch_shapes(mapping, _keras_layer(model, mapping.keras_path))
        shapes[f"{mapping.torch_prefix}.weight"] = weight_shape
        shapes[f"{mapping.torch_prefix}.bias"] = bias_shape
    return shapes


def chw_to_hwc_permutation(feature_shape: tuple[int, int, int]) -> np.ndarray:
    """Indices [H*W*C]: entry j is the (C, H, W)-flat index of the (H, W, C)-flat position j."""
    height, width, channels = feature_shape
    return np.arange(height * width * channels).reshape(channels, height, width).transpose(1, 2, 0).reshape(-1)


def _to_keras(mapping: LayerMapping, weight: np.ndarray, bias: np.ndarray) -> list[np.ndarray]:
    """[kernel, bias] in Keras layout from a reference module's weight and bias."""
    kernel = weight.transpose(_CONV_AXES if mapping.conv else _DENSE_AXES)
    if mapping.input_features is not None:
        kernel = kernel[chw_to_hwc_permutation(mapping.input_features), :]
    if mapping.output_features is not None:
        permutation = chw_to_hwc_permutation(mapping.output_features)
        kernel, bias = kernel[:, permutation], bias[permutation]
    return [np.ascontiguousarray(kernel, dtype=np.float32), np.ascontiguousarray(bias, dtype=np.float32)]


def torch_to_keras_weights(state_dict: Mapping[str, Any], model: JointVAE) -> dict[str, list[np.ndarray]]:
    """Converts a reference state_dict to Keras layouts for `model`'s layers.

    Args:
      state_dict: {key: array} of the reference module (numpy arrays or anything `np.asarray`
        takes; torch tensors must be on the CPU).
      model: a `JointVAE` whose architecture (image size, latent spec) matches the state_dict.

    Returns:
      {"encoder/conv_0": [kernel [4, 4, C, 32], bias [32]], ..., "decoder_logits/logits": [...]}:
      the weights of every layer, ready for `set_keras_weights`.

    Raises:
      ValueError: naming the missing or unexpected keys, or a key whose shape does not fit.
    """
    expected = expected_state_dict_shapes(model)
    missing = [key for key in expected if key not in state_dict]
    unexpected = [key for key in state_dict if key not in expected]
    if missing or unexpected:
        problems = []
        if missing:
            problems.append(f"missing key(s) {missing}")
        if unexpected:
            problems.append(f"unexpected key(s) {unexpected}")
        raise ValueError(
            f"state_dict does not match a {model.image_shape[0]}x{model.image_shape[1]} JointVAE with latents "
            f"{model.latent_spec}: {'; '.join(problems)}"
        )
    arrays = {}
    for key, shape in expected.items():
        array = np.asarray(state_dict[key])
        if array.shape != shape:
            raise ValueError(
                f"state_dict key {key!r} has shape {list(array.shape)}, but a {model.image_shape[0]}x"
                f"{model.image_shape[1]} JointVAE with latents {model.latent_spec} needs {list(shape)}"
            )
        arrays[key] = array
    return {
        mapping.keras_path: _to_keras(
            mapping, arrays[f"{mapping.torch_prefix}.weight"], arrays[f"{mapping.torch_prefix}.bias"]
        )
        for mapping in layer_mappings(model)
    }


def set_keras_weights(model: JointVAE, weights: Mapping[str, list[np.ndarray]]) -> None:
    """Assigns {"encoder/conv_0": [kernel, bias], ...} (from `torch_to_keras_weights`) to `model`'s layers."""
    for path, arrays in weights.items():
        _keras_layer(model, path).set_weights(arrays)


# ----------------------------------------------------------------------------- specs.json
def dataset_name(specs: Mapping[str, Any]) -> str:
    """This project's name (a preset) for specs.json's "dataset"; raises ValueError naming the key."""
    if "dataset" not in specs:
        raise ValueError(f"{SPECS_FILE} has no 'dataset' key (one of {sorted(REFERENCE_DATASETS)})")
    dataset = specs["dataset"]
    if not isinstance(dataset, str) or dataset not in REFERENCE_DATASETS:
        raise ValueError(
            f"unknown dataset {dataset!r} in {SPECS_FILE} key 'dataset': known are {sorted(REFERENCE_DATASETS)}"
        )
    return REFERENCE_DATASETS[dataset]


_REQUIRED = object()


def _specs_value(specs: Mapping[str, Any], key: str, parse, default: Any = _REQUIRED):
    """parse(specs[key]), or `default` when the key is absent; errors name the key."""
    if key not in specs:
        if default is _REQUIRED:
            raise ValueError(f"{SPECS_FILE} has no {key!r} key")
        return default
    try:
        return parse(specs[key])
    except ValueError as error:
        raise ValueError(f"{SPECS_FILE} key {key!r}: {error}") from None


def model_from_specs(specs: Mapping[str, Any]) -> JointVAE:
    """An untrained `JointVAE` with the architecture and capacities a reference specs.json describes.

    The image shape comes from the dataset (mnist, fashion_mnist: 32x32x1; dsprites, chairs:
    64x64x1; celeba / celeb_a: 64x64x3); the Gumbel-softmax temperature is the reference's
    0.67; a capacity missing from specs.json takes the dataset preset's. The seed is fixed (0)
    so that importing the same files twice gives the same model_dir.
    """
    preset = presets.PRESETS[dataset_name(specs)]
    return JointVAE(
        image_shape=preset.image_shape,
        latent_spec=_specs_value(specs, "latent_spec", LatentSpec.from_dict),
        cont_capacity=_specs_value(specs, "cont_capacity", Capacity.coerce, preset.cont_capacity),
        disc_capacity=_specs_value(specs, "disc_capacity", Capacity.coerce, preset.disc_capacity),
        temperature=preset.temperature,
        seed=0,
    )


# ------------------------------------------------------------------------------------ IO
def read_specs(path: str) -> dict[str, Any]:
    """The reference's specs.json as a dict (raises FileNotFoundError / ValueError naming the file)."""
    if not os.path.isfile(path):
        raise FileNotFoundError(f"{path} not found: a PyTorch JointVAE checkpoint needs its {SPECS_FILE}")
    try:
        with open(path, encoding="utf-8") as f:
            specs = json.load(f)
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise ValueError(f"{path} is not valid JSON: {error}") from None
    if not isinstance(specs, dict):
        raise ValueError(f"{path} must hold a JSON object, got {type(specs).__name__}")
    return specs


def read_state_dict(path: str) -> dict[str, np.ndarray]:
    """A PyTorch state_dict file as {key: float32 numpy array}, loaded on the CPU.

    The file is loaded with `torch.load(weights_only=True)`, which unpickles tensors and plain
    containers only, never arbitrary Python objects: a checkpoint is untrusted input. A file
    that does not load that way is refused as it is; the error never suggests loading it
    otherwise.

    Raises:
      ImportError: torch is not installed.
      FileNotFoundError, ValueError: naming the file, when it is absent or not a state_dict
        (truncated, corrupt, or not a checkpoint).
      OSError: the file cannot be read (e.g. no permission).
    """
    try:
        import torch
    except ImportError as error:
        raise ImportError(
            "importing PyTorch checkpoints needs torch: pip install 'jointvae-tf[torch]'"
        ) from error
    if not os.path.isfile(path):
        raise FileNotFoundError(f"{path} not found: a PyTorch JointVAE checkpoint needs its {STATE_DICT_FILE}")
    with open(path, "rb") as f:  # an unreadable file raises its own OSError here, not "corrupt" below
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # torch's notes on odd pickle protocols, not for the user
                state_dict = torch.load(f, weights_only=True, map_location="cpu")
        except Exception:  # noqa: BLE001  (garbage bytes raise nearly any type from the unpickler)
            # Not torch's message: it advises retrying with weights_only=False, which would run code
            # from the file, and must never reach the user.
            raise ValueError(f"{path} is not a PyTorch state_dict that loads with weights_only=True "
                             "(truncated, corrupt, or not a checkpoint)") from None
    if not isinstance(state_dict, Mapping):
        raise ValueError(f"{path} holds a {type(state_dict).__name__}, not a state_dict (a dict of tensors)")
    arrays = {}
    for key, value in state_dict.items():
        if not isinstance(value, torch.Tensor):
            raise ValueError(f"{path}: state_dict key {key!r} holds a {type(value).__name__}, not a tensor")
        arrays[key] = value.detach().to(device="cpu", dtype=torch.float32).numpy()
    return arrays


def load_torch_checkpoint(model_pt: str, specs_json: str | Mapping[str, Any] | None = None) -> JointVAE:
    """A `JointVAE` carrying the weights of a model trained with the original PyTorch code.

    Args:
      model_pt: path of the reference's state_dict file (model.pt).
      specs_json: path of its specs.json, or the specs as a dict; default: the specs.json next to model_pt.

    Returns:
      The model, whose `encode` / `decode` give the reference's outputs for the same inputs.

    Raises:
      FileNotFoundError: a file is missing (named).
      ValueError: unknown dataset, bad specs, or a state_dict that does not fit (naming the key).
      ImportError: torch is not installed.
    """
    if specs_json is None:
        specs_json = os.path.join(os.path.dirname(model_pt), SPECS_FILE)
    specs = read_specs(specs_json) if isinstance(specs_json, str) else specs_json
    model = model_from_specs(specs)
    set_keras_weights(model, torch_to_keras_weights(read_state_dict(model_pt), model))
    return model
