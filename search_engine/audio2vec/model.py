"""Audio2Vec network definitions (Keras).

The seed design: a convolutional autoencoder on one log-mel window. The encoder maps the window to a
bottleneck ``h``; the decoder reconstructs the (clean) window from ``h``. The vector stored in the
index is ``z = g(h)``: ``h`` centred and projected onto the principal axes of the training
bottlenecks, then L2-normalised, so Euclidean distances lie in [0, 2] (and rank like cosine).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass


@dataclass(frozen=True)
class Architecture:
    """Shape of the network. Stored in the model folder's ``config.json``."""

    filters: tuple[int, ...] = (24, 48, 96, 128)
    bottleneck_dim: int = 128
    embedding_dim: int = 64

    def as_dict(self) -> dict:
        return {**asdict(self), "filters": list(self.filters)}


def _check_shape(window_frames: int, n_mels: int, arch: Architecture) -> tuple[int, int]:
    scale = 2 ** len(arch.filters)
    if window_frames % scale or n_mels % scale:
        from ..errors import ParameterError

        raise ParameterError(
            f"window_frames ({window_frames}) and n_mels ({n_mels}) must be multiples of {scale} "
            f"for {len(arch.filters)} stride-2 convolution layers"
        )
    return window_frames // scale, n_mels // scale


def build_encoder(window_frames: int, n_mels: int, arch: Architecture):
    """Window ``(frames, mels)`` -> bottleneck ``h`` ``(bottleneck_dim,)``."""
    import keras
    from keras import layers

    _check_shape(window_frames, n_mels, arch)
    inp = keras.Input((window_frames, n_mels), name="window")
    x = layers.Reshape((window_frames, n_mels, 1))(inp)
    for i, f in enumerate(arch.filters):
        x = layers.Conv2D(f, 3, strides=2, padding="same", activation="relu", name=f"enc_conv{i}")(x)
        x = layers.Conv2D(f, 3, padding="same", activation="relu", name=f"enc_conv{i}b")(x) if i == len(arch.filters) - 1 else x
    x = layers.Flatten()(x)
    h = layers.Dense(arch.bottleneck_dim, name="bottleneck")(x)
    return keras.Model(inp, h, name="encoder")


def build_decoder(window_frames: int, n_mels: int, arch: Architecture):
    """Bottleneck ``h`` -> reconstructed window ``(frames, mels)``."""
    import keras
    from keras import layers

    t, m = _check_shape(window_frames, n_mels, arch)
    inp = keras.Input((arch.bottleneck_dim,), name="h")
    x = layers.Dense(t * m * arch.filters[-1], activation="relu", name="dec_dense")(inp)
    x = layers.Reshape((t, m, arch.filters[-1]))(x)
    for i, f in enumerate(reversed(arch.filters[:-1])):
        x = layers.Conv2DTranspose(f, 3, strides=2, padding="same", activation="relu", name=f"dec_conv{i}")(x)
    x = layers.Conv2DTranspose(1, 3, strides=2, padding="same", name="dec_out")(x)
    out = layers.Reshape((window_frames, n_mels))(x)
    return keras.Model(inp, out, name="decoder")


def build_projection(arch: Architecture):
    """g(): bottleneck -> centred linear projection -> unit-length vector (the stored embedding)."""
    import keras
    from keras import layers

    inp = keras.Input((arch.bottleneck_dim,), name="h")
    z = layers.Dense(arch.embedding_dim, name="g_project")(inp)
    z = layers.UnitNormalization(name="g_normalize")(z)
    return keras.Model(inp, z, name="g")


def set_network_weights(encoder, projection, net) -> None:
    """Put a :class:`.forward.Network`'s weights (read from Keras or ONNX files) into an encoder
    and g() made by :func:`build_encoder` / :func:`build_projection` for its architecture
    (``projection`` None: the encoder's only, g() keeps its own)."""
    import keras

    convs = [layer for layer in encoder.layers if isinstance(layer, keras.layers.Conv2D)]
    if len(convs) != len(net.convs):
        raise ValueError(f"the weights have {len(net.convs)} convolutions, the encoder {len(convs)}")
    for layer, conv in zip(convs, net.convs):
        layer.set_weights([conv.kernel.reshape(3, 3, -1, conv.kernel.shape[1]), conv.bias])
    encoder.get_layer("bottleneck").set_weights(list(net.dense))
    if projection is not None:
        projection.get_layer("g_project").set_weights(list(net.project))


def build_embedder(encoder, projection):
    """The inference model: window -> embedding ``z = g(encoder(window))``."""
    import keras

    return keras.Model(encoder.input, projection(encoder.output), name="audio2vec")


def build_autoencoder(encoder, decoder):
    """The training model: window -> reconstruction."""
    import keras

    return keras.Model(encoder.input, decoder(encoder.output), name="autoencoder")
