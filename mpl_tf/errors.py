"""The failures a command reports in one line and an exit status instead of a traceback
(`cli.run` prints them). Each kind has its own class, so a caller of the library can tell a
bad flag from missing credentials or an unreadable file, and a new kind is one class here."""


class CommandError(Exception):
    """A failure the user can act on; its message is one line saying what is wrong and how to
    fix it, and `exit_status` is the command's exit status for it."""

    exit_status = 2


class ConfigError(CommandError, ValueError):
    """A flag value that cannot run; its message is one line naming the value and the valid ones."""


class CredentialsError(CommandError):
    """Credentials a command needs (Kaggle's, for publish) are missing or unreadable."""


class UnreadableInput(CommandError):
    """An input file (an image to classify) cannot be read or decoded."""


class UnwritableOutput(CommandError):
    """An output file (--output) cannot be written."""


class TrainingError(CommandError, RuntimeError):
    """A run that had to stop (e.g. diverged); its message is one line saying why and what is
    left in the run directory."""

    exit_status = 1


class UploadError(CommandError):
    """A remote service (Kaggle Models) could not be reached or refused an upload."""

    exit_status = 1


class MachineFault(CommandError):
    """A fault of the machine (a full disk, an unwritable run directory, exhausted memory)
    while a command wrote its run directory; the message names the cause, what to change and
    the last intact checkpoint (`faults.describe`)."""

    exit_status = 1


class DamagedFile(CommandError):
    """A file mpl_tf reads back (a run's config.json, results.json, weights, checkpoints, its
    marker, an export, predict's record of its output) is missing, damaged or another run's;
    the message names the file and what to do (`durable/readback.py`)."""
