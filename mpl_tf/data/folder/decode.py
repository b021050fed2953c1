"""Image files to uint8 RGB tensors with TensorFlow ops, so decoding runs in parallel inside
tf.data (no Python, no GIL) and the folder scan, the cache and the training pipeline share one
function and therefore produce the same pixels.

`tf.io.decode_image(channels=3)` already converts what folders hold: grayscale, gray + alpha,
RGBA (alpha dropped), palette PNGs, CMYK JPEGs, and 16-bit PNGs (scaled to 8 bits; Pillow's
RGB conversion clips them to white). What it does not do is EXIF orientation, which only
Pillow reads: `orientation(path)` reads it from the file's header (no pixels are decoded) and
`decode` applies it, as Pillow's `ImageOps.exif_transpose` does.
"""

import tensorflow as tf

EXTENSIONS = (".jpg", ".jpeg", ".png")
_ORIENTATION_TAG = 0x0112


def orientation(path):
    """The EXIF orientation (1-8) of an image file; 1 (upright) when it has none or the header
    cannot be read (a file that cannot be read at all is found when it is decoded)."""
    return header(path)[0]


def header(path):
    """(EXIF orientation, the shorter side in pixels) from an image file's header, no pixels
    decoded; (1, 0) when the header cannot be read."""
    from PIL import Image

    try:
        with Image.open(path) as image:
            value = image.getexif().get(_ORIENTATION_TAG, 1) if image.format == "JPEG" else 1
            side = min(image.size)
    except Exception:  # Pillow raises many types for bad files; decoding reports them
        return 1, 0
    return (value if isinstance(value, int) and 1 <= value <= 8 else 1), side


def decode(path, orientation_value, size):
    """uint8 [H, W, 3] of the file at `path`, turned upright, and with `size` > 0 fitted to
    size x size: the central square cropped and resized (antialiased), as Pillow's
    `ImageOps.fit` does, so every image keeps its aspect ratio."""
    image = tf.io.decode_image(tf.io.read_file(path), channels=3, expand_animations=False)
    image = upright(tf.ensure_shape(image, (None, None, 3)), orientation_value)
    return fit_size(image, size) if size else image


def upright(image, orientation_value):
    """Applies EXIF orientation 1-8 (2: mirrored, 3: 180, 4: flipped, 5: transposed, 6: 90
    clockwise, 7: transversed, 8: 90 counter-clockwise)."""
    transposed = lambda: tf.transpose(image, (1, 0, 2))  # noqa: E731
    branches = [lambda: image,
                lambda: tf.image.flip_left_right(image),
                lambda: tf.image.rot90(image, 2),
                lambda: tf.image.flip_up_down(image),
                transposed,
                lambda: tf.image.rot90(image, 3),
                lambda: tf.image.rot90(transposed(), 2),
                lambda: tf.image.rot90(image, 1)]
    index = tf.clip_by_value(tf.cast(orientation_value, tf.int32) - 1, 0, 7)
    return tf.ensure_shape(tf.switch_case(index, branches), (None, None, 3))


def fit_size(image, size):
    """The central square of `image`, resized to size x size (bilinear, antialiased), uint8."""
    shape = tf.shape(image)
    side = tf.minimum(shape[0], shape[1])
    square = tf.image.crop_to_bounding_box(image, (shape[0] - side) // 2,
                                           (shape[1] - side) // 2, side, side)

    def resized():
        pixels = tf.image.resize(tf.cast(square, tf.float32), (size, size), antialias=True)
        return tf.cast(tf.clip_by_value(tf.round(pixels), 0.0, 255.0), tf.uint8)

    return tf.ensure_shape(tf.cond(tf.equal(side, size), lambda: square, resized),
                           (size, size, 3))


def error_message(path, orientation_value=1, size=0):
    """Why `decode` fails on `path` (one line), or None if it does not."""
    from mpl_tf.durable.quiet import stderr_silenced

    try:
        with stderr_silenced():  # libjpeg's own complaint
            decode(tf.constant(path), orientation_value, size)
    except (tf.errors.OpError, ValueError) as e:
        text = getattr(e, "message", str(e))
        text = text.split("}}")[-1].split("[Op:")[0].strip()
        return (text.splitlines() or [type(e).__name__])[0]
    return None
