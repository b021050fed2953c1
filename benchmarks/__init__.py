"""Benchmarks and accuracy tables: each writes benchmarks/results/NAME.{md,json}."""

import os

FLAGS_DIR = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "flags")


def recipe(name, **overrides):
    """The Config of recipe flags/NAME.cfg with `overrides`: benchmarks read the recipes they
    time instead of writing them out again."""
    from mpl_tf.config import Config

    return Config.from_flagfile(os.path.join(FLAGS_DIR, f"{name}.cfg"), **overrides)

