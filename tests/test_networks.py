import numpy as np
import pytest

import jointvae_tf as jv
from jointvae_tf import networks


@pytest.mark.parametrize(
    "image_shape, spec, encoder_params, decoder_params",
    [((32, 32, 1), "cont=10,disc=10", 369_086, 318_273), ((64, 64, 1), "cont=6,disc=3", 381_647, 381_057)],
)
def test_parameter_counts_equal_the_reference(image_shape, spec, encoder_params, decoder_params):
    spec = jv.LatentSpec.parse(spec)
    assert networks.build_encoder(image_shape, spec).count_params() == encoder_params
    decoder = networks.build_decoder(networks.build_decoder_logits(image_shape, spec))
    assert decoder.count_params() == decoder_params


@pytest.mark.parametrize("size, channels", [(32, 1), (64, 3)])
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


@pytest.mark.parametrize("bad", [(28, 28, 1), (32, 64, 1), (64, 64, 0), (32, 32), "32x32"])
def test_unsupported_image_shapes(bad):
    with pytest.raises(ValueError, match="image_shape"):
        networks.build_encoder(bad, jv.LatentSpec(2))
