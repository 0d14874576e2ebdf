"""PyTorch checkpoint import: golden tests against the reference models, layout and bad input.

The golden tests run the reference architecture in PyTorch (defined here from the reference
code's module names, loaded with strict=True) and the imported Keras model on the same real
images and latents, and compare encoder and decoder outputs within 1e-4.
"""

import gzip
import json
import os
import random
import sys

import numpy as np
import pytest
from shared_data import shared_data
import tensorflow as tf

import jointvae_tf as jv
from jointvae_tf.compat import torch as torch_compat

TOLERANCE = 1e-4
NUM_IMAGES = 64
NUM_PRIOR_LATENTS = 32

MNIST_SPECS = {
    "dataset": "mnist",
    "latent_spec": {"cont": 10, "disc": [10]},
    "cont_capacity": [0.0, 5.0, 25000, 30.0],
    "disc_capacity": [0.0, 5.0, 25000, 30.0],
}


@pytest.fixture(scope="module")
def torch():
    return pytest.importorskip("torch", reason="torch is not installed (pip install 'jointvae-tf[torch]')")


# ------------------------------------------------------------------ the PyTorch reference
def _reference_module(torch, image_shape, latent_spec):
    """The reference JointVAE's modules under the reference's names (Schlumberger/joint-vae)."""
    nn = torch.nn
    size, _, channels = image_shape
    encoder = [nn.Conv2d(channels, 32, 4, 2, 1), nn.ReLU()]
    decoder = []
    if size == 64:
        encoder += [nn.Conv2d(32, 32, 4, 2, 1), nn.ReLU()]
        decoder += [nn.ConvTranspose2d(64, 64, 4, 2, 1), nn.ReLU()]
    encoder += [nn.Conv2d(32, 64, 4, 2, 1), nn.ReLU(), nn.Conv2d(64, 64, 4, 2, 1), nn.ReLU()]
    decoder += [
        nn.ConvTranspose2d(64, 32, 4, 2, 1), nn.ReLU(),
        nn.ConvTranspose2d(32, 32, 4, 2, 1), nn.ReLU(),
        nn.ConvTranspose2d(32, channels, 4, 2, 1), nn.Sigmoid(),
    ]
    module = nn.Module()
    module.img_to_features = nn.Sequential(*encoder)
    module.features_to_hidden = nn.Sequential(nn.Linear(64 * 4 * 4, 256), nn.ReLU())
    if latent_spec.continuous:
        module.fc_mean = nn.Linear(256, latent_spec.continuous)
        module.fc_log_var = nn.Linear(256, latent_spec.continuous)
    module.fc_alphas = nn.ModuleList([nn.Linear(256, k) for k in latent_spec.discrete])
    module.latent_to_features = nn.Sequential(
        nn.Linear(latent_spec.latent_dim, 256), nn.ReLU(), nn.Linear(256, 64 * 4 * 4), nn.ReLU()
    )
    module.features_to_img = nn.Sequential(*decoder)
    return module.eval()


def _torch_encode(torch, module, images):
    """Reference inference: images [N, H, W, C] -> mean, log_var [N, cont], [softmax probabilities [N, K_i]]."""
    with torch.no_grad():
        x = torch.from_numpy(images.transpose(0, 3, 1, 2).copy())  # NCHW, standard strides
        hidden = module.features_to_hidden(module.img_to_features(x).view(x.shape[0], -1))
        probs = [torch.softmax(head(hidden), dim=1).numpy() for head in module.fc_alphas]
        return module.fc_mean(hidden).numpy(), module.fc_log_var(hidden).numpy(), probs


def _torch_decode(torch, module, latent):
    """Reference decoder: latent [N, latent_dim] -> images [N, H, W, C] in [0, 1]."""
    with torch.no_grad():
        features = module.latent_to_features(torch.from_numpy(latent)).view(-1, 64, 4, 4)
        return module.features_to_img(features).permute(0, 2, 3, 1).numpy()


# ------------------------------------------------------------------------- real inputs
def _mnist_images(num):
    """The first `num` MNIST test digits in [0, 1], resized 28 -> 32 (bilinear): [num, 32, 32, 1]."""
    with gzip.open(shared_data("mnist", "t10k-images-idx3-ubyte.gz"), "rb") as f:
        images = np.frombuffer(f.read(), np.uint8, offset=16).reshape(-1, 28, 28, 1)[:num]
    return tf.image.resize(images.astype("float32") / 255.0, (32, 32), method="bilinear").numpy()


def _dsprites_images(num):
    """`num` official dSprites frames, evenly spread over the 320 shared ones: [num, 64, 64, 1] in {0, 1}."""
    image_module = pytest.importorskip("PIL.Image")
    with image_module.open(shared_data("dsprites", "dsprites.gif")) as gif:
        frames = []
        for index in np.linspace(0, gif.n_frames - 1, num).astype(int):
            gif.seek(int(index))
            frames.append(np.asarray(gif.convert("L")) > 127)
    return np.stack(frames)[..., None].astype("float32")


REFERENCE_INPUTS = {"mnist": _mnist_images, "fashion": _mnist_images, "dsprites": _dsprites_images}


def _max_abs(a, b):
    return float(np.max(np.abs(np.asarray(a) - np.asarray(b))))


@pytest.mark.parametrize("name", sorted(REFERENCE_INPUTS))
def test_imported_model_computes_what_pytorch_computes(torch, name):
    folder = shared_data("reference_models", name)
    model = jv.compat.load_torch_checkpoint(os.path.join(folder, "model.pt"), os.path.join(folder, "specs.json"))
    specs = torch_compat.read_specs(os.path.join(folder, "specs.json"))
    assert model.latent_spec == jv.LatentSpec.from_dict(specs["latent_spec"])
    assert model.cont_capacity == jv.Capacity.coerce(specs["cont_capacity"])
    assert model.disc_capacity == jv.Capacity.coerce(specs["disc_capacity"])

    reference = _reference_module(torch, model.image_shape, model.latent_spec)
    reference.load_state_dict(
        torch.load(os.path.join(folder, "model.pt"), weights_only=True, map_location="cpu"), strict=True
    )
    images = REFERENCE_INPUTS[name](NUM_IMAGES)
    assert images.shape[1:] == model.image_shape

    mean, log_var, probs = _torch_encode(torch, reference, images)
    encoded = model.encode(images)
    diffs = {"mean": _max_abs(encoded["mean"], mean), "log_var": _max_abs(encoded["log_var"], log_var)}
    for i, p in enumerate(probs):
        diffs[f"probs_{i}"] = _max_abs(tf.nn.softmax(encoded["logits"][i]), p)

    # Posterior modes of the real images (as the reference's eval mode samples) and prior samples.
    modes = np.concatenate([mean] + [np.eye(p.shape[1], dtype="float32")[p.argmax(1)] for p in probs], axis=1)
    latents = np.concatenate([modes, model.sample_prior(NUM_PRIOR_LATENTS, seed=0).numpy()])
    decoded = model.decode(latents)
    diffs["decoder"] = _max_abs(decoded, _torch_decode(torch, reference, latents))
    print(f"{name}: max |keras - torch| " + ", ".join(f"{k} {v:.2e}" for k, v in diffs.items()))
    assert max(diffs.values()) < TOLERANCE, diffs
    # The comparison means something: the model is trained and its outputs are not constant.
    assert float(np.std(decoded)) > 0.1
    assert len(np.unique(np.argmax(probs[0], axis=1))) > 1


# ---------------------------------------------------------------- layout (no torch needed)
def test_flattened_features_are_reordered_from_chw_to_hwc():
    """The 1024-unit layers see PyTorch's (C, H, W) flatten order through Keras' (H, W, C) one."""
    model = torch_compat.model_from_specs(MNIST_SPECS)
    rng = np.random.default_rng(0)
    shapes = torch_compat.expected_state_dict_shapes(model)
    state_dict = {key: rng.normal(size=shape).astype("float32") for key, shape in shapes.items()}
    weights = torch_compat.torch_to_keras_weights(state_dict, model)
    features = rng.normal(size=(4, 4, 64)).astype("float32")  # (H, W, C), as the Keras encoder makes it

    kernel, bias = weights["encoder/hidden"]
    torch_hidden = state_dict["features_to_hidden.0.weight"] @ features.transpose(2, 0, 1).reshape(-1)
    np.testing.assert_allclose(features.reshape(-1) @ kernel + bias,
                               torch_hidden + state_dict["features_to_hidden.0.bias"], rtol=1e-5, atol=1e-4)

    hidden = rng.normal(size=256).astype("float32")
    kernel, bias = weights["decoder_logits/features"]
    torch_features = state_dict["latent_to_features.2.weight"] @ hidden + state_dict["latent_to_features.2.bias"]
    np.testing.assert_allclose((hidden @ kernel + bias).reshape(4, 4, 64),
                               torch_features.reshape(64, 4, 4).transpose(1, 2, 0), rtol=1e-5, atol=1e-4)


def test_expected_keys_follow_the_reference_module_names():
    shapes = torch_compat.expected_state_dict_shapes(
        torch_compat.model_from_specs({"dataset": "chairs", "latent_spec": {"cont": 32, "disc": [2, 2, 2]}})
    )
    assert [k for k in shapes if k.endswith(".weight")] == [
        "img_to_features.0.weight", "img_to_features.2.weight", "img_to_features.4.weight", "img_to_features.6.weight",
        "features_to_hidden.0.weight", "fc_mean.weight", "fc_log_var.weight",
        "fc_alphas.0.weight", "fc_alphas.1.weight", "fc_alphas.2.weight",
        "latent_to_features.0.weight", "latent_to_features.2.weight",
        "features_to_img.0.weight", "features_to_img.2.weight", "features_to_img.4.weight", "features_to_img.6.weight",
    ]
    assert shapes["img_to_features.2.weight"] == (32, 32, 4, 4)  # the 64x64 encoder's extra conv
    assert shapes["features_to_img.6.weight"] == (32, 1, 4, 4)  # ConvTranspose2d: (in, out, kh, kw)
    assert shapes["latent_to_features.0.weight"] == (256, 38)
    discrete_only = torch_compat.expected_state_dict_shapes(
        torch_compat.model_from_specs({"dataset": "mnist", "latent_spec": {"disc": [10]}})
    )
    assert not any(k.startswith(("fc_mean", "fc_log_var")) for k in discrete_only)


@pytest.mark.parametrize(
    "dataset, image_shape",
    [("mnist", (32, 32, 1)), ("fashion_mnist", (32, 32, 1)), ("dsprites", (64, 64, 1)), ("chairs", (64, 64, 1)),
     ("celeba", (64, 64, 3)), ("celeb_a", (64, 64, 3))],
)
def test_image_shape_comes_from_the_dataset(dataset, image_shape):
    specs = {"dataset": dataset, "latent_spec": {"cont": 2, "disc": [3]}}
    model = torch_compat.model_from_specs(specs)
    assert model.image_shape == image_shape
    assert model.temperature == pytest.approx(0.67)


@pytest.mark.parametrize(
    "change, message",
    [
        ({"dataset": "cifar10"}, r"unknown dataset 'cifar10' in specs.json key 'dataset'"),
        ({"dataset": None}, r"unknown dataset None"),
        ({"latent_spec": {"cont": 10, "gauss": 3}}, r"specs.json key 'latent_spec'.*gauss"),
        ({"cont_capacity": [0.0, 5.0]}, r"specs.json key 'cont_capacity'"),
    ],
)
def test_bad_specs_are_refused_naming_the_key(change, message):
    with pytest.raises(ValueError, match=message):
        torch_compat.model_from_specs({**MNIST_SPECS, **change})


@pytest.mark.parametrize("key", ["dataset", "latent_spec"])
def test_specs_without_a_required_key_are_refused(key):
    specs = {k: v for k, v in MNIST_SPECS.items() if k != key}
    with pytest.raises(ValueError, match=f"no '{key}' key"):
        torch_compat.model_from_specs(specs)


# ------------------------------------------------------------------- bad checkpoint files
def _write_checkpoint(torch, folder, state_dict, specs=MNIST_SPECS):
    folder.mkdir(exist_ok=True)
    torch.save(state_dict, str(folder / "model.pt"))
    (folder / "specs.json").write_text(json.dumps(specs))
    return str(folder / "model.pt"), str(folder / "specs.json")


def _mnist_state_dict(torch):
    torch.manual_seed(0)
    spec = jv.LatentSpec.from_dict(MNIST_SPECS["latent_spec"])
    return dict(_reference_module(torch, (32, 32, 1), spec).state_dict())


def test_a_fresh_reference_module_round_trips(torch, tmp_path):
    """Any reference-shaped module (not only the shared ones) imports; the specs.json default is its sibling."""
    state_dict = _mnist_state_dict(torch)
    model_pt, _ = _write_checkpoint(torch, tmp_path / "run", state_dict)
    model = jv.compat.load_torch_checkpoint(model_pt)
    reference = _reference_module(torch, (32, 32, 1), model.latent_spec)
    reference.load_state_dict(state_dict, strict=True)
    latents = model.sample_prior(8, seed=1).numpy()
    np.testing.assert_allclose(model.decode(latents), _torch_decode(torch, reference, latents), atol=TOLERANCE)


@pytest.mark.parametrize(
    "mutate, message",
    [
        (lambda sd: sd.pop("fc_mean.bias"), r"missing key\(s\) \['fc_mean.bias'\]"),
        (lambda sd: sd.update({"fc_extra.weight": sd["fc_mean.weight"]}), r"unexpected key\(s\) \['fc_extra.weight'\]"),
        (lambda sd: sd.update({"features_to_hidden.0.weight": sd["features_to_hidden.0.weight"][:, :1000]}),
         r"'features_to_hidden.0.weight' has shape \[256, 1000\].*needs \[256, 1024\]"),
        (lambda sd: sd.update({"features_to_img.4.weight": sd["features_to_img.4.weight"].permute(1, 0, 2, 3)}),
         r"'features_to_img.4.weight' has shape \[1, 32, 4, 4\]"),
    ],
    ids=["missing", "unexpected", "wrong_shape", "transposed_deconv"],
)
def test_state_dicts_that_do_not_fit_are_refused_naming_the_key(torch, tmp_path, mutate, message):
    state_dict = _mnist_state_dict(torch)
    mutate(state_dict)
    model_pt, specs_json = _write_checkpoint(torch, tmp_path / "run", state_dict)
    with pytest.raises(ValueError, match=message):
        jv.compat.load_torch_checkpoint(model_pt, specs_json)


def test_weights_and_specs_of_different_models_are_refused(torch, tmp_path):
    specs = {"dataset": "dsprites", "latent_spec": {"cont": 6, "disc": [3]}}
    model_pt, specs_json = _write_checkpoint(torch, tmp_path / "run", _mnist_state_dict(torch), specs)
    message = r"64x64 JointVAE with latents cont=6,disc=3: missing key\(s\) \['img_to_features.6"
    with pytest.raises(ValueError, match=message):
        jv.compat.load_torch_checkpoint(model_pt, specs_json)


def test_missing_and_broken_files_are_named(torch, tmp_path):
    model_pt, specs_json = _write_checkpoint(torch, tmp_path / "run", _mnist_state_dict(torch))
    with pytest.raises(FileNotFoundError, match="nowhere/specs.json not found"):
        jv.compat.load_torch_checkpoint(model_pt, str(tmp_path / "nowhere" / "specs.json"))
    with pytest.raises(FileNotFoundError, match="nowhere/model.pt not found"):
        jv.compat.load_torch_checkpoint(str(tmp_path / "nowhere" / "model.pt"), specs_json)
    (tmp_path / "run" / "model.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(ValueError, match="model.pt is not a PyTorch state_dict"):
        jv.compat.load_torch_checkpoint(model_pt, specs_json)
    (tmp_path / "run" / "specs.json").write_text("{dataset: mnist")
    with pytest.raises(ValueError, match="specs.json is not valid JSON"):
        jv.compat.load_torch_checkpoint(model_pt, specs_json)


@pytest.mark.parametrize(
    "corrupt",
    [
        lambda content: random.Random(0).randbytes(4096),
        lambda content: content[: len(content) // 2],
        lambda content: content[:5000],  # torch raises a bare OSError here
        lambda content: b"PK\x03\x04" + content[4:200],
        lambda content: b"",
    ],
    ids=["random_bytes", "truncated", "first_5000_bytes", "zip_header_only", "empty"],
)
def test_a_corrupt_file_is_refused_in_one_line_without_torch_advice(torch, tmp_path, corrupt):
    """torch's own message would suggest weights_only=False, i.e. running the file's pickled code."""
    model_pt, _ = _write_checkpoint(torch, tmp_path / "run", _mnist_state_dict(torch))
    with open(model_pt, "rb") as f:
        content = f.read()
    with open(model_pt, "wb") as f:
        f.write(corrupt(content))
    with pytest.raises(ValueError) as raised:
        torch_compat.read_state_dict(model_pt)
    assert str(raised.value) == (
        f"{model_pt} is not a PyTorch state_dict that loads with weights_only=True "
        "(truncated, corrupt, or not a checkpoint)"
    )


def test_a_pickled_module_instead_of_a_state_dict_is_refused(torch, tmp_path):
    torch.save({"model": torch.nn.Linear(2, 2)}, str(tmp_path / "model.pt"))
    with pytest.raises(ValueError, match="model.pt is not a PyTorch state_dict that loads with weights_only=True") \
            as raised:
        torch_compat.read_state_dict(str(tmp_path / "model.pt"))
    assert "weights_only=False" not in str(raised.value) and "\n" not in str(raised.value)
    torch.save({"epoch": 3}, str(tmp_path / "model.pt"))
    with pytest.raises(ValueError, match="key 'epoch' holds a int, not a tensor"):
        torch_compat.read_state_dict(str(tmp_path / "model.pt"))


def test_without_torch_the_package_imports_and_reading_says_what_to_install(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "torch", None)  # makes `import torch` raise ImportError
    monkeypatch.setattr(jv, "compat", jv.compat)  # the fresh import below rebinds it; restored after
    for name in ("jointvae_tf.compat", "jointvae_tf.compat.torch"):
        monkeypatch.delitem(sys.modules, name)
    import jointvae_tf.compat as compat  # noqa: F401  (a fresh import, without torch)

    (tmp_path / "model.pt").write_bytes(b"")
    with pytest.raises(ImportError, match=r"pip install 'jointvae-tf\[torch\]'"):
        compat.read_state_dict(str(tmp_path / "model.pt"))
