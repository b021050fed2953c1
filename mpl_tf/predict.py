"""Classifies a folder of images with an exported SavedModel and writes a CSV:

    python -m mpl_tf.predict --saved_model=DIR/export/saved_model --images=FOLDER \
        --output=preds.csv

One row per image file (.jpg, .jpeg, .png, any depth below FOLDER, sorted): `file` (relative to
FOLDER), `class` (the top class name) and `probability` (its probability). Files go through the
`serve_image_bytes` signature, so decoding, resizing and channels are handled exactly as in
serving.
"""

import csv
import os
import sys
import tempfile

from absl import flags

from mpl_tf import cli
from mpl_tf import export
from mpl_tf.cli import parse_flags
from mpl_tf.config import ConfigError
from mpl_tf.export import tf  # TensorFlow, imported quietly by export

EXTENSIONS = (".jpg", ".jpeg", ".png")


def image_files(folder):
    """Image paths below `folder`, relative to it, sorted."""
    if not os.path.isdir(folder):
        raise ConfigError(f"--images={folder} is not a directory")
    found = sorted(os.path.relpath(os.path.join(root, name), folder)
                   for root, _, names in os.walk(folder) for name in names
                   if name.lower().endswith(EXTENSIONS))
    if not found:
        raise ConfigError(f"--images={folder} holds no {'/'.join(EXTENSIONS)} files")
    return found


def predict(saved_model, folder, batch_size=64):
    """[(file, class name, probability)] for every image below `folder`."""
    if not os.path.exists(os.path.join(saved_model, "saved_model.pb")):
        raise ConfigError(f"--saved_model={saved_model} is not a SavedModel directory (no "
                          "saved_model.pb); pass DIR/export/saved_model of an exported run")
    module = tf.saved_model.load(saved_model)  # kept alive: its functions use its variables
    signature = module.signatures.get("serve_image_bytes")
    if signature is None:
        raise ConfigError(f"--saved_model={saved_model} has no serve_image_bytes signature "
                          "(it was not trained on images, or is not a serving export)")
    files = image_files(folder)
    rows = []
    for start in range(0, len(files), batch_size):
        batch = files[start:start + batch_size]
        outputs = _classify(signature, folder, batch)
        names = outputs["top_k_class_names"].numpy()[:, 0]
        probabilities = outputs["top_k_probabilities"].numpy()[:, 0]
        rows += [(name, label.decode(), float(p))
                 for name, label, p in zip(batch, names, probabilities)]
    return rows


def _classify(signature, folder, batch):
    """The signature's outputs for `batch`; a file that does not decode is named in a
    ConfigError (found by trying the batch's files one at a time)."""
    contents = [_read(os.path.join(folder, name)) for name in batch]
    with cli.stderr_silenced():  # TensorFlow's runtime also logs the error there
        try:
            return signature(image_bytes=tf.constant(contents))
        except tf.errors.InvalidArgumentError:
            for name, content in zip(batch, contents):
                try:
                    signature(image_bytes=tf.constant([content]))
                except tf.errors.InvalidArgumentError:
                    raise ConfigError(f"{os.path.join(folder, name)} is not a readable image"
                                      ) from None
            raise


def _read(path):
    with open(path, "rb") as f:
        return f.read()


def write_csv(path, rows):
    """Writes the rows with a header through a temporary file and a rename."""
    directory = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=".tmp-", suffix=".csv")
    try:
        with os.fdopen(fd, "w", newline="") as f:
            writer = csv.writer(f)
            writer.writerow(("file", "class", "probability"))
            writer.writerows((name, label, f"{p:.6f}") for name, label, p in rows)
        os.replace(tmp, path)
    except BaseException:
        os.remove(tmp)
        raise


def main(argv):
    """Writes --output; user errors are one line on stderr and exit status 2."""
    cli = flags.FlagValues()
    flags.DEFINE_string("saved_model", None, "An exported DIR/export/saved_model.",
                        flag_values=cli)
    flags.DEFINE_string("images", None, "Folder of .jpg/.jpeg/.png images (searched "
                        "recursively).", flag_values=cli)
    flags.DEFINE_string("output", "predictions.csv", "CSV to write.", flag_values=cli)
    flags.DEFINE_integer("batch_size", 64, "Images per call.", lower_bound=1, flag_values=cli)
    try:
        parse_flags(cli, argv, __doc__)
        export.start_tensorflow_quietly()
        if not cli.saved_model or not cli.images:
            raise ConfigError("--saved_model and --images are required")
        if not os.path.isdir(os.path.dirname(os.path.abspath(cli.output))):
            raise ConfigError(f"--output={cli.output}: its directory does not exist")
        rows = predict(cli.saved_model, cli.images, cli.batch_size)
        write_csv(cli.output, rows)
    except (flags.Error, ConfigError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except OSError as e:  # an unreadable image file or an unwritable --output
        print(f"error: {e.filename}: {e.strerror}", file=sys.stderr)
        return 2
    print(f"{len(rows)} predictions written to {cli.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
