"""Turns an image folder in the `folder:PATH` layout into a prepared TFDS dataset:

    python -m mpl_tf.data.folder.to_tfds --folder=PATH --name=NAME [--data_dir=DIR] \
        [--image_size=S] [--skip_corrupt_images]

Splits: `train` (PATH/labeled/<class>/...), `test` (PATH/test/<class>/..., if there) and
`unlabeled` (PATH/unlabeled/**, if there; label -1, as TFDS's STL-10 marks its unlabelled
split). Features: `image` (uint8 RGB, PNG-encoded), `label` (ClassLabel named by the class
directories) and `file_name` (relative to PATH). Images go through the same scan and decoder
as training on the folder: unreadable files are refused (or skipped with
--skip_corrupt_images), every mode becomes RGB, EXIF orientation is applied, and with
--image_size the central square is resized to SxS. TFDS's own `tfds.folder_dataset.ImageFolder`
reads a folder as it is instead (no unlabeled split, no EXIF orientation, a fixed layout).

The result is a regular TFDS dataset: `tfds.builder_from_directory(DIR/NAME/1.0.0)` (or
`tfds.load(NAME, data_dir=DIR)` in a program that imported TFDS) reads it.
"""

import os
import sys

from absl import flags

from mpl_tf import cli
from mpl_tf.errors import ConfigError

VERSION = "1.0.0"
SPLIT_NAMES = {"labeled": "train", "test": "test", "unlabeled": "unlabeled"}


def convert(root, name, data_dir, image_size=0, skip_corrupt_images=False):
    """Writes the TFDS dataset `name` (version VERSION) to `data_dir`; returns its directory."""
    import tensorflow as tf
    import tensorflow_datasets as tfds

    from mpl_tf.config import Config
    from mpl_tf.data.folder import source, scan
    from mpl_tf.data import sources

    where = f"--folder={root}"
    config = Config(dataset=sources.folder_dataset(root), image_size=image_size,
                    skip_corrupt_images=skip_corrupt_images)
    classes, parts, paths, labels = source.listing(root, where)
    scanned = scan.scan(root, paths, image_size)
    source.check_readable(scanned, paths, config, where)
    load = scanned.loader(paths, image_size)

    def examples(indices):
        """The readable files of `indices` as a tf.data stream of feature dicts, decoded in
        parallel (TFDS encodes them as it writes)."""
        indices = indices[scanned.readable[indices]]
        names = [os.path.relpath(paths[i], root) for i in indices]
        return tf.data.Dataset.from_tensor_slices((indices, labels[indices], names)).map(
            lambda i, label, name: {"image": load(i), "label": label, "file_name": name},
            num_parallel_calls=tf.data.AUTOTUNE)

    features = tfds.features.FeaturesDict({
        "image": tfds.features.Image(shape=(image_size or None, image_size or None, 3),
                                     encoding_format="png"),
        "label": tfds.features.ClassLabel(names=list(classes)),
        "file_name": tfds.features.Text()})
    builder = tfds.dataset_builders.store_as_tfds_dataset(
        name=name, version=VERSION, features=features, data_dir=data_dir,
        split_datasets={SPLIT_NAMES[part]: examples(indices)
                        for part, indices in parts.items() if len(indices)},
        description=f"Images of {os.path.abspath(root)} (mpl_tf.data.folder.to_tfds).")
    return str(builder.data_dir)


def main(argv):
    """Converts; a failure is one line on stderr and exit status 2 (`cli.run`)."""
    values = flags.FlagValues()
    flags.DEFINE_string("folder", None, "Image folder in the folder:PATH layout.",
                        flag_values=values)
    flags.DEFINE_string("name", None, "Name of the TFDS dataset to write.", flag_values=values)
    flags.DEFINE_string("data_dir", os.path.expanduser("~/tensorflow_datasets"),
                        "TFDS data directory to write it into.", flag_values=values)
    flags.DEFINE_integer("image_size", 0, "Resize the central square to this size; 0 keeps "
                         "every image's own size.", lower_bound=0, flag_values=values)
    flags.DEFINE_bool("skip_corrupt_images", False, "Leave unreadable files out instead of "
                      "failing.", flag_values=values)
    return cli.run(_convert, values, argv, __doc__, tensorflow=True)


def _convert(values):
    cli.require(values, "folder", "name")
    if not values.name.isidentifier() or values.name != values.name.lower():
        raise ConfigError(f"--name={values.name} must be a lower-case Python identifier "
                          "(TFDS dataset names are)")
    if not os.path.isdir(values.folder):
        raise ConfigError(f"--folder={values.folder} is not a directory")
    directory = convert(values.folder, values.name, values.data_dir, values.image_size,
                        values.skip_corrupt_images)
    print(f"TFDS dataset written to {directory}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
