"""Pictures of a JointVAE: latent traversals, samples and reconstructions as PNG grids.

The pictures follow the reference code (Schlumberger/joint-vae `viz/`):

- `traverse_continuous`: one row per continuous dimension, each sweeping that
  dimension over the prior's quantiles `norm.ppf(linspace(0.05, 0.95, size))`.
- `traverse_discrete`: one column per category of a discrete latent, one row per
  base latent (prior samples, or the posterior modes of given images).
- `traversal_grid`: rows are the categories of a discrete latent, columns sweep a
  continuous dimension (the reference's `latent_traversal_grid`).
- `samples`: decoded prior samples.
- `reconstructions`: originals in the upper rows, their reconstructions below.

Everything is built in three layers, each usable on its own:

    latent builders (numpy, no model)  ->  model.decode  ->  image_grid (numpy)  ->  PNG

Latents are laid out as the model's decoder input `[z, c_1, ..., c_n]`, shape
[batch, latent_dim]. The untraversed part of a latent comes from a *base* latent;
the default base is the reference's: every continuous dimension at 0 (the prior
mean) and every discrete latent at category 0.

Grids are uint8 arrays [height, width, channels] with the images' channels
(grayscale stays 1-channel). Example, in a notebook:

    from jointvae_tf import viz
    grid = viz.traverse_continuous(model, size=8)   # uint8 [cont*34+2, 8*34+2, 1] for 32x32 images
    viz.write_png("traversal.png", grid)
    paths = viz.write_all(model, "pictures", images=test_images, step=1000)
"""

from __future__ import annotations

import math
import os
from typing import Iterable

import numpy as np
import tensorflow as tf
from scipy import special

from jointvae_tf import fileio
from jointvae_tf.model.latents import LatentSpec, _as_count

QUANTILE_RANGE = (0.05, 0.95)
DEFAULT_SIZE = 8
DEFAULT_PADDING = 2
# Mid-gray separates tiles of both dark-background (MNIST, dSprites) and light images.
DEFAULT_PAD_VALUE = 0.5
DEFAULT_COLUMNS = 8


# ------------------------------------------------------------------ checks
def _count(value, what: str, minimum: int) -> int:
    """`value` as an int >= minimum (numpy integers accepted), or a one-line ValueError."""
    return _as_count(int(value) if isinstance(value, np.integer) else value, what, minimum)


def _check_size(size, what: str = "size") -> int:
    return _count(size, what, 2)


def _check_index(index, count: int, what: str, spec: LatentSpec) -> int:
    """Returns `index` as an int in [0, count), or raises a one-line ValueError."""
    if count == 0:
        kind = "continuous" if what.startswith("cont") else "discrete"
        raise ValueError(f"latent spec {spec} has no {kind} latents to traverse")
    if isinstance(index, bool) or not isinstance(index, (int, np.integer)) or not 0 <= index < count:
        raise ValueError(f"{what} must be an integer in [0, {count - 1}] for latent spec {spec}, got {index!r}")
    return int(index)


# --------------------------------------------------------- latent builders
def traversal_values(size: int = DEFAULT_SIZE) -> np.ndarray:
    """The values a continuous traversal sweeps: N(0, 1) quantiles at linspace(0.05, 0.95, size).

    Returns:
      float32 [size], increasing from about -1.645 to 1.645.
    """
    size = _check_size(size)
    return special.ndtri(np.linspace(*QUANTILE_RANGE, size)).astype(np.float32)  # the N(0, 1) quantile function


def default_base(latent_spec: LatentSpec | str | dict) -> np.ndarray:
    """The reference's fixed latent: continuous dimensions at 0, every discrete latent at category 0.

    Returns:
      float32 [latent_dim].
    """
    spec = LatentSpec.coerce(latent_spec)
    base = np.zeros(spec.latent_dim, np.float32)
    for part in spec.discrete_slices():
        base[part.start] = 1.0
    return base


def _bases(spec: LatentSpec, base, allow_batch: bool = False) -> np.ndarray:
    """Validates `base` ([latent_dim], or [n, latent_dim] when allowed) and returns it as float32 [n, latent_dim]."""
    if base is None:
        return default_base(spec)[None]
    array = np.asarray(base, np.float32)
    dim = spec.latent_dim
    shapes = f"[{dim}]" + (f" or [n, {dim}]" if allow_batch else "")
    if not (array.ndim == 1 or allow_batch and array.ndim == 2) or array.shape[-1] != dim or array.size == 0:
        raise ValueError(f"base latent must have shape {shapes} for latent spec {spec}, got {list(array.shape)}")
    return array.reshape(-1, dim)


def _set_category(latents: np.ndarray, spec: LatentSpec, index: int, categories: np.ndarray) -> np.ndarray:
    """Sets discrete latent `index` of every row of latents [n, latent_dim] to one-hot(categories [n])."""
    part = spec.discrete_slices()[index]
    latents[:, part] = np.eye(spec.discrete[index], dtype=np.float32)[categories]
    return latents


def continuous_traversal_latents(
    latent_spec: LatentSpec | str | dict, size: int = DEFAULT_SIZE, base=None
) -> np.ndarray:
    """Latents that traverse every continuous dimension in turn.

    Args:
      latent_spec: the model's `LatentSpec` (or a string/dict for `LatentSpec.coerce`).
      size: number of values per traversal, >= 2.
      base: latent [latent_dim] giving the untraversed values; `default_base` when None.

    Returns:
      float32 [cont * size, latent_dim]: row-major grid [cont, size], where row i
      sets continuous dimension i to `traversal_values(size)` and keeps the rest of `base`.
    """
    spec = LatentSpec.coerce(latent_spec)
    if not spec.continuous:
        raise ValueError(f"latent spec {spec} has no continuous latents to traverse")
    values = traversal_values(size)
    latents = np.tile(_bases(spec, base), (spec.continuous * len(values), 1))
    rows = np.repeat(np.arange(spec.continuous), len(values))
    latents[np.arange(len(latents)), rows] = np.tile(values, spec.continuous)
    return latents


def discrete_traversal_latents(latent_spec: LatentSpec | str | dict, index: int = 0, base=None) -> np.ndarray:
    """Latents that set discrete latent `index` to each of its categories.

    Args:
      latent_spec: the model's `LatentSpec`.
      index: which discrete latent, in [0, num_discrete).
      base: latents [latent_dim] or [n, latent_dim] giving the untraversed values;
        `default_base` when None.

    Returns:
      float32 [n * K, latent_dim]: row-major grid [n, K] (K = categories of latent
      `index`), where column k is `base` with discrete latent `index` at category k.
    """
    spec = LatentSpec.coerce(latent_spec)
    index = _check_index(index, spec.num_discrete, "disc_index", spec)
    bases = _bases(spec, base, allow_batch=True)
    k = spec.discrete[index]
    latents = np.repeat(bases, k, axis=0)
    return _set_category(latents, spec, index, np.tile(np.arange(k), len(bases)))


def grid_latents(
    latent_spec: LatentSpec | str | dict,
    cont_index: int = 0,
    disc_index: int = 0,
    size: int = DEFAULT_SIZE,
    base=None,
) -> np.ndarray:
    """Latents of a continuous x discrete traversal grid.

    Args:
      latent_spec: the model's `LatentSpec`.
      cont_index: continuous dimension swept along the columns, in [0, cont).
      disc_index: discrete latent whose categories make the rows, in [0, num_discrete).
      size: number of columns, >= 2.
      base: latent [latent_dim] giving the untraversed values; `default_base` when None.

    Returns:
      float32 [K * size, latent_dim]: row-major grid [K, size], where row k has
      discrete latent `disc_index` at category k and column j has continuous
      dimension `cont_index` at `traversal_values(size)[j]`.
    """
    spec = LatentSpec.coerce(latent_spec)
    cont_index = _check_index(cont_index, spec.continuous, "cont_index", spec)
    disc_index = _check_index(disc_index, spec.num_discrete, "disc_index", spec)
    values = traversal_values(size)
    k = spec.discrete[disc_index]
    latents = np.tile(_bases(spec, base), (k * len(values), 1))
    latents[:, cont_index] = np.tile(values, k)
    return _set_category(latents, spec, disc_index, np.repeat(np.arange(k), len(values)))


# ------------------------------------------------------------------ grids
def to_uint8(images) -> np.ndarray:
    """Images as uint8: floats in [0, 1] are scaled by 255, rounded and clipped; uint8 passes through."""
    images = np.asarray(images)
    if images.dtype == np.uint8:
        return images
    if not np.issubdtype(images.dtype, np.floating):
        raise ValueError(f"images must be uint8 or floats in [0, 1], got dtype {images.dtype}")
    return np.clip(np.round(np.nan_to_num(images) * 255.0), 0, 255).astype(np.uint8)


def image_grid(
    images,
    rows: int,
    cols: int,
    padding: int = DEFAULT_PADDING,
    pad_value: float = DEFAULT_PAD_VALUE,
) -> np.ndarray:
    """Tiles images into one picture, row by row, with `padding` pixels around every tile.

    Args:
      images: [N, H, W, C] floats in [0, 1] or uint8, N <= rows * cols.
      rows, cols: grid shape, >= 1.
      padding: pixels between tiles and around the border, >= 0.
      pad_value: gray level in [0, 1] of the padding and of empty cells.

    Returns:
      uint8 [rows * (H + padding) + padding, cols * (W + padding) + padding, C];
      image i sits at tile (i // cols, i % cols).
    """
    images = to_uint8(images)
    if images.ndim != 4 or 0 in images.shape:
        raise ValueError(f"images must have shape [N, height, width, channels], got {list(images.shape)}")
    rows, cols = _count(rows, "rows", 1), _count(cols, "cols", 1)
    padding = _count(padding, "padding", 0)
    if not 0.0 <= pad_value <= 1.0:
        raise ValueError(f"pad_value must be in [0, 1], got {pad_value!r}")
    num, height, width, channels = images.shape
    if num > rows * cols:
        raise ValueError(f"{num} images do not fit a {rows}x{cols} grid: at most {rows * cols} allowed")
    step_h, step_w = height + padding, width + padding
    grid = np.full(
        (rows * step_h + padding, cols * step_w + padding, channels), round(pad_value * 255), np.uint8
    )
    for i, image in enumerate(images):
        top, left = padding + (i // cols) * step_h, padding + (i % cols) * step_w
        grid[top:top + height, left:left + width] = image
    return grid


def _square_shape(num: int, cols: int | None = None) -> tuple[int, int]:
    """(rows, cols) of a near-square grid for `num` tiles (cols fixed when given)."""
    cols = min(num, cols) if cols else math.ceil(math.sqrt(num))
    return math.ceil(num / cols), cols


def _decode_grid(model, latents: np.ndarray, rows: int, cols: int, **grid_kwargs) -> np.ndarray:
    """Decodes latents [rows * cols, latent_dim] and tiles them into a uint8 grid."""
    return image_grid(model.decode(latents).numpy(), rows, cols, **grid_kwargs)


def _as_model_images(model, images) -> np.ndarray:
    """Images [N >= 1, H, W, C] as float32 in [0, 1] (uint8 is scaled by 1/255)."""
    array = np.asarray(images)
    expected = [*model.image_shape]
    if array.ndim != 4 or list(array.shape[1:]) != expected or len(array) == 0:
        raise ValueError(
            f"images must have shape [N >= 1, {', '.join(map(str, expected))}], got {list(array.shape)}"
        )
    return array.astype(np.float32) / 255.0 if array.dtype == np.uint8 else array.astype(np.float32)


# ------------------------------------------------------- model pictures
def traverse_continuous(model, size: int = DEFAULT_SIZE, images=None, **grid_kwargs) -> np.ndarray:
    """Traversal of every continuous dimension (the reference's `all_latent_traversals`, continuous rows).

    Args:
      model: a `JointVAE` with continuous latents.
      size: values per traversal (grid columns), >= 2.
      images: optional [N, H, W, C]; when given the traversals start from the
        posterior mode of images[0] instead of `default_base`.
      **grid_kwargs: `padding`, `pad_value` for `image_grid`.

    Returns:
      uint8 grid of [cont, size] tiles.
    """
    base = None if images is None else model.latent(_as_model_images(model, images)[:1]).numpy()[0]
    latents = continuous_traversal_latents(model.latent_spec, size, base=base)
    return _decode_grid(model, latents, model.latent_spec.continuous, _check_size(size), **grid_kwargs)


def traverse_discrete(
    model, index: int = 0, size: int = DEFAULT_SIZE, images=None, seed: int = 0, **grid_kwargs
) -> np.ndarray:
    """Every category of discrete latent `index`, for `size` different base latents.

    Args:
      model: a `JointVAE` with discrete latents.
      index: which discrete latent, in [0, num_discrete).
      size: number of base latents (grid rows), >= 2 (fewer when fewer images are given).
      images: optional [N, H, W, C]; bases are the posterior modes of the first
        `size` images. Otherwise they are `size` prior samples drawn with `seed`.
      **grid_kwargs: `padding`, `pad_value` for `image_grid`.

    Returns:
      uint8 grid of [rows, K] tiles: row r is base r, column k sets the latent to category k.
    """
    size = _check_size(size)
    if images is None:
        bases = model.sample_prior(size, seed=seed).numpy()
    else:
        bases = model.latent(_as_model_images(model, images)[:size]).numpy()
    latents = discrete_traversal_latents(model.latent_spec, index, base=bases)
    return _decode_grid(model, latents, len(bases), model.latent_spec.discrete[index], **grid_kwargs)


def traversal_grid(
    model, cont_index: int = 0, disc_index: int = 0, size: int = DEFAULT_SIZE, **grid_kwargs
) -> np.ndarray:
    """Categories of discrete latent `disc_index` (rows) x traversal of continuous dimension `cont_index` (columns).

    Returns:
      uint8 grid of [K, size] tiles, the rest of the latent at `default_base`.
    """
    latents = grid_latents(model.latent_spec, cont_index, disc_index, size)
    return _decode_grid(model, latents, model.latent_spec.discrete[disc_index], size, **grid_kwargs)


def samples(model, num: int = 64, seed: int = 0, cols: int | None = None, **grid_kwargs) -> np.ndarray:
    """`num` images decoded from prior samples drawn with `seed`.

    Returns:
      uint8 grid of near-square [ceil(num / cols), cols] tiles (cols = ceil(sqrt(num)) by default).
    """
    num = _count(num, "num", 1)
    rows, cols = _square_shape(num, None if cols is None else _count(cols, "cols", 1))
    return _decode_grid(model, model.sample_prior(num, seed=seed).numpy(), rows, cols, **grid_kwargs)


def reconstructions(model, images, num: int = DEFAULT_COLUMNS, cols: int = DEFAULT_COLUMNS, **grid_kwargs):
    """Originals in the upper rows, their reconstructions (posterior mode, decoded) in the rows below.

    Args:
      model: a `JointVAE`.
      images: [N, H, W, C] floats in [0, 1] (or uint8); the first min(num, N) are shown.
      num: number of images to reconstruct, >= 1.
      cols: tiles per row, >= 1.

    Returns:
      uint8 grid of [2 * r, c] tiles, c = min(cols, n) and r = ceil(n / c) for the
      n images shown; reconstruction i sits r rows below original i.
    """
    num = _count(num, "num", 1)
    originals = _as_model_images(model, images)[:num]
    rows, cols = _square_shape(len(originals), _count(cols, "cols", 1))
    top = image_grid(originals, rows, cols, **grid_kwargs)
    bottom = image_grid(model.reconstruct(originals).numpy(), rows, cols, **grid_kwargs)
    # Both halves have a border; keep one line of padding between them.
    padding = grid_kwargs.get("padding", DEFAULT_PADDING)
    return np.concatenate([top[:len(top) - padding], bottom], axis=0)


def pictures(
    model,
    images=None,
    size: int = DEFAULT_SIZE,
    num_samples: int = 64,
    seed: int = 0,
    grid_pairs: Iterable[tuple[int, int]] | str | None = None,
) -> dict[str, np.ndarray]:
    """Every picture that applies to the model, as {name: uint8 grid}.

    Names: "traverse_continuous" (with continuous latents), "traverse_discrete_{i}"
    per discrete latent, "grid_c{i}_d{j}" per (cont, disc) pair, "samples", and
    "reconstructions" and "traverse_continuous_example" (the traversal starting from the
    posterior mode of images[0]: readable even where the decoder draws little at the
    prior's centre) when `images` are given.

    Args:
      model: a `JointVAE`.
      images: optional [N, H, W, C] for the reconstructions.
      size: traversal length (and rows of the discrete traversals), >= 2.
      num_samples: tiles of the samples picture.
      seed: seed of the prior samples.
      grid_pairs: (cont_index, disc_index) pairs to draw grids for; None draws
        (0, j) for every discrete latent j, "all" draws every pair.
    """
    spec = model.latent_spec
    result = {}
    if spec.continuous:
        result["traverse_continuous"] = traverse_continuous(model, size)
    for i in range(spec.num_discrete):
        result[f"traverse_discrete_{i}"] = traverse_discrete(model, i, size, seed=seed)
    if not (spec.continuous and spec.num_discrete):
        grid_pairs = []
    elif grid_pairs is None:
        grid_pairs = [(0, j) for j in range(spec.num_discrete)]
    elif isinstance(grid_pairs, str):
        if grid_pairs != "all":
            raise ValueError(f"grid_pairs must be None, 'all' or (cont_index, disc_index) pairs, got {grid_pairs!r}")
        grid_pairs = [(i, j) for i in range(spec.continuous) for j in range(spec.num_discrete)]
    for i, j in grid_pairs:
        result[f"grid_c{i}_d{j}"] = traversal_grid(model, i, j, size)
    result["samples"] = samples(model, num_samples, seed=seed)
    if images is not None:
        result["reconstructions"] = reconstructions(model, images)
        if spec.continuous:
            result["traverse_continuous_example"] = traverse_continuous(model, size, images=images)
    return result


# -------------------------------------------------------------------- PNG
def encode_png(grid) -> bytes:
    """PNG bytes of one picture [H, W, C] (uint8, or floats in [0, 1]), C in 1..4."""
    grid = to_uint8(grid)
    if grid.ndim != 3 or grid.shape[-1] not in (1, 2, 3, 4) or 0 in grid.shape:
        raise ValueError(f"a PNG picture must have shape [height, width, 1..4 channels], got {list(grid.shape)}")
    return tf.io.encode_png(grid).numpy()


def write_png(path: str | os.PathLike, grid) -> str:
    """Writes `grid` as a PNG atomically (temporary file in the same folder, then `os.replace`).

    Returns:
      The path written.
    """
    return fileio.write_bytes(path, encode_png(grid))


def write_all(
    model,
    out_dir: str | os.PathLike,
    images=None,
    step: int | None = None,
    size: int = DEFAULT_SIZE,
    **picture_kwargs,
) -> dict[str, str]:
    """Writes every picture of `pictures` to `out_dir` as `{name}.png` (`{name}_{step:08d}.png` with a step).

    Args:
      model: a `JointVAE`.
      out_dir: folder, created if needed.
      images: optional [N, H, W, C] for the reconstructions.
      step: optional training step suffixed to the file names.
      size: traversal length.
      **picture_kwargs: `num_samples`, `seed`, `grid_pairs` for `pictures`.

    Returns:
      {name: path} of the files written.
    """
    suffix = "" if step is None else f"_{int(step):08d}"
    return {
        name: write_png(os.path.join(os.fspath(out_dir), f"{name}{suffix}.png"), grid)
        for name, grid in pictures(model, images=images, size=size, **picture_kwargs).items()
    }


def to_tensorboard_images(grid) -> tf.Tensor:
    """A picture [H, W, C] as float32 [1, H, W, C] in [0, 1], for `tf.summary.image`."""
    return tf.convert_to_tensor(to_uint8(grid)[None], tf.float32) / 255.0
