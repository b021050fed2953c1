"""`digits`: scikit-learn's 1,797 8x8 handwritten digits, shipped with scikit-learn, so a real
image task runs offline in minutes on a CPU.

Images are upsampled (bilinear) to 16x16 (or --image_size) with ONE channel: the data is
grayscale and a single channel keeps convolutions three times cheaper. Pixel values 0-16 are
scaled to 0-255. A fixed (seed 0) class-stratified 30% is the test set for every --split_seed;
the validation holdout defaults to 100 training images. Pixel mean/std are computed from the
labeled + unlabeled training images. Views: pad-and-crop without flips (a mirrored digit is
another symbol).
"""

import numpy as np

from mpl_tf.data import bounds
from mpl_tf.data import split_data
from mpl_tf.data import split_plan

TEST_FRACTION = 0.3
DEFAULT_NUM_VAL = 100
NATIVE_SIZE = 16
SCANNED_SIZE = 8  # the digits as scikit-learn ships them


def load(config):
    from sklearn.datasets import load_digits

    bounds.check_image_size(config, SCANNED_SIZE, "the scikit-learn digits")
    digits = load_digits()
    images = digits.images.astype(np.float32)[..., None] * (255.0 / 16.0)
    images = split_data.resize(images, config.image_size or NATIVE_SIZE)
    labels = digits.target.astype(np.int32)
    train, test = split_plan.test_holdout(labels, TEST_FRACTION)
    return split_data.from_arrays(
        "digits", config, (images[train], labels[train]), (images[test], labels[test]),
        num_classes=10, default_num_val=DEFAULT_NUM_VAL, view="pad_crop",
        class_names=tuple(str(d) for d in range(10)))
