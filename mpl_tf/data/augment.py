"""The weak and strong image views of the released code (google-research meta_pseudo_labels/
data_utils.py), per example and seeded, for the view families `SplitData.view` names:

    flip_pad_crop  small images (CIFAR, STL-10, small folders): random horizontal flip, then pad
                   size/8 px (4 at 32 px) with gray 128 and random-crop back, as released
    pad_crop       the same without the flip (digits, SVHN: a mirrored digit is another symbol)
    resized_crop   large images (ImageNet, folders from 128 px): random-resized crop (area
                   0.08-1, aspect 3/4-4/3) to the input size, then a random flip

Strong views, as released: small families apply RandAugment (N=2, M=--augment_magnitude;
cutout and translate constants size/8) to the weak view itself, then a --cutout_size gray
square, then another flip/pad-and-crop; resized_crop reuses the weak view's crop with an
independent flip, then RandAugment (constants 40 and 100 at 224 px, scaled with the size), then
the cutout square (the released ImageNet recipe has none: pass --cutout_size=0).
"""

import tensorflow as tf

from mpl_tf.data import randaugment

FAMILIES = ("flip_pad_crop", "pad_crop", "resized_crop")
EVAL_CROP_PADDING = 32


class ImageViews:
    """View functions of (image HWC uint8/float, stateless seed) returning float32 0-255
    images of `input_shape`."""

    def __init__(self, view, input_shape, magnitude, cutout_size):
        if view not in FAMILIES:
            raise ValueError(f"unknown view family {view!r}; valid: {', '.join(FAMILIES)}")
        self.view, self.size = view, input_shape[0]
        self.magnitude, self.cutout_size = magnitude, cutout_size
        self.flips = view != "pad_crop"
        if view == "resized_crop":
            self.cutout_const = max(1, round(40 * self.size / 224))
            self.translate_const = max(1, round(100 * self.size / 224))
        else:
            self.cutout_const = self.translate_const = max(1, self.size // 8)

    def weak(self, image, seed):
        if self.view == "resized_crop":
            crop_seed, flip_seed = _split(seed, 2)
            return self._shaped(self._flip(resized_crop(image, self.size, crop_seed), flip_seed))
        return self._shaped(self._jitter(_float(image), seed))

    def weak_and_strong(self, image, seed):
        """(weak, strong) views of one image; the strong one starts from the weak one's crop."""
        crop_seed, flip_seed, strong_flip_seed, augment_seed, cutout_seed, jitter_seed = _split(
            seed, 6)
        if self.view == "resized_crop":
            crop = resized_crop(image, self.size, crop_seed)
            weak = self._flip(crop, flip_seed)
            strong = self._strong(self._flip(crop, strong_flip_seed), augment_seed, cutout_seed)
        else:
            weak = self._jitter(_float(image), crop_seed)
            strong = self._jitter(self._strong(weak, augment_seed, cutout_seed), jitter_seed)
        return self._shaped(weak), self._shaped(strong)

    def evaluate(self, image):
        """The deterministic eval view: a centre crop for resized_crop, the image otherwise."""
        if self.view == "resized_crop":
            return self._shaped(center_crop(image, self.size))
        return self._shaped(_float(image))

    def _shaped(self, image):
        """Restores the static shape the ops' dynamic sizes and branches lose."""
        return tf.ensure_shape(image, (self.size, self.size, image.shape[-1]))

    def _strong(self, image, augment_seed, cutout_seed):
        image = randaugment.rand_augment(image, augment_seed, self.magnitude,
                                         self.cutout_const, self.translate_const)
        return randaugment.cutout(image, self.cutout_size, cutout_seed)

    def _flip(self, image, seed):
        return tf.image.stateless_random_flip_left_right(image, seed) if self.flips else image

    def _jitter(self, image, seed):
        """(Flip, then) pad size/8 with gray 128 and random-crop back to the input size."""
        flip_seed, crop_seed = _split(seed, 2)
        pad = max(1, self.size // 8)
        padded = tf.pad(self._flip(image, flip_seed), [[pad, pad], [pad, pad], [0, 0]],
                        constant_values=randaugment.FILL)
        return tf.image.stateless_random_crop(padded, (self.size, self.size, image.shape[-1]),
                                              crop_seed)


def resized_crop(image, size, seed):
    """Inception-style random crop (area 0.08-1 of the image, aspect 3/4-4/3) resized to
    size x size (bilinear)."""
    begin, extent, _ = tf.image.stateless_sample_distorted_bounding_box(
        tf.shape(image), tf.constant([[[0.0, 0.0, 1.0, 1.0]]]), seed=seed,
        min_object_covered=0.1, aspect_ratio_range=(3 / 4, 4 / 3), area_range=(0.08, 1.0),
        max_attempts=10, use_image_if_no_bounding_boxes=True)
    crop = tf.ensure_shape(tf.slice(image, begin, extent), (None, None, image.shape[-1]))
    return tf.image.resize(_float(crop), (size, size), method="bilinear")


def center_crop(image, size):
    """The central size/(size+32) of the shorter side, resized to size x size (as released)."""
    shape = tf.shape(image)
    side = tf.cast(size / (size + EVAL_CROP_PADDING) * tf.cast(tf.minimum(shape[0], shape[1]),
                                                               tf.float32), tf.int32)
    top, left = (shape[0] - side + 1) // 2, (shape[1] - side + 1) // 2
    crop = tf.image.crop_to_bounding_box(image, top, left, side, side)
    return tf.image.resize(_float(crop), (size, size), method="bilinear")


def _float(image):
    return tf.cast(image, tf.float32)


def _split(seed, num):
    return tf.unstack(tf.random.experimental.stateless_split(seed, num=num))
