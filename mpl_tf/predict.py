"""Classifies a folder of images with an exported SavedModel and writes a CSV:

    python -m mpl_tf.predict --saved_model=DIR/export/saved_model --images=FOLDER \
        --output=preds.csv

One row per image file (.jpg, .jpeg, .png, any depth below FOLDER, sorted): `file` (relative to
FOLDER), `class` (the top class name) and `probability` (its probability). Files go through the
`serve_image_bytes` signature, so decoding, resizing and channels are handled exactly as in
serving.

It streams: files are read by tf.data one batch ahead, and rows are appended to
OUTPUT.partial as each batch is classified, which is renamed to OUTPUT when every file is done.
So a large folder needs the memory of one batch, and an interrupted call (killed, or stopped
by an unreadable file) keeps its rows: the same command again continues after them. Beside the
output, OUTPUT.meta.json records which SavedModel (its fingerprint) and which folder made it: rows
are resumed only for the same ones, and an output made by another model, from other images or by
another program is replaced only with --overwrite.
"""

import contextlib
import csv
import io
import os
import stat
import sys

from absl import flags

from mpl_tf import cli
from mpl_tf.durable import quiet
from mpl_tf.durable import output_meta
from mpl_tf.durable import readback
from mpl_tf.errors import ConfigError, UnreadableInput, UnwritableOutput

tf = quiet.import_tensorflow()

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
    special = [name for name in found if _special(os.path.join(folder, name))]
    if special:  # reading a FIFO blocks until something writes it, a device may never end
        raise ConfigError(f"--images={folder}: {special[0]} is not a regular file (a FIFO, "
                          "socket or device); move it out of the folder")
    return found


def _special(path):
    """Whether `path` exists and is not a regular file (a dangling link is left to the read,
    which names it)."""
    try:
        return not stat.S_ISREG(os.stat(path).st_mode)
    except OSError:
        return False


def load_signature(saved_model):
    """The `serve_image_bytes` signature of an exported run (with the module that owns its
    variables attached), or a ConfigError saying what the directory is not."""
    module = readback.load_saved_model(saved_model)  # kept alive: its functions use its variables
    signature = module.signatures.get("serve_image_bytes")
    if signature is None:
        raise ConfigError(f"--saved_model={saved_model} has no serve_image_bytes signature "
                          "(it was not trained on images, or is not a serving export)")
    signature.module = module
    return signature


def predict(signature, folder, files, batch_size=64):
    """Batches of (file, class name, probability) for `files` (relative to `folder`),
    streamed: files are read by tf.data a batch ahead, and only one batch of them is in
    memory."""
    if not files:
        return
    contents = (tf.data.Dataset.from_tensor_slices([os.path.join(folder, f) for f in files])
                .map(tf.io.read_file, num_parallel_calls=tf.data.AUTOTUNE)
                .batch(batch_size).prefetch(1))
    for start, batch_contents in zip(range(0, len(files), batch_size), _read(contents)):
        batch = files[start:start + batch_size]
        outputs = _classify(signature, folder, batch, batch_contents)
        names = outputs["top_k_class_names"].numpy()[:, 0]
        probabilities = outputs["top_k_probabilities"].numpy()[:, 0]
        yield [(name, label.decode(), float(p))
               for name, label, p in zip(batch, names, probabilities)]


def _read(contents):
    """The batches of file contents; a file that cannot be read is a one-line error."""
    iterator = iter(contents)
    while True:
        try:
            yield next(iterator)
        except StopIteration:
            return
        except tf.errors.OpError as e:
            # imported here: it imports TensorFlow, which must first be imported quietly (above)
            from mpl_tf.durable import faults

            # faults.reason: the file and the cause, without TensorFlow's function-node name
            raise UnreadableInput(f"cannot read an image file: {faults.reason(e)}") from None


def _classify(signature, folder, batch, contents):
    """The signature's outputs for `batch`; a file that does not decode is named in an
    UnreadableInput (found by trying the batch's files one at a time)."""
    with quiet.stderr_silenced():  # TensorFlow's runtime also logs the error there
        try:
            return signature(image_bytes=contents)
        except tf.errors.InvalidArgumentError:
            for name, content in zip(batch, contents):
                try:
                    signature(image_bytes=content[None])
                except tf.errors.InvalidArgumentError:
                    raise UnreadableInput(f"{os.path.join(folder, name)} is not a readable "
                                          "image") from None
            raise


HEADER = ("file", "class", "probability")


def partial_path(path):
    """Where --output grows while predicting; renamed to `path` once complete."""
    return f"{path}.partial"


def completed_rows(path, files):
    """How many rows the partial output of an earlier, interrupted call holds for `files`
    (sorted, relative), after cutting any half-written last line; 0 (and the file removed)
    when it does not match them."""
    partial = partial_path(path)
    if not os.path.exists(partial):
        return 0
    with open(partial, newline="") as f:
        text = f.read()
    complete = text[:text.rfind("\n") + 1]
    rows = list(csv.reader(io.StringIO(complete)))
    if not rows or tuple(rows[0]) != HEADER or len(rows) - 1 > len(files) or any(
            len(row) != 3 or row[0] != name for row, name in zip(rows[1:], files)):
        os.remove(partial)
        return 0
    os.truncate(partial, len(complete.encode()))
    return len(rows) - 1


def write_csv(path, batches, resume=False):
    """Writes the header and the rows of `batches` to the partial output as they come (after
    the rows already there with `resume`), then renames it to `path`; returns the rows
    written."""
    partial, written = partial_path(path), 0
    try:
        with open(partial, "a" if resume else "w", newline="") as f:
            writer = csv.writer(f)
            if not resume:
                writer.writerow(HEADER)
            for batch in batches:
                writer.writerows((name, label, f"{p:.6f}") for name, label, p in batch)
                f.flush()
                written += len(batch)
    except BaseException:
        if not (resume or written):  # nothing to keep
            os.remove(partial)
        raise
    os.replace(partial, path)
    return written


def main(argv):
    """Writes --output; a failure is one line on stderr and exit status 2 (`cli.run`)."""
    values = flags.FlagValues()
    flags.DEFINE_string("saved_model", None, "An exported DIR/export/saved_model.",
                        flag_values=values)
    flags.DEFINE_string("images", None, "Folder of .jpg/.jpeg/.png images (searched "
                        "recursively).", flag_values=values)
    flags.DEFINE_string("output", "predictions.csv", "CSV to write.", flag_values=values)
    flags.DEFINE_integer("batch_size", 64, "Images per call.", lower_bound=1,
                         flag_values=values)
    flags.DEFINE_bool("overwrite", False, "Replace --output (and an interrupted OUTPUT.partial) "
                      "even if another model, other images or another program made it.",
                      flag_values=values)
    return cli.run(_predict, values, argv, __doc__, tensorflow=True)


def _predict(values):
    cli.require(values, "saved_model", "images")
    # else OUTPUT.meta.json and OUTPUT.partial would be ".meta.json" and ".partial" in the cwd
    cli.require(values, "output", why="the CSV to write, e.g. --output=predictions.csv")
    if os.path.isdir(values.output):
        raise ConfigError(f"--output={values.output} is a directory; pass a file name, e.g. "
                          f"{os.path.join(values.output, 'predictions.csv')}")
    if not os.path.isdir(os.path.dirname(os.path.abspath(values.output))):
        raise ConfigError(f"--output={values.output}: its directory does not exist")
    if os.path.isdir(partial_path(values.output)):  # never deleted: not predict's
        raise UnwritableOutput(f"{partial_path(values.output)}: Is a directory")
    signature = load_signature(values.saved_model)
    files = image_files(values.images)
    wanted = output_meta.describe(values.saved_model, values.images)
    resume = output_meta.check(values.output, partial_path(values.output), wanted,
                               values.overwrite)
    try:
        if not resume and os.path.exists(partial_path(values.output)):
            os.remove(partial_path(values.output))
        output_meta.write(values.output, wanted)
        done = completed_rows(values.output, files)
        if done:
            print(f"Resuming after the {done} predictions in {partial_path(values.output)}")
        written = write_csv(values.output, predict(signature, values.images, files[done:],
                                                   values.batch_size), resume=done > 0)
    except OSError as e:  # as evaluate says it: the flag, not the temporary file it failed on
        raise UnwritableOutput(f"cannot write --output={values.output}: {e.strerror}") from None
    finally:  # a finished or resumable call has OUTPUT or OUTPUT.partial: nothing to forget
        _forget_an_output_never_made(values.output)
    print(f"{done + written} predictions written to {values.output}")
    return 0


def _forget_an_output_never_made(output):
    """Removes OUTPUT.meta.json when the call failed before any row was kept (no OUTPUT, no
    OUTPUT.partial): it would describe a file that does not exist."""
    if not any(os.path.lexists(path) for path in (output, partial_path(output))):
        with contextlib.suppress(FileNotFoundError):
            os.remove(output_meta.path(output))


if __name__ == "__main__":
    sys.exit(main(sys.argv))
