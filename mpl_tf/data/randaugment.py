"""RandAugment as the released MPL/UDA code runs it, written with stateless random ops so a
view is a pure function of (image, seed) and a replayed run sees the same pixels.

Why not keras.layers.RandAugment or keras_cv's: neither takes a per-call seed (both draw from a
stateful SeedGenerator, so parallel tf.data maps make them irreproducible); Keras core picks the
same ops for a whole batch and computes all 11 of its ops on every call; and neither has the
released op set (Invert, Cutout, fill 128) or its magnitude scale.

Released semantics (google-research meta_pseudo_labels/augment.py, `RandAugment.distort`):
one probability p ~ U(0.2, 0.8) per image; `num_ops` times an op is drawn uniformly from the 15
below and applied with probability p. The magnitude M (--augment_magnitude) is a level out of
MAX_LEVEL = 10, mapped to each op's argument exactly as released (M > 10 extrapolates):
    Rotate             +-30 * M/10 degrees                 (M=16: +-48)
    ShearX / ShearY    +-0.3 * M/10                        (M=16: +-0.48)
    TranslateX / Y     +-translate_const * M/10 pixels     (CIFAR const 4: +-6.4 px)
    Color, Contrast, Brightness, Sharpness   blend factor 1.8 * M/10 + 0.1   (M=16: 2.98)
    Posterize          keep int(4 * M/10) bits             (M=16: 6 bits)
    Solarize           invert pixels >= int(256 * M/10) mod 256 (released casts to uint8:
                       M=16 gives threshold 153)
    Cutout             gray square of half-side int(cutout_const * M/10)
    AutoContrast, Equalize, Invert   no argument
Geometric ops fill with gray 128 and use nearest-neighbour sampling. Pixels stay integers in
[0, 255] between ops, as in the released uint8 code.
"""

import functools
import math

import tensorflow as tf

MAX_LEVEL = 10.0
FILL = 128.0


def rand_augment(image, seed, magnitude, cutout_const, translate_const, num_ops=2):
    """`image` (float32 HWC, 0-255) after `num_ops` random ops; `seed` is a stateless seed."""
    seeds = tf.random.experimental.stateless_split(seed, num=1 + 4 * num_ops)
    prob = tf.random.stateless_uniform([], seeds[0], 0.2, 0.8)
    level = magnitude / MAX_LEVEL
    image = _quantize(image)
    for i in range(num_ops):
        op_seed, apply_seed, sign_seed, where_seed = (seeds[1 + 4 * i + j] for j in range(4))
        sign = tf.where(tf.random.stateless_uniform([], sign_seed) < 0.5, -1.0, 1.0)
        branches = _branches(image, level, sign, where_seed, cutout_const, translate_const)
        op = tf.random.stateless_uniform([], op_seed, 0, len(branches), dtype=tf.int32)
        apply = tf.random.stateless_uniform([], apply_seed) < prob
        image = tf.cond(apply, lambda b=branches: tf.switch_case(op, b), lambda x=image: x)
    return image


def _branches(image, level, sign, seed, cutout_const, translate_const):
    """The 15 ops as zero-argument callables on `image` (the order fixes the op indices)."""
    enhance = 1.8 * level + 0.1
    shear = sign * 0.3 * level
    shift = sign * translate_const * level
    return [
        functools.partial(auto_contrast, image),
        functools.partial(equalize, image),
        functools.partial(invert, image),
        functools.partial(rotate, image, sign * 30.0 * level),
        functools.partial(posterize, image, int(4 * level)),
        functools.partial(solarize, image, int(256 * level) % 256),
        functools.partial(color, image, enhance),
        functools.partial(contrast, image, enhance),
        functools.partial(brightness, image, enhance),
        functools.partial(sharpness, image, enhance),
        functools.partial(_transform, image, [1.0, shear, 0.0, 0.0, 1.0, 0.0]),
        functools.partial(_transform, image, [1.0, 0.0, 0.0, shear, 1.0, 0.0]),
        functools.partial(_transform, image, [1.0, 0.0, -shift, 0.0, 1.0, 0.0]),
        functools.partial(_transform, image, [1.0, 0.0, 0.0, 0.0, 1.0, -shift]),
        functools.partial(cutout, image, 2 * int(cutout_const * level), seed),
    ]


def _quantize(image):
    return tf.round(tf.clip_by_value(image, 0.0, 255.0))


def auto_contrast(image):
    """Stretches each channel to the full 0-255 range (flat channels unchanged)."""
    low = tf.reduce_min(image, axis=[0, 1], keepdims=True)
    high = tf.reduce_max(image, axis=[0, 1], keepdims=True)
    scaled = (image - low) * 255.0 / tf.maximum(high - low, 1.0)
    return _quantize(tf.where(high > low, scaled, image))


def equalize(image):
    """Histogram equalisation per channel, with PIL's (and the released code's) lookup table."""
    return tf.stack([_equalize_channel(image[..., c]) for c in range(image.shape[-1])], -1)


def _equalize_channel(channel):
    values = tf.cast(channel, tf.int32)
    histogram = tf.math.bincount(values, minlength=256, maxlength=256)
    nonzero = tf.boolean_mask(histogram, histogram > 0)
    step = (tf.reduce_sum(nonzero) - nonzero[-1]) // 255
    table = (tf.cumsum(histogram) + step // 2) // tf.maximum(step, 1)
    table = tf.clip_by_value(tf.concat([[0], table[:-1]], 0), 0, 255)
    return tf.where(step == 0, channel, tf.cast(tf.gather(table, values), tf.float32))


def invert(image):
    return 255.0 - image


def posterize(image, bits):
    """Keeps the top `bits` bits of every pixel."""
    factor = 2.0 ** min(max(8 - bits, 0), 8)
    return tf.floor(image / factor) * factor


def solarize(image, threshold):
    """Inverts pixels at or above `threshold`."""
    return tf.where(image < threshold, image, 255.0 - image)


def _grayscale(image):
    if image.shape[-1] == 1:
        return image
    gray = _quantize(tf.image.rgb_to_grayscale(image))
    return tf.tile(gray, [1, 1, image.shape[-1]])


def blend(degenerate, image, factor):
    """degenerate + factor * (image - degenerate): factor 1 is the image, > 1 extrapolates."""
    return _quantize(degenerate + factor * (image - degenerate))


def color(image, factor):
    return blend(_grayscale(image), image, factor)


def contrast(image, factor):
    mean = tf.reduce_mean(_grayscale(image)[..., :1])
    return blend(tf.fill(tf.shape(image), tf.round(mean)), image, factor)


def brightness(image, factor):
    return blend(tf.zeros_like(image), image, factor)


def sharpness(image, factor):
    """Blends with a 3x3-smoothed copy (kernel 1 1 1 / 1 5 1 / 1 1 1, over 13); borders keep
    their pixels, as in PIL."""
    kernel = tf.constant([[1.0, 1.0, 1.0], [1.0, 5.0, 1.0], [1.0, 1.0, 1.0]]) / 13.0
    kernel = tf.tile(kernel[:, :, None, None], [1, 1, image.shape[-1], 1])
    smooth = _quantize(tf.nn.depthwise_conv2d(image[None], kernel, [1, 1, 1, 1], "VALID")[0])
    interior = tf.pad(tf.ones_like(smooth), [[1, 1], [1, 1], [0, 0]])
    degenerate = tf.where(interior > 0, tf.pad(smooth, [[1, 1], [1, 1], [0, 0]]), image)
    return blend(degenerate, image, factor)


def rotate(image, degrees):
    """Rotation about the image centre."""
    angle = degrees * math.pi / 180.0
    cos, sin = tf.cos(angle), tf.sin(angle)
    height, width = (tf.cast(tf.shape(image)[i], tf.float32) - 1.0 for i in (0, 1))
    x_offset = (width - (cos * width - sin * height)) / 2.0
    y_offset = (height - (sin * width + cos * height)) / 2.0
    return _transform(image, [cos, -sin, x_offset, sin, cos, y_offset])


def _transform(image, affine):
    """Output pixel (x, y) samples input (a0 x + a1 y + a2, b0 x + b1 y + b2); outside is 128."""
    transform = tf.cast(tf.stack([*affine, 0.0, 0.0]), tf.float32)[None]
    return tf.raw_ops.ImageProjectiveTransformV3(
        images=image[None], transforms=transform, output_shape=tf.shape(image)[:2],
        fill_value=FILL, interpolation="NEAREST", fill_mode="CONSTANT")[0]


def cutout(image, size, seed):
    """A gray (128) size x size square centred on a random pixel, clipped at the borders."""
    if size <= 0:
        return image
    shape = tf.shape(image)
    center = tf.random.stateless_uniform([2], seed, 0, 2 ** 30, dtype=tf.int32) % shape[:2]
    rows = tf.range(shape[0])[:, None, None]
    cols = tf.range(shape[1])[None, :, None]
    top, left = center[0] - size // 2, center[1] - size // 2
    inside = ((rows >= top) & (rows < top + size) & (cols >= left) & (cols < left + size))
    return tf.where(inside, FILL, image)
