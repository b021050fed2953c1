"""Shared by the accuracy tables: run named variants of one recipe over seeds, aggregate
mean ± std, write JSON and Markdown.

Every run starts from the recipe flagfile plus any recipe flag given on the command line; a
variant changes only the flags it names. Seed s sets both the initialisation and the labeled
subset (split_seed = s). Every table's command line is `main`: a bad flag, seed, output path or
recorded JSON is one line on stderr and exit status 2 before anything is trained or written.
"""

import dataclasses
import json
import os
import sys

import numpy as np
from absl import flags

from mpl_tf import cli
from mpl_tf import config as config_lib
from mpl_tf import errors
from mpl_tf import method as methods
from mpl_tf.durable import files
from mpl_tf.durable import run_dir

# The rows every table has: the two controls, then MPL with the feedback off and with each
# estimator (exact needs soft labels and has no baseline to subtract).
METHOD_VARIANTS = (
    ("supervised", dict(method="supervised")),
    ("UDA (teacher objective alone)", dict(method="uda")),
    ("MPL, feedback off (student distils the UDA teacher)", dict(feedback="none")),
    ("MPL, taylor feedback (recipe)", dict()),
    ("MPL, dot feedback", dict(feedback="dot")),
    ("MPL, exact feedback (soft labels)", dict(feedback="exact", label_type="soft",
                                                feedback_baseline_decay=0.0)),
)

flags.DEFINE_string("seeds", "0 1 2", "Seeds, space separated.")
flags.DEFINE_string("out", None, "Output path without extension (.json, .md are written).")
flags.DEFINE_string("runs_dir", None, "Where the runs' model dirs go.")


@dataclasses.dataclass(frozen=True)
class Table:
    """What a table's command line asks for, checked by `main`: the recipe's config with the
    command line's flags (`base`), the seeds, the output path without extension and the
    runs' directory."""

    base: config_lib.Config
    seeds: tuple
    out: str
    runs_dir: str

    def check(self, variants):
        """Raises ConfigError for the first (variant, seed) whose config cannot run, so a bad
        combination of flags stops the table before its first run, not after hours of them."""
        for name, overrides in variants:
            for seed in self.seeds:
                try:
                    self.base.replace(seed=seed, split_seed=seed, **overrides).validate()
                except errors.ConfigError as e:
                    raise errors.ConfigError(f"{e} (in the row {name!r}, seed {seed})") from None


def main(run, recipe, out, runs_dir, doc, **base_overrides):
    """Every table's `if __name__ == "__main__"`: parses the recipe flagfile, then the command
    line (which overrides it), checks the seeds, --out and --runs_dir (`table_from_flags`),
    then calls `run(table)` and exits. A bad flag or input, there or in `run`, is one line
    on stderr and exit status 2 (`cli.run`, as for `python -m mpl_tf.main`), so each check
    that comes before the first write leaves every file as it was. `base_overrides` are the
    table's own settings over the recipe (e.g. select_on_val)."""

    def start(flag_values):
        run(table_from_flags(flag_values, out, runs_dir, base_overrides))
        return 0

    sys.exit(cli.run(start, flags.FLAGS, sys.argv, doc,
                     expand=lambda args: [args[0], f"--flagfile={recipe}", *args[1:]]))


def table_from_flags(flag_values, out, runs_dir, base_overrides):
    """The checked Table of the parsed flags; `out` and `runs_dir` are the defaults of --out
    and --runs_dir."""
    seeds = parse_seeds(flag_values.seeds)
    base = config_lib.Config.from_flags(flag_values).replace(**base_overrides)
    for seed in seeds:  # the seed flags' own range, and every other flag, named as given
        base.replace(seed=seed, split_seed=seed).validate()
    out = os.path.expanduser(flag_values.out or out)
    runs_dir = os.path.expanduser(flag_values.runs_dir or runs_dir)
    check_out(out)
    why = config_lib.not_a_directory(runs_dir)
    if why:
        raise errors.ConfigError(f"--runs_dir={runs_dir} {why}; pick another --runs_dir")
    return Table(base, seeds, out, runs_dir)


def parse_seeds(text, flag="seeds"):
    """The seeds of `text` ("0 1 2"), distinct non-negative integers in the order given;
    ConfigError for an empty list, a word that is not one, or a seed given twice."""
    words = text.split()
    if not words:
        raise errors.ConfigError(f"--{flag} is empty: give at least one seed, e.g. "
                                 f'--{flag}="0 1 2"')
    bad = [w for w in words if not (w.isascii() and w.isdigit())]
    if bad:
        raise errors.ConfigError(f"--{flag}={text}: {bad[0]!r} is not a seed (seeds are "
                                 "non-negative integers, space separated)")
    seeds = tuple(int(w) for w in words)
    twice = sorted({s for s in seeds if seeds.count(s) > 1})
    if twice:
        raise errors.ConfigError(f"--{flag}={text}: seed {twice[0]} is given twice")
    return seeds


def check_out(out):
    """Raises ConfigError unless OUT.json and OUT.md can be written where --out says (its
    directory is or can be made one, and neither name is a directory), so a table whose
    output cannot be written fails before its runs, not after them."""
    directory = os.path.dirname(os.path.abspath(out))
    why = config_lib.not_a_directory(directory)
    if why:
        raise errors.ConfigError(f"--out={out}: its directory {directory} {why} (--out is a "
                                 "path without extension; OUT.json and OUT.md are written)")
    for path in (out + ".json", out + ".md"):
        if os.path.isdir(path):
            raise errors.ConfigError(f"--out={out}: {path} is a directory; pick another --out")


def run_variants(base, variants, seeds, runs_dir):
    """Trains every (name, overrides) variant for every seed; returns {name: [results]}.

    A table run that was stopped picks up where it was: a run already finished with exactly
    this config is read back, one stopped midway resumes from its checkpoints, and any other
    directory is started over."""
    from mpl_tf.run import orchestrate
    from mpl_tf.data import sources

    results = {}
    for name, overrides in variants:
        for seed in seeds:
            model_dir = os.path.join(runs_dir, f"{slug(name)}_seed{seed}")
            config = cli.validated(base.replace(seed=seed, split_seed=seed,
                                                model_dir=model_dir, **overrides))
            same = _saved_config(model_dir) == json.loads(config.to_json())
            finished = os.path.join(model_dir, "results.json")
            if same and os.path.exists(finished):
                result = run_dir.read_json(finished)
            else:
                run_dir.prepare(config, overwrite=not same)
                result = orchestrate.run(config, sources.load(config))
            results.setdefault(name, []).append(result)
            print(f"{name} seed {seed}: test {result['test_accuracy']:.4f}", flush=True)
    return results


# Config fields that say where things are (its paths), not what is trained: a recorded run
# matches whatever they were, so a table continues in another checkout. --teacher_init too:
# the feedback test matches the record of the pretrained run it names, seed by seed.
LOCATION_FIELDS = tuple(field.name for field in dataclasses.fields(config_lib.Config)
                        if field.metadata["spec"].kind == "path")


def same_run(recorded, config):
    """Whether `recorded` (a config as a dict: a config.json or a table's record) describes the
    run `config` would train: every field equal but the locations, and a field the record lacks
    (one added to Config since) at its default."""
    defaults = json.loads(config_lib.Config().to_json())
    return all(recorded.get(name, defaults[name]) == value
               for name, value in json.loads(config.to_json()).items()
               if name not in LOCATION_FIELDS)


def unavailable(overrides):
    """Why a variant cannot run in this checkout (its --method is not registered), or None."""
    name = overrides.get("method")
    if name is None or methods.METHODS.get(name):
        return None
    return (f"--method={name} is not registered in this checkout (valid: "
            f"{', '.join(methods.NAMES)})")


def run_recorded(base, variants, seeds, runs_dir, recorded, on_run, measure=None):
    """Trains every (name, overrides) variant for every seed, seed by seed (so a table stopped
    halfway has every row at its first seeds); returns ({name: [result per finished seed]},
    {name: why it was skipped}).

    Resumable across checkouts, not only in one `runs_dir`: `recorded` holds the finished runs
    of an earlier session (a table's JSON "runs": dicts with the run's "config" and results),
    and a run whose recorded config matches (`same_run`) is reused without training;
    `on_run(runs)` is called after every finished run with the list of records so far, for the
    table to write its JSON. Committing that JSON is enough for a fresh checkout to go on where
    the table stopped. Within one `runs_dir`, a run stopped midway resumes from its checkpoints
    (`run_variants`). A variant whose --method is not registered is skipped (`unavailable`).
    `measure(config)`, if given, adds to a newly trained run's record what its directory shows
    (e.g. its checkpoints), so the record holds it when the directory is gone."""
    runs, skipped = [], {}
    for seed in seeds:
        for name, overrides in variants:
            why = unavailable(overrides)
            if why:
                skipped[name] = why
                continue
            config = base.replace(seed=seed, split_seed=seed, **overrides,
                                  model_dir=os.path.join(runs_dir, f"{slug(name)}_seed{seed}")
                                  ).validate()
            record = next((r for r in recorded if same_run(r["config"], config)), None)
            if record is None:
                result = run_variants(base, [(name, overrides)], [seed], runs_dir)[name][0]
                record = {"variant": name, "seed": seed, "commit": _commit(),
                          "config": json.loads(config.to_json()), **result,
                          **(measure(config) if measure else {})}
            else:
                print(f"{name} seed {seed}: recorded, test {record['test_accuracy']:.4f}",
                      flush=True)
            runs.append({**record, "variant": name})
            on_run(runs)
    results = {}
    for name, _ in variants:
        done = {r["seed"]: r for r in runs if r["variant"] == name}
        if done:
            results[name] = [done[s] for s in seeds if s in done]
    return results, skipped


def read_recorded(path):
    """The "runs" of a table's JSON at `path` ([] when there is none yet), each a dict with a
    str "variant", an int "seed", a dict "config" and a numeric "test_accuracy" and
    "wall_seconds" (what the tables read of it). A file of any other shape is a DamagedFile
    naming it, before anything is trained, since the table would overwrite it."""
    if not os.path.exists(path):
        return []
    return files.read_json(path, _recorded_problem, "move it aside to start the table anew, or "
                           "restore the committed one from git")["runs"]


def _is_number(value):
    return isinstance(value, (int, float)) and not isinstance(value, bool)


# What every recorded run must hold: (key, what it is, whether a value is that).
RECORD_FIELDS = (("variant", "a string", lambda v: isinstance(v, str)),
                 ("seed", "a non-negative integer",
                  lambda v: isinstance(v, int) and not isinstance(v, bool) and v >= 0),
                 ("config", "a JSON object", lambda v: isinstance(v, dict)),
                 ("test_accuracy", "a number", _is_number),
                 ("wall_seconds", "a number", _is_number))


def _recorded_problem(value):
    """Why `value` is not a table's JSON (see `read_recorded`), or None."""
    if not isinstance(value, dict):
        return "not a JSON object"
    runs = value.get("runs")
    if not isinstance(runs, list):
        return '"runs" is not a list'
    for i, record in enumerate(runs):
        if not isinstance(record, dict):
            return f'"runs"[{i}] is not a JSON object'
        for key, kind, accepts in RECORD_FIELDS:
            if key not in record or not accepts(record[key]):
                return f'"runs"[{i}] has no {key!r} that is {kind}'
    return None


def _commit():
    """The checkout's commit (with "+dirty" for uncommitted changes), to date a recorded run."""
    import subprocess

    def git(*args):
        return subprocess.run(["git", *args], capture_output=True, text=True,
                              cwd=os.path.dirname(os.path.abspath(__file__))).stdout.strip()

    try:
        commit = git("rev-parse", "HEAD")
        return commit + ("+dirty" if git("status", "--porcelain", "--untracked-files=no")
                         else "")
    except OSError:
        return None


# The feedback diagnostics a table shows (results.json's feedback_diagnostics), with headers.
DIAGNOSTIC_COLUMNS = (
    ("h_positive_fraction", "steps with h > 0", "{:.2f}"),
    ("h_mean", "mean h", "{:.1e}"),
    ("h_std", "std of h in a window", "{:.1e}"),
    ("share_of_teacher_gradient", "feedback share of teacher gradient", "{:.3f}"),
    ("h_pseudo_label_accuracy_correlation", "corr(h, pseudo-label accuracy)", "{:+.2f}"),
)


def diagnostics(results):
    """The mean over seeds of each feedback diagnostic the runs recorded (MPL runs only)."""
    recorded = [r["feedback_diagnostics"] for r in results if "feedback_diagnostics" in r]
    return {key: float(np.mean([d[key] for d in recorded])) for key, _, _ in DIAGNOSTIC_COLUMNS
            if recorded and all(key in d for d in recorded)}


def diagnostic_headers():
    return " | ".join(header for _, header, _ in DIAGNOSTIC_COLUMNS)


def diagnostic_cells(row):
    """A table row's diagnostic cells ("–" where the variant has none)."""
    return " | ".join(form.format(row["diagnostics"][key]) if key in row["diagnostics"] else "–"
                      for key, _, form in DIAGNOSTIC_COLUMNS)


def _saved_config(model_dir):
    path = os.path.join(model_dir, "config.json")
    return run_dir.read_json(path) if os.path.exists(path) else None


def slug(name):
    return name.split(" (")[0].replace(", ", "_").replace(" ", "_").lower()


def mean_std(values):
    """Mean and sample standard deviation (0 for a single value)."""
    values = np.asarray(values, dtype=float)
    return float(values.mean()), float(values.std(ddof=1)) if len(values) > 1 else 0.0


def percent(values):
    mean, std = mean_std(values)
    return f"{100 * mean:.1f} ± {100 * std:.1f}"


def write(out, payload, markdown, show=True):
    """Writes OUT.json and OUT.md, each whole or not at all (a table stopped while writing
    keeps its previous files), and prints the Markdown if `show`."""
    os.makedirs(os.path.dirname(out) or ".", exist_ok=True)
    files.write_json(out + ".json", payload)
    files.write_text(out + ".md", markdown)
    if show:
        print(markdown)
