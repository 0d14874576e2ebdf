import numpy as np
import pytest

import jointvae_tf as jv
from jointvae_tf.model import networks


@pytest.mark.parametrize(
    "image_shape, spec, encoder_params, decoder_params",
    [((32, 32, 1), "cont=10,disc=10", 369_086, 318_273), ((64, 64, 1), "cont=6,disc=3", 381_647, 381_057)],
)
def test_parameter_counts_equal_the_reference(image_shape, spec, encoder_params, decoder_params):
    spec = jv.LatentSpec.parse(spec)
    assert networks.build_encoder(image_shape, spec).count_params() == encoder_params
    decoder = networks.build_decoder(networks.build_decoder_logits(image_shape, spec))
    assert decoder.count_params() == decoder_params


# One more stride-2 block per doubling of the side: a 32->32 Conv2D (16*32*32 + 32 parameters) in the
# encoder and a 64->64 Conv2DTranspose (16*64*64 + 64) in the decoder, counted from the 64x64 reference.
ENCODER_BLOCK, DECODER_BLOCK = 16 * 32 * 32 + 32, 16 * 64 * 64 + 64


@pytest.mark.parametrize("size, extra_blocks", [(128, 1), (256, 2)])
def test_larger_images_add_one_reference_block_per_doubling(size, extra_blocks):
    spec = jv.LatentSpec(6, (3,))
    encoder = networks.build_encoder((size, size, 1), spec)
    decoder = networks.build_decoder(networks.build_decoder_logits((size, size, 1), spec))
    assert encoder.count_params() == 381_647 + extra_blocks * ENCODER_BLOCK
    assert decoder.count_params() == 381_057 + extra_blocks * DECODER_BLOCK
    convs = [layer for layer in encoder.layers if layer.name.startswith("conv_")]
    assert [layer.filters for layer in convs] == [32] * (2 + extra_blocks) + [64, 64]
    assert encoder.get_layer("flatten").output.shape[1:] == (4 * 4 * 64,)  # the same features as every size


def test_the_reference_sizes_keep_their_blocks():
    assert networks.encoder_filters(32) == [32, 64, 64] and networks.decoder_filters(32) == [32, 32]
    assert networks.encoder_filters(64) == [32, 32, 64, 64] and networks.decoder_filters(64) == [64, 32, 32]


@pytest.mark.parametrize("size, channels", [(32, 1), (64, 3), (128, 3), (256, 1)])
def test_shapes(size, channels):
    spec = jv.LatentSpec(4, (3, 2))
    encoder = networks.build_encoder((size, size, channels), spec)
    out = encoder(np.zeros((2, size, size, channels), "float32"))
    assert set(out) == {"mean", "log_var", "logits_0", "logits_1"}
    assert out["mean"].shape == (2, 4) and out["logits_0"].shape == (2, 3) and out["logits_1"].shape == (2, 2)
    decoder = networks.build_decoder(networks.build_decoder_logits((size, size, channels), spec))
    images = decoder(np.zeros((5, 9), "float32")).numpy()
    assert images.shape == (5, size, size, channels)
    assert ((images > 0) & (images < 1)).all()


@pytest.mark.parametrize("bad", [(28, 28, 1), (32, 64, 1), (64, 64, 0), (32, 32), "32x32", (48, 48, 1),
                                 (512, 512, 3), (128, 256, 1)])
def test_unsupported_image_shapes(bad):
    with pytest.raises(ValueError, match="image_shape"):
        networks.build_encoder(bad, jv.LatentSpec(2))


def test_an_unsupported_size_names_the_allowed_ones():
    with pytest.raises(ValueError, match=r"^image_shape \(48, 48, 1\) is not supported: height and width must be "
                                         r"equal and one of 32, 64, 128, 256$"):
        networks.build_decoder_logits((48, 48, 1), jv.LatentSpec(2))


def test_initial_weights_follow_pytorch_defaults():
    """Kernels and biases ~ U(-1/sqrt(fan_in), 1/sqrt(fan_in)), fan_in as PyTorch computes it."""
    spec = jv.LatentSpec(6, (3,))
    encoder = networks.build_encoder((64, 64, 1), spec)
    decoder = networks.build_decoder_logits((64, 64, 1), spec)
    cases = [(encoder, "conv_0", 16 * 1), (encoder, "conv_1", 16 * 32), (encoder, "hidden", 1024),
             (encoder, "mean", 256), (decoder, "hidden", 9), (decoder, "features", 256),
             (decoder, "deconv_0", 16 * 64), (decoder, "logits", 16 * 1)]
    for model, name, fan_in in cases:
        kernel, bias = (np.asarray(w) for w in model.get_layer(name).get_weights())
        bound = 1 / np.sqrt(fan_in)
        for values in (kernel, bias):
            assert np.abs(values).max() <= bound + 1e-7, name
            if values.size >= 64:  # uniform over the whole range, not a narrower one
                assert np.abs(values).max() > 0.8 * bound and abs(values.std() - bound / np.sqrt(3)) < 0.2 * bound, name
