"""What an output file was made from, beside it: OUTPUT.meta.json, so that an interrupted
`predict` resumes only the output of the same model on the same images (another model's rows
appended to the first's would be a CSV of two models), and an output predict did not make is
never replaced without --overwrite (nor a file at OUTPUT.meta.json that is not such a record).

It holds `format`, `saved_model_sha256` (the sha256 of the SavedModel's saved_model.pb and
variables/variables.index, whose entries carry the checksums of the variables' data),
`saved_model` and `images` (absolute paths, informative), and is written atomically before the
first row.
"""

import hashlib
import os

from mpl_tf.durable import files
from mpl_tf.durable import readback
from mpl_tf.errors import ConfigError

FORMAT = 1
SUFFIX = ".meta.json"
_IDENTITY = ("format", "saved_model_sha256", "images")


def path(output):
    return output + SUFFIX


def saved_model_fingerprint(saved_model):
    """The sha256 of a SavedModel's graph and variables index."""
    digest = hashlib.sha256()
    for name in ("saved_model.pb", os.path.join("variables", "variables.index")):
        file_path = os.path.join(saved_model, name)
        digest.update(name.encode() + b"\0")
        if os.path.exists(file_path):
            digest.update(bytes.fromhex(readback.marker.file_hash(file_path)))
    return digest.hexdigest()


def describe(saved_model, images):
    """The record of an output made by `saved_model` from the image folder `images`."""
    return {"format": FORMAT, "saved_model_sha256": saved_model_fingerprint(saved_model),
            "saved_model": os.path.abspath(saved_model),
            "images": os.path.realpath(images)}


def _problem(value):
    if not isinstance(value, dict) or any(not isinstance(value.get(key), (str, int))
                                          for key in _IDENTITY):
        return f"not a record with {', '.join(_IDENTITY)}"
    return None


def check(output, partial, wanted, overwrite):
    """Whether the rows in `partial` (the interrupted output of `output`) may be resumed, given
    the record `wanted` of this call: True when its recorded meta matches; ConfigError (one
    line) when `partial` or a complete `output` is another model's, another folder's or of
    unknown origin, unless `overwrite` (then nothing is resumed). A complete `output` of the same
    model and images is made again."""
    if overwrite:
        return False
    meta = path(output)
    for existing in (partial, output):
        if not os.path.exists(existing):
            continue
        if not os.path.exists(meta):
            raise ConfigError(f"--output={output}: {existing} exists and no {meta} says what "
                              "made it; pass --overwrite to replace it, or choose another "
                              "--output")
        recorded = readback.read_json(meta, _problem, "pass --overwrite to start the output "
                                      "over, or choose another --output")
        differs = [key for key in _IDENTITY if recorded.get(key) != wanted[key]]
        if differs:
            what = {"saved_model_sha256": "another --saved_model", "images": "another --images",
                    "format": "another version of predict"}[differs[0]]
            raise ConfigError(f"--output={output}: {existing} was made by {what} ({meta}); "
                              "pass --overwrite to replace it, or choose another --output")
        if existing == partial:
            return True
    if os.path.lexists(meta):  # no output beside it: replaced only if it is predict's record
        readback.read_json(meta, _problem, f"it is not predict's record of --output={output}, "
                           "so it is left alone: choose another --output")
    return False


def write(output, wanted):
    files.write_json(path(output), wanted)
