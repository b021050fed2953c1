"""Uploads an exported TF Hub module to Kaggle Models (where TF Hub models now live):

    python -m mpl_tf.publish --export_dir=DIR/export/hub \
        --handle=OWNER/MODEL/tensorFlow2/classification

--export_dir is a SavedModel directory, or DIR/export/hub, whose subdirectory named by the
handle's variation is uploaded (classification or feature-vector). Credentials come from
KAGGLE_USERNAME and KAGGLE_KEY, KAGGLE_API_TOKEN, or ~/.kaggle/kaggle.json; without them this
fails in one line saying how to set them, before anything is sent.
"""

import os
import re
import sys

import kagglehub
from absl import flags
from kagglehub import config as kaggle_config

from mpl_tf import cli
from mpl_tf.durable import readback
from mpl_tf.serving import model_card
from mpl_tf.errors import ConfigError, CredentialsError, UploadError

HANDLE_FORMAT = "OWNER/MODEL/tensorFlow2/VARIATION"
_OWNER = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]*$")
_SLUG = re.compile(r"[a-z0-9]+(-[a-z0-9]+)*$")
# Files for `kaggle models ... create -p`, not part of the model itself.
METADATA_FILES = ["model-metadata.json", "model-instance-metadata.json"]


def check_handle(handle):
    """Raises ConfigError unless `handle` is OWNER/MODEL/tensorFlow2/VARIATION (no version)."""
    parts = (handle or "").split("/")
    if len(parts) != 4:
        raise ConfigError(f"--handle={handle} must be {HANDLE_FORMAT} (four parts; Kaggle adds "
                          "the version)")
    owner, model, framework, variation = parts
    if framework != model_card.FRAMEWORK:
        raise ConfigError(f"--handle={handle}: the framework must be {model_card.FRAMEWORK} "
                          f"(the export is a TensorFlow 2 SavedModel), got {framework!r}")
    if not _OWNER.match(owner):
        raise ConfigError(f"--handle={handle}: owner {owner!r} must be a Kaggle user or "
                          "organization name (letters, digits, - and _)")
    for what, value in (("model", model), ("variation", variation)):
        if not _SLUG.match(value):
            raise ConfigError(f"--handle={handle}: {what} {value!r} must be a slug (lowercase "
                              "letters and digits separated by single hyphens)")
    return variation


def model_directory(export_dir, variation):
    """The SavedModel to upload: `export_dir` itself, or its subdirectory `variation`."""
    for candidate in (export_dir, os.path.join(export_dir, variation)):
        if os.path.exists(os.path.join(candidate, "saved_model.pb")):
            return candidate
    if not os.path.isdir(export_dir):
        raise ConfigError(f"--export_dir={export_dir} is not a directory; export the run first "
                          "(python -m mpl_tf.export --model_dir=DIR)")
    variants = sorted(name for name in os.listdir(export_dir)
                      if os.path.exists(os.path.join(export_dir, name, "saved_model.pb")))
    raise ConfigError(f"--export_dir={export_dir} holds no SavedModel for variation "
                      f"{variation!r}; its variants: {', '.join(variants) or 'none'}")


def check_credentials():
    """Raises CredentialsError, saying how to set them, when no Kaggle credentials are found."""
    try:
        found = kaggle_config.get_kaggle_credentials()
    except ValueError as e:  # a malformed kaggle.json
        raise CredentialsError(f"Kaggle credentials are unreadable: {e}") from None
    if found is None:
        raise CredentialsError("no Kaggle credentials: set KAGGLE_USERNAME and KAGGLE_KEY (or "
                               "KAGGLE_API_TOKEN), or save the kaggle.json from kaggle.com > "
                               "Settings > API > Create New Token as ~/.kaggle/kaggle.json")


def version_notes(directory):
    """The variant's one-line overview (its metrics) from the export's instance metadata."""
    path = os.path.join(directory, "model-instance-metadata.json")
    if not os.path.exists(path):
        return ""
    metadata = readback.read_json(
        path, lambda value: None if isinstance(value, dict) else "not a JSON object",
        readback.EXPORT_TODO, run=readback.run_of_export(directory))
    return metadata.get("overview", "")


def publish(export_dir, handle):
    """Uploads the SavedModel that `export_dir` and `handle` name; returns its directory. A
    refused or failed upload is an UploadError of one line."""
    directory = model_directory(export_dir, check_handle(handle))
    check_credentials()
    readback.verify_export(directory)  # what is uploaded is what the run exported
    notes = version_notes(directory)
    try:
        kagglehub.model_upload(handle=handle, local_model_dir=directory,
                               license_name=model_card.LICENSE, version_notes=notes,
                               ignore_patterns=METADATA_FILES)
    except Exception as e:  # noqa: BLE001 - the network or Kaggle refused: say so in one line
        reason = (str(e).strip().splitlines() or [""])[0]
        raise UploadError(f"publishing {handle} failed: {type(e).__name__}: {reason}") from e
    return directory


def main(argv):
    """Uploads; a failure is one line on stderr (`cli.run`): bad flags or missing credentials
    exit status 2, a failed upload 1."""
    values = flags.FlagValues()
    flags.DEFINE_string("export_dir", None, "DIR/export/hub, or one of its variant "
                        "directories.", flag_values=values)
    flags.DEFINE_string("handle", None, f"Kaggle Models handle {HANDLE_FORMAT}.",
                        flag_values=values)
    return cli.run(_publish, values, argv, __doc__)


def _publish(values):
    cli.require(values, "export_dir", "handle")
    directory = publish(values.export_dir, values.handle)
    print(f"uploaded {directory} as {values.handle}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
