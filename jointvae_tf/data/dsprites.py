"""dSprites (Matthey et al. 2017): a procedural renderer of the official data set.

The official archive holds 737,280 binary 64x64 images, one per combination of
five factors (its constant colour factor left out here):

  factor        classes  values
  shape         3        square, ellipse, heart (the archive's values 1, 2, 3)
  scale         6        linspace(0.5, 1, 6)
  orientation   40       linspace(0, 2 pi, 40) radians (so 0 and 2 pi both occur)
  posX          32       linspace(0, 1, 32)
  posY          32       linspace(0, 1, 32)

stored row-major with posY fastest: index = shape * 245760 + scale * 40960 +
orientation * 1024 + posX * 32 + posY, the archive's own order.

`DSprites.render` draws any batch of factor combinations directly, so no
737,280-image array is needed. A pixel is on when its centre lies inside the
shape, as in the original vector rendering without anti-aliasing. The geometry
was measured on the 320 official frames of the dSprites repository (the test
`tests/data/test_dsprites.py` re-fits every frame):

* the sprite centre is at 64 * (0.25 + 0.5 * pos) pixels on both axes, in
  coordinates where pixel (row i, column j) covers [j, j + 1) x [i, i + 1); posX
  runs left to right and posY top to bottom (row index), and orientation turns
  the sprite counter-clockwise as displayed, as the official animation shows
  when it sweeps each factor up from class 0;
* at scale 1 the square's side is 19.196 px, the ellipse's semi-axes are
  12.766 x 7.212 px (long axis horizontal at orientation 0) and the heart, point
  down, is the outline of two cubic Bezier curves per half (`HEART_CURVES`).

Besides rendering, `DSprites` is the ground truth of the disentanglement
metrics, with the interface of disentanglement_lib's `GroundTruthData`
(`sample_factors`, `sample_observations_from_factors`, ...). If you have the
official `.npz`, `DSprites.from_npz(path)` serves the archive's own images
through the same interface.
"""

import os
import zipfile

import numpy as np
import tensorflow as tf

from jointvae_tf.data import files, pipeline

FACTOR_NAMES = ("shape", "scale", "orientation", "posX", "posY")
FACTOR_SIZES = (3, 6, 40, 32, 32)
SHAPE_NAMES = ("square", "ellipse", "heart")
IMAGE_SIZE = 64
NUM_IMAGES = int(np.prod(FACTOR_SIZES))  # 737,280
# Index strides of the factors in the archive's order: [245760, 40960, 1024, 32, 1].
FACTOR_STRIDES = tuple(int(np.prod(FACTOR_SIZES[i + 1:])) for i in range(len(FACTOR_SIZES)))
ARCHIVE_FILENAME = "dsprites_ndarray_co1sh3sc6or40x32y32_64x64.npz"

# Shape geometry at scale 1, in pixels, measured on the official frames.
SQUARE_HALF_SIDE = 9.598
ELLIPSE_SEMI_AXES = (12.7659, 7.2123)  # along the sprite's x and y axes
# Left half of the heart outline, x right and y down, from the tip (bottom) round
# the left lobe to the notch (top): two cubic Bezier curves, control points in
# pixels around the sprite centre. The right half is its mirror image.
HEART_CURVES = (
    ((0.0, 9.6804), (-1.256, 4.9548), (-9.5894, 1.5768), (-9.5894, -4.0561)),
    ((-9.5894, -4.0561), (-9.5894, -9.6089), (-2.0229, -11.9482), (0.0, -5.1454)),
)

# Every sprite (the square's half diagonal is the largest reach, 13.6 px) fits in
# a window of 29 x 29 pixels around its centre, so only that window is rasterised.
_WINDOW = 29
_WINDOW_HALF = 14
_HEART_TABLE_SIZE = 4096


def _heart_radius_table(size=_HEART_TABLE_SIZE, samples_per_curve=4000):
    """The heart's outline in polar form: radius at `size + 1` angles over [0, 2 pi].

    The heart is star-shaped around the sprite centre, so a pixel is inside it when
    its distance to the centre is below the outline's radius at the same angle.
    """
    t = np.linspace(0.0, 1.0, samples_per_curve)[:, None]
    points = []
    for p0, p1, p2, p3 in np.asarray(HEART_CURVES, np.float64):
        points.append((1 - t) ** 3 * p0 + 3 * (1 - t) ** 2 * t * p1 + 3 * (1 - t) * t ** 2 * p2 + t ** 3 * p3)
    left = np.concatenate(points)
    outline = np.concatenate([left, left * [-1.0, 1.0]])
    angle = np.arctan2(outline[:, 1], outline[:, 0]) % (2 * np.pi)
    radius = np.hypot(outline[:, 0], outline[:, 1])
    order = np.argsort(angle)
    grid = np.arange(size + 1) * (2 * np.pi / size)
    return np.interp(grid, angle[order], radius[order], period=2 * np.pi).astype(np.float32)


_HEART_RADIUS = _heart_radius_table()


def render_values(shape, scale, orientation, pos_x, pos_y):
    """Rasterises sprites from factor values (continuous values are allowed).

    Args:
      shape: int array [batch], 0 square, 1 ellipse, 2 heart.
      scale: float array [batch], 1 is the largest dSprites size (0.5 the smallest).
      orientation: float array [batch], radians, counter-clockwise as displayed.
      pos_x: float array [batch] in [0, 1], left to right.
      pos_y: float array [batch] in [0, 1], top to bottom.

    Returns:
      uint8 array of 0/1, [batch, 64, 64].
    """
    shape = np.asarray(shape).reshape(-1)
    scale, orientation, pos_x, pos_y = (
        np.asarray(v, np.float64).reshape(-1) for v in (scale, orientation, pos_x, pos_y)
    )
    if not np.all(np.isin(shape, (0, 1, 2))):
        raise ValueError(f"shape must be 0 (square), 1 (ellipse) or 2 (heart), got {np.unique(shape).tolist()}")
    if np.any(scale <= 0) or np.any(scale > 1) or not all(np.all((p >= 0) & (p <= 1)) for p in (pos_x, pos_y)):
        raise ValueError("scale must be in (0, 1] and positions in [0, 1]")
    num = len(shape)
    center_x = IMAGE_SIZE * (0.25 + 0.5 * pos_x)
    center_y = IMAGE_SIZE * (0.25 + 0.5 * pos_y)
    left = np.floor(center_x).astype(np.int64) - _WINDOW_HALF
    top = np.floor(center_y).astype(np.int64) - _WINDOW_HALF
    # Pixel-centre offsets from the sprite centre across the window: [batch, window].
    offsets = np.arange(_WINDOW, dtype=np.float32) + np.float32(0.5)
    dx = (left - center_x).astype(np.float32)[:, None] + offsets
    dy = (top - center_y).astype(np.float32)[:, None] + offsets
    # Rotating by -orientation and dividing by the scale maps a pixel into the
    # sprite's own frame at scale 1.
    cos = (np.cos(orientation) / scale).astype(np.float32)[:, None, None]
    sin = (np.sin(orientation) / scale).astype(np.float32)[:, None, None]
    window = np.empty((num, _WINDOW, _WINDOW), bool)
    for shape_id in range(len(SHAPE_NAMES)):
        which = np.flatnonzero(shape == shape_id)
        if not len(which):
            continue
        wx, wy = dx[which][:, None, :], dy[which][:, :, None]
        u = wx * cos[which] - wy * sin[which]
        v = wx * sin[which] + wy * cos[which]
        if shape_id == 0:
            window[which] = np.maximum(np.abs(u), np.abs(v)) < np.float32(SQUARE_HALF_SIDE)
        elif shape_id == 1:
            a, b = ELLIPSE_SEMI_AXES
            window[which] = u * u * np.float32(1 / a ** 2) + v * v * np.float32(1 / b ** 2) < 1
        else:
            position = (np.arctan2(v, u) % np.float32(2 * np.pi)) * np.float32(_HEART_TABLE_SIZE / (2 * np.pi))
            index = np.minimum(position.astype(np.int32), _HEART_TABLE_SIZE - 1)
            weight = position - index
            radius = _HEART_RADIUS[index] * (1 - weight) + _HEART_RADIUS[index + 1] * weight
            window[which] = u * u + v * v < radius * radius
    images = np.zeros((num, IMAGE_SIZE, IMAGE_SIZE), np.uint8)
    steps = np.arange(_WINDOW)
    rows = (top[:, None] + steps)[:, :, None]
    cols = (left[:, None] + steps)[:, None, :]
    images[np.arange(num)[:, None, None], rows, cols] = window
    return images


def _random_integers(random_state, high, size):
    if isinstance(random_state, np.random.Generator):
        return random_state.integers(0, high, size=size)
    if isinstance(random_state, np.random.RandomState):
        return random_state.randint(0, high, size=size)
    raise ValueError(f"random_state must be a numpy RandomState or Generator, got {type(random_state).__name__}")


class DSprites:
    """The dSprites ground truth: factors, their index order, and the images.

    Procedural by default; `DSprites.from_npz(path)` serves the official archive's
    images instead, through the same interface.

    Attributes:
      factor_names: ("shape", "scale", "orientation", "posX", "posY").
      factor_sizes: (3, 6, 40, 32, 32).
      factor_values: one float array per factor, the values of its classes (the
        archive's `latents_values`: shape 1..3, scale, orientation in radians, posX, posY).
      shape_names: ("square", "ellipse", "heart").
      num_images: 737,280.
    """

    factor_names = FACTOR_NAMES
    factor_sizes = FACTOR_SIZES
    # One image per factor combination, drawn without the random state: lets the metrics
    # encode each combination once (`metrics.utils.observations_are_deterministic`).
    deterministic_observations = True
    shape_names = SHAPE_NAMES
    num_images = NUM_IMAGES
    factor_values = (
        np.arange(1.0, 4.0),
        np.linspace(0.5, 1.0, 6),
        np.linspace(0.0, 2 * np.pi, 40),
        np.linspace(0.0, 1.0, 32),
        np.linspace(0.0, 1.0, 32),
    )

    def __init__(self, images=None):
        """Args: images: None (render procedurally) or the archive's uint8 [737280, 64, 64]."""
        if images is not None and tuple(images.shape) != (NUM_IMAGES, IMAGE_SIZE, IMAGE_SIZE):
            raise ValueError(f"dSprites images must be [{NUM_IMAGES}, 64, 64], got {list(images.shape)}")
        self._images = images

    @classmethod
    def from_npz(cls, path):
        """The official archive (`dsprites_ndarray_co1sh3sc6or40x32y32_64x64.npz`), read without pickle."""
        path = os.fspath(path)
        if not os.path.isfile(path):
            raise FileNotFoundError(f"dSprites archive not found: {path}")
        try:
            files.check_npz_signature(path)
            with np.load(path, allow_pickle=False) as archive:
                if "imgs" not in archive.files:
                    raise ValueError(f"{path} is not the dSprites archive: no 'imgs' array (has {archive.files})")
                images = files.read_npz_array(archive, "imgs", path)
                has_classes = "latents_classes" in archive.files
                classes = files.read_npz_array(archive, "latents_classes", path) if has_classes else None
        except (zipfile.BadZipFile, EOFError, OSError) as error:
            raise ValueError(f"cannot read the dSprites archive {path} (truncated or corrupt?): {error}") from error
        if classes is not None:
            probe = np.linspace(0, NUM_IMAGES - 1, 97).astype(np.int64)
            if classes.shape != (NUM_IMAGES, 6) or not np.array_equal(classes[probe, 1:], cls.index_to_factors(probe)):
                raise ValueError(f"{path}: latents_classes are not in the dSprites order this loader expects")
        return cls(images.astype(np.uint8, copy=False))

    @property
    def from_archive(self):
        """Whether images come from the official archive rather than the renderer."""
        return self._images is not None

    # disentanglement_lib's GroundTruthData interface.
    @property
    def num_factors(self):
        return len(FACTOR_SIZES)

    @property
    def factors_num_values(self):
        return list(FACTOR_SIZES)

    @property
    def observation_shape(self):
        return [IMAGE_SIZE, IMAGE_SIZE, 1]

    def __len__(self):
        return NUM_IMAGES

    @staticmethod
    def check_factors(factor_classes):
        """Validates factor classes: int array [..., 5] with each class in range; returns it as int64."""
        factors = np.asarray(factor_classes)
        if factors.ndim == 0 or factors.shape[-1] != len(FACTOR_SIZES):
            raise ValueError(f"factor classes must be shaped [..., {len(FACTOR_SIZES)}], got {list(factors.shape)}")
        if factors.size and not np.issubdtype(factors.dtype, np.integer):
            raise ValueError(f"factor classes must be integers, got dtype {factors.dtype}")
        factors = factors.astype(np.int64)
        for i, (name, size) in enumerate(zip(FACTOR_NAMES, FACTOR_SIZES, strict=True)):
            column = factors[..., i]
            bad = column[(column < 0) | (column >= size)]
            if bad.size:
                raise ValueError(f"factor {name!r} class {int(bad[0])} out of range: allowed 0..{size - 1}")
        return factors

    @classmethod
    def factors_to_index(cls, factor_classes):
        """Factor classes [..., 5] -> int64 indices [...] in the archive's order."""
        return cls.check_factors(factor_classes) @ np.asarray(FACTOR_STRIDES, np.int64)

    @staticmethod
    def index_to_factors(indices):
        """Indices [...] in the archive's order -> int64 factor classes [..., 5]."""
        indices = np.asarray(indices)
        if indices.size and not np.issubdtype(indices.dtype, np.integer):
            raise ValueError(f"indices must be integers, got dtype {indices.dtype}")
        indices = indices.astype(np.int64)
        bad = indices[(indices < 0) | (indices >= NUM_IMAGES)]
        if bad.size:
            raise ValueError(f"dSprites index {int(bad[0])} out of range: allowed 0..{NUM_IMAGES - 1}")
        return (indices[..., None] // np.asarray(FACTOR_STRIDES)) % np.asarray(FACTOR_SIZES)

    def render(self, factor_classes):
        """Images of any batch of factor combinations.

        Args:
          factor_classes: int array [..., 5] (shape, scale, orientation, posX, posY).

        Returns:
          uint8 array of 0/1, [..., 64, 64], as the archive's `imgs`.
        """
        factors = self.check_factors(factor_classes)
        flat = factors.reshape(-1, len(FACTOR_SIZES))
        if self._images is not None:
            images = self._images[flat @ np.asarray(FACTOR_STRIDES, np.int64)]
        else:
            values = [self.factor_values[i][flat[:, i]] for i in range(1, 5)]
            images = render_values(flat[:, 0], *values)
        return images.reshape(*factors.shape[:-1], IMAGE_SIZE, IMAGE_SIZE)

    def sample_factors(self, num, random_state):
        """`num` factor combinations drawn uniformly: int64 [num, 5]."""
        return np.stack([_random_integers(random_state, size, num) for size in FACTOR_SIZES], axis=1).astype(np.int64)

    def sample_observations_from_factors(self, factors, random_state):
        """Images of `factors` [num, 5] as float32 in {0, 1}, [num, 64, 64, 1]."""
        del random_state  # Each factor combination has exactly one image.
        return self.render(factors)[..., None].astype(np.float32)

    def sample(self, num, random_state):
        """(factors int64 [num, 5], observations float32 [num, 64, 64, 1])."""
        factors = self.sample_factors(num, random_state)
        return factors, self.sample_observations_from_factors(factors, random_state)

    def sample_observations(self, num, random_state):
        """`num` images of uniformly drawn factors, float32 [num, 64, 64, 1]."""
        return self.sample(num, random_state)[1]

    def dataset(self, batch_size=64, shuffle=True, seed=0, with_labels=False, start=None):
        """All 737,280 images once per epoch, rendered batch by batch.

        Args:
          batch_size: images per batch (the last partial batch is dropped).
          shuffle: a fresh uniformly random order of all factor combinations every
            epoch (from `seed`); False gives the archive's order.
          seed: the shuffle seed.
          with_labels: also yield the factor classes, int64 [batch, 5].
          start: None for one epoch; an int for the endless training stream from
            that batch on (`pipeline.batch_indices`).

        Returns:
          A `tf.data.Dataset` of float32 images in {0, 1}, [batch, 64, 64, 1], or of
          `(images, factors)` pairs.
        """
        pipeline.check_batch_size(batch_size)
        pipeline.check_enough_examples(NUM_IMAGES, batch_size, "dsprites")
        batches = pipeline.batch_indices(NUM_IMAGES, batch_size, shuffle, seed, start)
        strides = tf.constant(FACTOR_STRIDES, tf.int64)
        sizes = tf.constant(FACTOR_SIZES, tf.int64)

        def render_batch(index):
            factors = (index[:, None] // strides) % sizes
            images = tf.numpy_function(self.render, [factors], tf.uint8, stateful=False)
            images = tf.cast(tf.ensure_shape(images, [batch_size, IMAGE_SIZE, IMAGE_SIZE]), tf.float32)[..., None]
            return (images, factors) if with_labels else images

        return batches.map(render_batch, num_parallel_calls=pipeline.AUTOTUNE).prefetch(pipeline.AUTOTUNE)
