"""The feedback test's controls of the teacher: --swap_label_pairs (a teacher wrong in a known
way), --teacher_supervised_weight (a teacher left to the feedback alone) and --teacher_lr=0 (a
frozen teacher), each checked like every flag."""

import numpy as np
import pytest

import mpl_testing
from mpl_tf import cli
from mpl_tf.config import Config
from mpl_tf.errors import ConfigError
from mpl_tf.data import label_swap, sources


@pytest.mark.parametrize("text,pairs", [(None, ()), ("", ()), ("0-6", ((0, 6),)),
                                        ("0-6,2-4", ((0, 6), (2, 4))),
                                        (" 9-1 , 3-5", ((9, 1), (3, 5)))])
def test_pairs_parse(text, pairs):
    assert label_swap.parse(text) == pairs


@pytest.mark.parametrize("text,message", [
    ("banana", "must be comma-separated class pairs like 0-6,2-4 (got 'banana')"),
    ("0-6,", "must be comma-separated class pairs like 0-6,2-4 (got '')"),
    ("-1-2", "must be comma-separated class pairs like 0-6,2-4 (got '-1-2')"),
    ("0-6-2", "must be comma-separated class pairs like 0-6,2-4 (got '0-6-2')"),
    ("\u0661-\u0667", "must be comma-separated class pairs like 0-6,2-4 (got '\u0661-\u0667')"),
    ("3-3", ": 3-3 swaps a class with itself"),
    ("0-6,6-2", ": class 6 is in two pairs"),
])
def test_bad_pairs_are_one_line(text, message):
    with pytest.raises(ConfigError) as error:
        cli.validated(Config(swap_label_pairs=text))
    assert str(error.value) == f"--swap_label_pairs={text}{'' if message[0] == ':' else ' '}" \
                               f"{message}"


def test_only_the_labeled_labels_are_swapped():
    config = Config(dataset="digits", num_labeled=50)
    plain = sources.load(config)
    swapped = sources.load(config.replace(swap_label_pairs="0-6,2-4"))
    expected = np.array([6, 1, 4, 3, 2, 5, 0, 7, 8, 9])[plain.labeled_labels]
    assert np.array_equal(swapped.labeled_labels, expected)
    assert np.array_equal(swapped.labeled_images, plain.labeled_images)
    assert np.array_equal(swapped.labeled_indices, plain.labeled_indices)
    for split in ("unlabeled", "val", "test"):  # measured against the truth
        assert np.array_equal(getattr(swapped, f"{split}_labels"),
                              getattr(plain, f"{split}_labels"))


def test_a_class_the_dataset_lacks_is_one_line():
    with pytest.raises(ConfigError, match=r"^--swap_label_pairs=0-10: class 10 does not exist "
                                          r"\(--dataset=digits has classes 0-9\)$"):
        sources.load(Config(dataset="digits", num_labeled=50, swap_label_pairs="0-10"))


def _teacher_and_student_moved(**overrides):
    config = mpl_testing.tiny_config(**overrides)
    data = mpl_testing.batch(config)
    start = mpl_testing.build(config)
    model, logs = mpl_testing.one_step(config, data)
    moved = [any(not np.array_equal(a, b) for a, b in zip(mpl_testing.weights(getattr(start, n)),
                                                          mpl_testing.weights(getattr(model, n))))
             for n in ("teacher", "student")]
    return moved, logs


def test_a_frozen_teacher_stays_put_while_the_student_learns():
    moved, logs = _teacher_and_student_moved(teacher_lr=0.0, momentum=0.9, weight_decay=1e-3)
    assert moved == [False, True] and logs["teacher_lr"] == 0.0
    assert _teacher_and_student_moved()[0] == [True, True]


def test_the_supervised_weight_scales_the_teachers_loss():
    _, once = _teacher_and_student_moved(feedback="none")
    _, twice = _teacher_and_student_moved(feedback="none", teacher_supervised_weight=2.0)
    assert twice["teacher_supervised"] == pytest.approx(once["teacher_supervised"])
    assert twice["teacher_loss"] == pytest.approx(2 * once["teacher_loss"])


def test_without_its_terms_the_teacher_moves_by_the_feedback_alone():
    moved, logs = _teacher_and_student_moved(feedback="none", teacher_supervised_weight=0.0)
    assert moved == [False, True] and logs["teacher_loss"] == 0.0
    assert _teacher_and_student_moved(teacher_supervised_weight=0.0)[0] == [True, True]


@pytest.mark.parametrize("changes,message", [
    (dict(method="uda", teacher_lr=0.0), "--teacher_lr=0 freezes MPL's teacher; --method=uda "
                                         "would train nothing (its --network_lr falls back on "
                                         "it): pass --network_lr > 0"),
    (dict(method="supervised", teacher_lr=0.0), "--teacher_lr=0 freezes MPL's teacher"),
    (dict(method="supervised", teacher_supervised_weight=0.0),
     "--teacher_supervised_weight=0 weighs a teacher's objective; --method=supervised has none "
     "(the methods with one: mpl, uda)"),
    (dict(method="fixmatch", teacher_supervised_weight=2.0),
     "--teacher_supervised_weight=2 weighs a teacher's objective; --method=fixmatch has none "
     "(the methods with one: mpl, uda)"),
])
def test_conflicts_are_refused(changes, message):
    """Each line says what is wrong and what would be valid."""
    with pytest.raises(ConfigError, match="^" + message.replace("(", r"\(").replace(")", r"\)")):
        cli.validated(Config(**changes))
