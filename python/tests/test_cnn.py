"""Convolutional networks from Python: a small CNN on (N, C, H, W) arrays, seeded image
augmentation (augment_shift, augment_flip), and the bad inputs, each an exception of the
library's status class whose message names the problem."""

import numpy as np
import pytest

import nnbackprop as nnb


def quadrant_images(n, seed):
    """(n, 1, 8, 8) noise images with one bright 4x4 quadrant; the label is the quadrant."""
    rng = np.random.default_rng(seed)
    x = rng.uniform(0, 0.3, (n, 1, 8, 8)).astype(np.float32)
    y = np.arange(n) % 4
    for i, q in enumerate(y):
        r, c = (0 if q < 2 else 4), (0 if q % 2 == 0 else 4)
        x[i, 0, r : r + 4, c : c + 4] += 1
    return x, y


def cnn(seed=3):
    return nnb.Model(
        [nnb.Conv2D(4, 3, padding=1, activation="relu"), nnb.BatchNorm2d(), nnb.MaxPool2D(2), nnb.Flatten(), nnb.Dense(4)],
        input_shape=(1, 8, 8),
        seed=seed,
    )


def test_cnn_trains_on_nchw_arrays():
    x, y = quadrant_images(256, seed=0)
    model = cnn()
    model.fit(x, y, epochs=8, batch_size=32, lr=0.01, seed=1)
    assert model.evaluate(x, y)["accuracy"] >= 0.95
    assert model.predict(x[:5]).shape == (5, 4)
    # The same rows flat give the same outputs.
    np.testing.assert_array_equal(model.predict(x[:5].reshape(5, 64)), model.predict(x[:5]))


def test_augmentation_is_seeded_and_changes_training():
    x, y = quadrant_images(256, seed=0)

    def trained(**options):
        model = cnn()
        model.fit(x, y, epochs=3, batch_size=32, lr=0.01, seed=1, **options)
        return model.predict(x[:16])

    plain = trained()
    augmented = trained(augment_shift=1, augment_flip=1)
    np.testing.assert_array_equal(trained(augment_shift=1, augment_flip=1), augmented)
    assert not np.array_equal(augmented, plain)
    np.testing.assert_array_equal(trained(augment_shift=0, augment_flip=0), plain)


def test_augmentation_errors():
    x, y = quadrant_images(64, seed=0)
    with pytest.raises(nnb.InvalidArgumentError, match="65"):
        cnn().fit(x, y, epochs=1, augment_shift=65)
    with pytest.raises(nnb.InvalidArgumentError, match="augment_flip"):
        cnn().fit(x, y, epochs=1, augment_flip=2)
    flat = nnb.Model("64-8:relu-4", seed=1)
    with pytest.raises(nnb.ShapeError, match=r"\(C, H, W\)"):
        flat.fit(x.reshape(64, 64), y, epochs=1, augment_flip=1)
    model = cnn()
    model.compile(lr=0.01, batch_size=32, augment_shift=1)
    with pytest.raises(nnb.InvalidArgumentError, match="nnb_train_epoch"):
        model.train_batch(x[:32], y[:32])
    model.train_epoch(x, y)  # the epoch call draws its batches and augments them


@pytest.mark.parametrize(
    "description, error, mentions",
    [
        ("1x3x3-conv2d(2,5)-10", nnb.ShapeError, "5x5"),  # kernel larger than the padded input
        ("1x8x8-conv2d(2,3,stride=0)-10", nnb.InvalidArgumentError, "stride"),
        ("3x8x8-conv2d(4,3,groups=2)-10", nnb.InvalidArgumentError, "groups 2"),  # 3 channels
        ("64-conv2d(4,3)-10", nnb.ShapeError, "64"),  # a vector is not an image
        ("1x8x8-maxpool2d(2,padding=2)-10", nnb.InvalidArgumentError, "half the kernel"),
    ],
)
def test_bad_convolutions_are_clear_errors(description, error, mentions):
    with pytest.raises(error, match=mentions.replace("(", r"\(")):
        nnb.Model(description, seed=1)


def test_bad_layer_class_settings_are_clear_errors():
    with pytest.raises(nnb.InvalidArgumentError, match="stride"):
        nnb.Model([nnb.Conv2D(2, 3, stride=0), nnb.Flatten(), nnb.Dense(2)], input_shape=(1, 8, 8))
    with pytest.raises(nnb.InvalidArgumentError, match="groups"):
        nnb.Model([nnb.Conv2D(4, 3, groups=3), nnb.Flatten(), nnb.Dense(2)], input_shape=(2, 8, 8))


def test_wrong_input_shapes_are_refused():
    x, y = quadrant_images(32, seed=0)
    model = cnn()
    with pytest.raises(nnb.ShapeError):
        model.predict(np.zeros((2, 1, 7, 8), np.float32))
    with pytest.raises(nnb.ShapeError):
        model.predict(np.zeros((2, 63), np.float32))
    with pytest.raises(nnb.ShapeError):
        model.fit(x[:, :, :4, :], y, epochs=1)


def test_batch_norm_refuses_a_training_batch_of_one_as_pytorch_does():
    model = nnb.Model([nnb.BatchNorm1d(), nnb.Dense(2)], inputs=4, seed=1)
    model.compile(lr=0.01, batch_size=1)
    one = np.ones((1, 4), np.float32)
    with pytest.raises(nnb.InvalidArgumentError, match="more than one value per channel"):
        model.train_batch(one, np.array([1]))
    assert model.predict(one).shape == (1, 2)  # inference uses the running statistics
