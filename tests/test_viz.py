import os

import keras
import numpy as np
import pytest
import tensorflow as tf
from scipy import stats

import jointvae_tf as jv
from jointvae_tf import viz

SPEC = jv.LatentSpec(3, (4, 2))  # latent_dim 3 + 4 + 2 = 9
PAD = viz.DEFAULT_PADDING


def _model(spec="cont=3,disc=4"):
    keras.utils.set_random_seed(0)
    return jv.JointVAE(image_shape=(32, 32, 1), latent_spec=spec, seed=0)


def _tiles(grid, rows, cols, size=32, padding=PAD):
    """Cuts a grid back into its tiles: [rows, cols, size, size, C]."""
    step = size + padding
    assert grid.shape[:2] == (rows * step + padding, cols * step + padding)
    return np.stack([
        np.stack([grid[padding + r * step:][:size, padding + c * step:][:, :size] for c in range(cols)])
        for r in range(rows)
    ])


def _grid_shape(rows, cols, size=32, padding=PAD):
    return (rows * (size + padding) + padding, cols * (size + padding) + padding, 1)


def _assert_one_hot(latents, spec):
    for part in spec.discrete_slices():
        block = latents[:, part]
        assert set(np.unique(block)) <= {0.0, 1.0}
        np.testing.assert_array_equal(block.sum(axis=1), 1.0)


# --------------------------------------------------------- latent builders
def test_traversal_values_are_the_prior_quantiles_in_order():
    values = viz.traversal_values(5)
    np.testing.assert_allclose(values, stats.norm.ppf([0.05, 0.275, 0.5, 0.725, 0.95]), rtol=1e-6, atol=1e-6)
    assert np.all(np.diff(values) > 0)


def test_continuous_traversal_sweeps_one_dimension_per_row():
    latents = viz.continuous_traversal_latents(SPEC, size=6)
    assert latents.shape == (3 * 6, 9) and latents.dtype == np.float32
    grid = latents.reshape(3, 6, 9)
    quantiles = stats.norm.ppf(np.linspace(0.05, 0.95, 6))
    for row in range(3):
        np.testing.assert_allclose(grid[row, :, row], quantiles, rtol=1e-6)
        others = [d for d in range(3) if d != row]
        np.testing.assert_array_equal(grid[row][:, others], 0.0)
    # Discrete parts at the reference's default: category 0 of every discrete latent.
    np.testing.assert_array_equal(latents[:, 3:], np.tile([1, 0, 0, 0, 1, 0], (18, 1)))


def test_continuous_traversal_keeps_the_rest_of_a_base():
    base = np.array([0.3, -0.7, 1.1, 0, 0, 1, 0, 0, 1], np.float32)
    grid = viz.continuous_traversal_latents(SPEC, size=4, base=base).reshape(3, 4, 9)
    np.testing.assert_allclose(grid[1, :, 1], viz.traversal_values(4))
    for row in range(3):
        untouched = [d for d in range(9) if d != row]
        np.testing.assert_array_equal(grid[row][:, untouched], np.tile(base[untouched], (4, 1)))


def test_discrete_traversal_sets_every_category_of_one_latent():
    latents = viz.discrete_traversal_latents(SPEC, index=1)
    assert latents.shape == (2, 9)
    np.testing.assert_array_equal(latents[:, 7:], np.eye(2))
    np.testing.assert_array_equal(latents[:, :7], np.tile(viz.default_base(SPEC)[:7], (2, 1)))
    _assert_one_hot(latents, SPEC)


def test_discrete_traversal_of_several_bases_is_row_major():
    bases = np.array([viz.default_base(SPEC), viz.default_base(SPEC)])
    bases[:, 0] = [-1.0, 2.0]
    latents = viz.discrete_traversal_latents(SPEC, index=0, base=bases).reshape(2, 4, 9)
    np.testing.assert_array_equal(latents[:, :, 0], [[-1.0] * 4, [2.0] * 4])
    for row in range(2):
        np.testing.assert_array_equal(latents[row, :, 3:7], np.eye(4))
    _assert_one_hot(latents.reshape(-1, 9), SPEC)


def test_grid_latents_rows_are_categories_and_columns_the_sweep():
    latents = viz.grid_latents(SPEC, cont_index=2, disc_index=0, size=5)
    assert latents.shape == (4 * 5, 9)
    grid = latents.reshape(4, 5, 9)
    for k in range(4):
        np.testing.assert_allclose(grid[k, :, 2], viz.traversal_values(5))
        np.testing.assert_array_equal(grid[k, :, 3:7], np.tile(np.eye(4)[k], (5, 1)))
    np.testing.assert_array_equal(latents[:, :2], 0.0)
    np.testing.assert_array_equal(latents[:, 7:], np.tile([1, 0], (20, 1)))
    _assert_one_hot(latents, SPEC)


@pytest.mark.parametrize("call, message", [
    (lambda: viz.traversal_values(1), r"size must be an integer >= 2, got 1"),
    (lambda: viz.continuous_traversal_latents(SPEC, size=0), r"size must be an integer >= 2, got 0"),
    (lambda: viz.grid_latents(SPEC, cont_index=3), r"cont_index must be an integer in \[0, 2\].*got 3"),
    (lambda: viz.grid_latents(SPEC, disc_index=-1), r"disc_index must be an integer in \[0, 1\].*got -1"),
    (lambda: viz.discrete_traversal_latents(SPEC, 2), r"disc_index must be an integer in \[0, 1\].*got 2"),
    (lambda: viz.discrete_traversal_latents("cont=2", 0), r"cont=2 has no discrete latents"),
    (lambda: viz.continuous_traversal_latents("disc=3"), r"cont=0,disc=3 has no continuous latents"),
    (lambda: viz.continuous_traversal_latents(SPEC, base=np.zeros(3)), r"shape \[9\].*got \[3\]"),
    (lambda: viz.discrete_traversal_latents(SPEC, base=np.zeros((2, 8))), r"\[9\] or \[n, 9\].*got \[2, 8\]"),
])
def test_bad_arguments_raise_one_line_errors(call, message):
    with pytest.raises(ValueError, match=message) as error:
        call()
    assert "\n" not in str(error.value)


# ------------------------------------------------------------------ grids
def test_image_grid_places_every_pixel():
    images = np.arange(5 * 2 * 3, dtype=np.uint8).reshape(5, 2, 3, 1) + 1
    grid = viz.image_grid(images, rows=2, cols=3, padding=1, pad_value=0.0)
    assert grid.shape == (2 * 3 + 1, 3 * 4 + 1, 1) and grid.dtype == np.uint8
    expected = np.zeros((7, 13), np.uint8)
    for i, image in enumerate(images[..., 0]):
        top, left = 1 + (i // 3) * 3, 1 + (i % 3) * 4
        expected[top:top + 2, left:left + 3] = image
    np.testing.assert_array_equal(grid[..., 0], expected)  # the sixth cell stays padding


def test_image_grid_scales_floats_and_keeps_channels():
    images = np.array([[[[0.0, 0.5, 1.0]]]], np.float32)  # one 1x1 RGB image
    grid = viz.image_grid(images, 1, 2, padding=0, pad_value=1.0)
    np.testing.assert_array_equal(grid, [[[0, 128, 255], [255, 255, 255]]])
    gray = viz.image_grid(np.zeros((4, 3, 3, 1)), 2, 2)
    assert gray.shape == (2 * 5 + 2, 2 * 5 + 2, 1)
    assert gray[0, 0, 0] == 128 and gray[2, 2, 0] == 0


def test_image_grid_rejects_what_does_not_fit():
    with pytest.raises(ValueError, match=r"5 images do not fit a 2x2 grid: at most 4"):
        viz.image_grid(np.zeros((5, 2, 2, 1)), 2, 2)
    with pytest.raises(ValueError, match=r"\[N, height, width, channels\], got \[2, 2\]"):
        viz.image_grid(np.zeros((2, 2)), 1, 2)


# -------------------------------------------------------------------- PNG
def test_write_png_round_trips_and_leaves_no_temporary_file(tmp_path):
    grid = np.random.RandomState(0).randint(0, 256, size=(7, 11, 3)).astype(np.uint8)
    path = viz.write_png(tmp_path / "sub" / "picture.png", grid)
    assert os.listdir(tmp_path / "sub") == ["picture.png"]
    np.testing.assert_array_equal(tf.io.decode_png(tf.io.read_file(path)).numpy(), grid)
    gray = grid[..., :1]
    viz.write_png(path, gray)  # overwrites in place
    np.testing.assert_array_equal(tf.io.decode_png(tf.io.read_file(path)).numpy(), gray)
    assert os.listdir(tmp_path / "sub") == ["picture.png"]


def test_write_png_cleans_up_when_the_rename_fails(tmp_path, monkeypatch):
    def fail(src, dst):
        raise OSError("disk gone")

    monkeypatch.setattr(os, "replace", fail)
    with pytest.raises(OSError, match="disk gone"):
        viz.write_png(tmp_path / "picture.png", np.zeros((2, 2, 1), np.uint8))
    assert os.listdir(tmp_path) == []


def test_encode_png_rejects_bad_channels():
    with pytest.raises(ValueError, match=r"1..4 channels\], got \[2, 2, 5\]"):
        viz.encode_png(np.zeros((2, 2, 5), np.uint8))
    assert viz.encode_png(np.zeros((2, 2, 1), np.float32))[:8] == b"\x89PNG\r\n\x1a\n"


def test_to_tensorboard_images():
    images = viz.to_tensorboard_images(np.full((3, 4, 1), 255, np.uint8))
    assert images.shape == (1, 3, 4, 1) and images.dtype == tf.float32
    np.testing.assert_allclose(images.numpy(), 1.0)


# ------------------------------------------------------- model pictures
def test_model_pictures_have_the_expected_sizes():
    model = _model()
    images = np.random.RandomState(0).rand(10, 32, 32, 1).astype(np.float32)
    assert viz.traverse_continuous(model, size=5).shape == _grid_shape(3, 5)
    assert viz.traverse_continuous(model, size=5, images=images).shape == _grid_shape(3, 5)
    assert viz.traverse_discrete(model, size=6).shape == _grid_shape(6, 4)
    assert viz.traverse_discrete(model, size=6, images=images[:3]).shape == _grid_shape(3, 4)
    assert viz.traversal_grid(model, 2, 0, size=7).shape == _grid_shape(4, 7)
    assert viz.samples(model, num=64).shape == _grid_shape(8, 8)
    assert viz.samples(model, num=10, cols=5).shape == _grid_shape(2, 5)
    assert viz.reconstructions(model, images, num=8).shape == _grid_shape(2, 8)
    assert viz.reconstructions(model, images, num=10, cols=4).shape == _grid_shape(6, 4)


def test_reconstructions_show_originals_above_their_reconstructions():
    model = _model()
    images = np.random.RandomState(1).rand(6, 32, 32, 1).astype(np.float32)
    tiles = _tiles(viz.reconstructions(model, images, num=6, cols=3), rows=4, cols=3)
    np.testing.assert_array_equal(tiles[:2].reshape(6, 32, 32, 1), viz.to_uint8(images))
    np.testing.assert_array_equal(tiles[2:].reshape(6, 32, 32, 1), viz.to_uint8(model.reconstruct(images)))


def test_samples_decode_the_prior_samples_of_the_seed():
    model = _model()
    tiles = _tiles(viz.samples(model, num=4, seed=3), 2, 2).reshape(4, 32, 32, 1)
    np.testing.assert_array_equal(tiles, viz.to_uint8(model.sample(4, seed=3)))


def test_model_pictures_reject_bad_images():
    model = _model()
    with pytest.raises(ValueError, match=r"images must have shape \[N >= 1, 32, 32, 1\], got \[4, 28, 28, 1\]"):
        viz.reconstructions(model, np.zeros((4, 28, 28, 1)))
    with pytest.raises(ValueError, match=r"got \[0, 32, 32, 1\]"):
        viz.traverse_continuous(model, images=np.zeros((0, 32, 32, 1)))
    with pytest.raises(ValueError, match=r"disc_index must be an integer in \[0, 0\]"):
        viz.traverse_discrete(model, index=1)


def test_write_all_writes_every_picture(tmp_path):
    model = _model("cont=2,disc=3,2")
    images = np.random.RandomState(0).rand(4, 32, 32, 1).astype(np.float32)
    paths = viz.write_all(model, tmp_path / "pics", images=images, step=1200, size=4, num_samples=9)
    assert set(paths) == {"traverse_continuous", "traverse_discrete_0", "traverse_discrete_1",
                          "grid_c0_d0", "grid_c0_d1", "samples", "reconstructions", "traverse_continuous_example"}
    assert sorted(os.listdir(tmp_path / "pics")) == sorted(f"{name}_00001200.png" for name in paths)
    expected = {"traverse_continuous": (2, 4), "traverse_discrete_0": (4, 3), "grid_c0_d1": (2, 4),
                "samples": (3, 3), "reconstructions": (2, 4), "traverse_continuous_example": (2, 4)}
    for name, (rows, cols) in expected.items():
        assert tf.io.decode_png(tf.io.read_file(paths[name])).shape == _grid_shape(rows, cols), name
    example = tf.io.decode_png(tf.io.read_file(paths["traverse_continuous_example"])).numpy()
    np.testing.assert_array_equal(example, viz.traverse_continuous(model, size=4, images=images))
    everything = viz.write_all(model, tmp_path / "all", size=2, grid_pairs="all")
    assert {n for n in everything if n.startswith("grid")} == {"grid_c0_d0", "grid_c0_d1", "grid_c1_d0", "grid_c1_d1"}
    assert os.path.basename(everything["samples"]) == "samples.png"


@pytest.mark.parametrize("spec, names", [
    ("cont=3", {"traverse_continuous", "samples"}),
    ("disc=5,3", {"traverse_discrete_0", "traverse_discrete_1", "samples"}),
])
def test_models_with_one_kind_of_latent(tmp_path, spec, names):
    paths = viz.write_all(_model(spec), tmp_path, size=3, num_samples=4)
    assert set(paths) == names
    assert sorted(os.listdir(tmp_path)) == sorted(f"{name}.png" for name in names)


def test_traversals_vary_exactly_along_the_dimensions_the_decoder_reads():
    """A decoder wired to read continuous dimension 1 only: its row varies, every other picture is flat."""
    model = _model()
    hidden = model.decoder_logits.get_layer("hidden")
    kernel = np.zeros_like(hidden.kernel.numpy())  # [latent_dim, 256]
    kernel[1] = 20.0 * np.random.RandomState(0).randn(kernel.shape[1])
    hidden.kernel.assign(kernel)

    rows = _tiles(viz.traverse_continuous(model, size=6), rows=3, cols=6)
    sweep = rows[1].astype(int)
    assert all(np.abs(sweep[j + 1] - sweep[j]).max() > 10 for j in range(5))
    np.testing.assert_array_equal(rows[0], np.broadcast_to(rows[0, :1], rows[0].shape))
    np.testing.assert_array_equal(rows[2], rows[0])  # neither dimension 0 nor 2 is read

    # The discrete latent is ignored: each row repeats one image, rows differ by their prior z_1.
    disc = _tiles(viz.traverse_discrete(model, size=3, seed=1), rows=3, cols=4)
    np.testing.assert_array_equal(disc, np.broadcast_to(disc[:, :1], disc.shape))
    assert np.abs(disc[0, 0].astype(int) - disc[1, 0].astype(int)).max() > 0

    # Wiring category 2 instead makes exactly that column of the discrete traversal differ.
    kernel[:] = 0.0
    kernel[3 + 2] = 20.0 * np.random.RandomState(1).randn(kernel.shape[1])
    hidden.kernel.assign(kernel)
    grid = _tiles(viz.traversal_grid(model, cont_index=0, disc_index=0, size=4), rows=4, cols=4)
    np.testing.assert_array_equal(grid, np.broadcast_to(grid[:, :1], grid.shape))  # z_0 is ignored
    assert np.abs(grid[2, 0].astype(int) - grid[0, 0].astype(int)).max() > 10
    np.testing.assert_array_equal(grid[0], grid[1])
    np.testing.assert_array_equal(grid[0], grid[3])
