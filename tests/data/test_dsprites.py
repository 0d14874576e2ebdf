"""dSprites: factor bookkeeping in the archive's order, the renderer, and its fidelity to the real frames."""


import numpy as np
import pytest
from shared_data import shared_data

import jointvae_tf.data as jd
from jointvae_tf.data import dsprites


# Fidelity reached on the 320 official frames (see test_renderer_reproduces_the_official_frames).
MIN_FRAME_AGREEMENT = 0.9995  # at most 2 of 4096 pixels differ on any frame
MIN_PERFECT_FRAMES = 304


@pytest.fixture(scope="module")
def data():
    return jd.DSprites()


def test_factor_metadata(data):
    assert data.factor_names == ("shape", "scale", "orientation", "posX", "posY")
    assert list(data.factor_sizes) == [3, 6, 40, 32, 32] == data.factors_num_values
    assert data.num_factors == 5 and data.observation_shape == [64, 64, 1] and len(data) == 737280
    np.testing.assert_allclose(data.factor_values[1], np.linspace(0.5, 1, 6))
    np.testing.assert_allclose(data.factor_values[2], np.linspace(0, 2 * np.pi, 40))
    np.testing.assert_allclose(data.factor_values[3], np.linspace(0, 1, 32))
    assert [len(v) for v in data.factor_values] == [3, 6, 40, 32, 32]


def test_index_order_is_the_archives(data):
    # Official strides without the colour factor: [245760, 40960, 1024, 32, 1], posY fastest.
    assert data.factors_to_index([0, 0, 0, 0, 1]) == 1
    assert data.factors_to_index([0, 0, 0, 1, 0]) == 32
    assert data.factors_to_index([0, 0, 1, 0, 0]) == 1024
    assert data.factors_to_index([0, 1, 0, 0, 0]) == 40960
    assert data.factors_to_index([1, 0, 0, 0, 0]) == 245760
    assert data.factors_to_index([2, 5, 39, 31, 31]) == 737279
    indices = np.random.RandomState(0).randint(0, 737280, size=1000)
    np.testing.assert_array_equal(data.factors_to_index(data.index_to_factors(indices)), indices)
    np.testing.assert_array_equal(data.index_to_factors(np.arange(3)), [[0, 0, 0, 0, i] for i in range(3)])


@pytest.mark.parametrize(
    "factors, match",
    [
        ([[0, 0, 40, 0, 0]], "'orientation' class 40 out of range"),
        ([[3, 0, 0, 0, 0]], "'shape' class 3 out of range"),
        ([[0, -1, 0, 0, 0]], "'scale' class -1 out of range"),
        ([[0, 0, 0, 0, 32]], "'posY' class 32 out of range"),
        ([[0, 0, 0, 0]], r"shaped \[\.\.\., 5\]"),
        ([[0.5, 0, 0, 0, 0]], "must be integers"),
    ],
)
def test_bad_factor_classes_are_rejected(data, factors, match):
    with pytest.raises(ValueError, match=match):
        data.render(factors)
    with pytest.raises(ValueError, match=match):
        data.factors_to_index(factors)


def test_bad_indices_are_rejected(data):
    with pytest.raises(ValueError, match="index 737280 out of range"):
        data.index_to_factors([0, 737280])
    with pytest.raises(ValueError, match="index -1 out of range"):
        data.index_to_factors(-1)


def test_render_geometry(data):
    images = data.render([[0, 5, 0, 0, 0], [0, 0, 0, 31, 31], [1, 5, 0, 0, 0], [2, 5, 0, 0, 0]])
    assert images.shape == (4, 64, 64) and images.dtype == np.uint8 and set(np.unique(images)) == {0, 1}
    # Square at scale 1, posX = posY = 0: 20x20 pixels around (16, 16), top left.
    rows, cols = np.nonzero(images[0])
    assert (rows.min(), rows.max(), cols.min(), cols.max()) == (6, 25, 6, 25)
    # Smallest square in the bottom-right corner: posX runs left to right, posY top to bottom.
    rows, cols = np.nonzero(images[1])
    assert images[1].sum() == 100 and rows.mean() == cols.mean() == 47.5
    # Ellipse lies horizontal at orientation 0; the heart points down (its mass is above the centre).
    rows, cols = np.nonzero(images[2])
    assert np.ptp(cols) > np.ptp(rows) + 10
    rows, _ = np.nonzero(images[3])
    assert rows.mean() < 15.5


def test_render_rotates_counter_clockwise(data):
    # A quarter turn is 9.75 of the 39 orientation steps. Turning counter-clockwise as
    # displayed, 10 steps (92.3 deg) take the heart's point from down to the right, and
    # its lobes, the bulk of its area, from above the centre to its left.
    centre = 64 * (0.25 + 0.5 * 15 / 31)
    _, cols = np.nonzero(data.render([[2, 5, 10, 15, 15]])[0])
    assert (cols + 0.5).mean() < centre - 1.5
    _, cols = np.nonzero(data.render([[2, 5, 29, 15, 15]])[0])  # three quarters: lobes to the right
    assert (cols + 0.5).mean() > centre + 1.5
    # A full turn comes back.
    np.testing.assert_array_equal(data.render([2, 3, 39, 7, 9]), data.render([2, 3, 0, 7, 9]))


def test_render_any_batch_shape(data):
    factors = data.sample_factors(6, np.random.RandomState(1)).reshape(2, 3, 5)
    images = data.render(factors)
    assert images.shape == (2, 3, 64, 64)
    np.testing.assert_array_equal(images[1, 2], data.render(factors[1, 2]))


def test_render_values_accepts_continuous_factors():
    images = jd.render_values([0, 2], [0.75, 1.0], [0.3, 0.0], [0.5, 0.2], [0.5, 0.9])
    assert images.shape == (2, 64, 64) and images[0].sum() > 0
    with pytest.raises(ValueError, match="shape must be 0"):
        jd.render_values([5], [1.0], [0.0], [0.5], [0.5])
    with pytest.raises(ValueError, match="positions in"):
        jd.render_values([0], [1.0], [0.0], [1.5], [0.5])


def test_ground_truth_sampling_interface(data):
    factors = data.sample_factors(500, np.random.RandomState(0))
    assert factors.shape == (500, 5)
    assert np.all(factors >= 0) and np.all(factors < np.array([3, 6, 40, 32, 32]))
    assert len(np.unique(factors[:, 2])) > 30  # uniform over all 40 orientations
    np.testing.assert_array_equal(factors, data.sample_factors(500, np.random.RandomState(0)))
    observations = data.sample_observations_from_factors(factors[:10], np.random.RandomState(0))
    assert observations.shape == (10, 64, 64, 1) and observations.dtype == np.float32
    np.testing.assert_array_equal(observations[..., 0], data.render(factors[:10]))
    sampled_factors, sampled = data.sample(4, np.random.default_rng(3))
    np.testing.assert_array_equal(sampled[..., 0], data.render(sampled_factors))
    assert data.sample_observations(3, np.random.RandomState(2)).shape == (3, 64, 64, 1)
    with pytest.raises(ValueError, match="random_state"):
        data.sample_factors(3, 7)


def _read_frames():
    from PIL import Image, ImageSequence

    with Image.open(shared_data("dsprites", "dsprites.gif")) as gif:
        return np.stack([np.array(frame.convert("L")) for frame in ImageSequence.Iterator(gif)]) > 127


def _best_matches(data, frames):
    """For every frame, the factor combination whose rendering agrees best, and that agreement.

    The search is exhaustive over shape, scale and orientation, restricted by area
    (within 15% + 4 px of a reference rendering's) and over a 3x3 neighbourhood of
    the position estimated from the frame's centroid.
    """
    centres = np.arange(64) + 0.5

    def area_centroid(images):
        images = images.astype(np.float64)
        area = images.sum((-1, -2))
        return area, (images.sum(-1) * centres).sum(-1) / area, (images.sum(-2) * centres).sum(-1) / area

    combos = np.stack(np.meshgrid(range(3), range(6), range(40), indexing="ij"), -1).reshape(-1, 3)
    ref_area, ref_y, ref_x = area_centroid(data.render(np.c_[combos, np.full((len(combos), 2), 15)]))
    ref_centre = 64 * (0.25 + 0.5 * 15 / 31)
    areas, ys, xs = area_centroid(frames)
    best_agreement, best_factors = np.zeros(len(frames)), np.zeros((len(frames), 5), np.int64)
    for i, frame in enumerate(frames):
        near = np.abs(ref_area - areas[i]) <= 0.15 * areas[i] + 4
        pos_y = np.rint(((ys[i] - ref_y[near] + ref_centre) / 64 - 0.25) * 62).astype(np.int64)
        pos_x = np.rint(((xs[i] - ref_x[near] + ref_centre) / 64 - 0.25) * 62).astype(np.int64)
        candidates = np.unique(np.concatenate([
            np.c_[combos[near], np.clip(pos_x + dx, 0, 31), np.clip(pos_y + dy, 0, 31)]
            for dx in (-1, 0, 1) for dy in (-1, 0, 1)
        ]), axis=0)
        agreement = (data.render(candidates) == frame).mean((1, 2))
        best = np.argmax(agreement)
        best_agreement[i], best_factors[i] = agreement[best], candidates[best]
    return best_agreement, best_factors


def test_renderer_reproduces_the_official_frames(data):
    frames = _read_frames()
    assert frames.shape == (320, 64, 64)
    agreement, factors = _best_matches(data, frames)
    report = []
    for shape, name in enumerate(data.shape_names):
        mine = factors[:, 0] == shape
        worst = np.flatnonzero(mine)[np.argmin(agreement[mine])]
        report.append(f"{name}: {mine.sum()} frames, {np.sum(agreement[mine] == 1)} exact, "
                      f"worst frame {worst} at {agreement[worst]:.4%}")
    print("dSprites fidelity:", "; ".join(report))
    assert agreement.min() >= MIN_FRAME_AGREEMENT, report
    assert np.sum(agreement == 1) >= MIN_PERFECT_FRAMES, report
    # The gif shows all three shapes: 192 frames of hearts, 64 of ellipses, 64 of squares.
    assert np.bincount(factors[:, 0], minlength=3).tolist() == [64, 64, 192]
    # Its first frames are the heart growing through the six scales at posX = posY = 0.
    np.testing.assert_array_equal(factors[:6], [[2, s, 0, 0, 0] for s in range(6)])


def test_a_wrong_renderer_fails_the_fidelity_check(data, monkeypatch):
    """The fidelity check can fail: a square 5% too large falls below the bar."""
    monkeypatch.setattr(dsprites, "SQUARE_HALF_SIDE", 10.1)
    frames = _read_frames()[256:]  # the square's frames
    agreement, _ = _best_matches(data, frames)
    assert np.sum(agreement == 1) < len(frames) - 20


def test_archive_backed_dsprites_serves_its_own_images():
    # A stand-in archive, every image the same, without 3 GB of memory.
    marker = np.zeros((64, 64), np.uint8)
    marker[0, :5] = 1
    archive = jd.DSprites(images=np.broadcast_to(marker, (737280, 64, 64)))
    assert archive.from_archive and not jd.DSprites().from_archive
    np.testing.assert_array_equal(archive.render([[2, 5, 39, 31, 31]]), marker[None])
    with pytest.raises(ValueError, match=r"must be \[737280, 64, 64\]"):
        jd.DSprites(images=np.zeros((10, 64, 64), np.uint8))


def test_from_npz_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="missing.npz"):
        jd.DSprites.from_npz(tmp_path / "missing.npz")
    other = tmp_path / "other.npz"
    np.savez(other, x=np.zeros(3))
    with pytest.raises(ValueError, match="no 'imgs' array"):
        jd.DSprites.from_npz(other)
    truncated = tmp_path / "truncated.npz"
    np.savez(truncated, imgs=np.zeros((100, 64, 64), np.uint8))
    truncated.write_bytes(truncated.read_bytes()[:5000])
    with pytest.raises(ValueError, match="truncated"):
        jd.DSprites.from_npz(truncated)
    small = tmp_path / "small.npz"
    np.savez(small, imgs=np.zeros((10, 64, 64), np.uint8))
    with pytest.raises(ValueError, match=r"must be \[737280, 64, 64\]"):
        jd.DSprites.from_npz(small)


def test_dataset_streams_every_combination(data):
    dataset = data.dataset(batch_size=32, shuffle=False, with_labels=True)
    assert dataset.cardinality().numpy() == 737280 // 32
    images, factors = next(iter(dataset.skip(100)))
    assert images.shape == (32, 64, 64, 1) and images.dtype.name == "float32"
    np.testing.assert_array_equal(factors.numpy(), data.index_to_factors(np.arange(3200, 3232)))
    np.testing.assert_array_equal(images.numpy()[..., 0], data.render(factors.numpy()))


def test_dataset_shuffles_reproducibly(data):
    first = [f.numpy() for _, f in data.dataset(batch_size=16, seed=3, with_labels=True).take(2)]
    again = [f.numpy() for _, f in data.dataset(batch_size=16, seed=3, with_labels=True).take(2)]
    other = [f.numpy() for _, f in data.dataset(batch_size=16, seed=4, with_labels=True).take(2)]
    np.testing.assert_array_equal(first, again)
    assert not np.array_equal(first, other)
    assert len(np.unique(data.factors_to_index(np.concatenate(first)))) == 32


def test_the_training_stream_resumes_at_any_batch(data):
    def factors_from(start, take):
        dataset = data.dataset(batch_size=16, seed=3, with_labels=True, start=start)
        return np.stack([f.numpy() for _, f in dataset.take(take)])

    whole = factors_from(0, 6)
    np.testing.assert_array_equal(factors_from(4, 2), whole[4:])
    assert len(np.unique(data.factors_to_index(whole.reshape(-1, 5)))) == 96
    # Position 1,000,000 (epoch 21): its own permutation, reached at once.
    far = factors_from(1_000_000, 1)
    assert not np.array_equal(far[0], whole[0])
