"""The split rules every array-backed source shares: a class-balanced labeled subset fixed by
--split_seed, a disjoint validation holdout, the unlabeled pool, a fixed test holdout."""

import numpy as np
import pytest

from mpl_tf.config import Config

from mpl_tf.errors import ConfigError
from mpl_tf.data import split_plan

LABELS = np.repeat(np.arange(10), 50)  # 500 examples, 50 per class


def test_plan_is_balanced_disjoint_and_fixed_by_the_split_seed():
    config = Config(num_labeled=40, num_val=30, split_seed=3)
    plan = split_plan.plan(LABELS, 10, config, default_num_val=5)
    assert np.all(np.bincount(LABELS[plan.labeled], minlength=10) == 4)
    assert len(plan.val) == 30 and not set(plan.val) & set(plan.labeled)
    assert set(plan.unlabeled) == set(range(500)) - set(plan.val)  # labeled stay unlabeled too
    again = split_plan.plan(LABELS, 10, config, default_num_val=5)
    assert np.array_equal(plan.labeled, again.labeled) and np.array_equal(plan.val, again.val)
    other = split_plan.plan(LABELS, 10, config.replace(split_seed=4), default_num_val=5)
    assert not np.array_equal(plan.labeled, other.labeled)


def test_labeled_subset_does_not_depend_on_num_val_or_the_run_seed():
    base = split_plan.plan(LABELS, 10, Config(num_labeled=40, num_val=30), 5)
    for change in (dict(num_val=100), dict(seed=7), dict(unlabeled_excludes_labeled=True)):
        plan = split_plan.plan(LABELS, 10, Config(num_labeled=40, num_val=30).replace(**change), 5)
        assert np.array_equal(base.labeled, plan.labeled)


def test_default_num_val_and_excluding_labeled_from_the_pool():
    plan = split_plan.plan(LABELS, 10, Config(num_labeled=20, unlabeled_excludes_labeled=True), 25)
    assert len(plan.val) == 25
    assert set(plan.unlabeled) == set(range(500)) - set(plan.val) - set(plan.labeled)


def test_label_fraction_takes_that_share_of_the_training_set():
    plan = split_plan.plan(LABELS, 10, Config(label_fraction=0.2), 10)
    assert len(plan.labeled) == 100
    assert np.all(np.bincount(LABELS[plan.labeled]) == 10)


@pytest.mark.parametrize("config,message", [
    (Config(num_labeled=501), "--num_labeled=501 is larger than the training set (500"),
    (Config(num_labeled=9), "--num_labeled=9 is smaller than the number of classes (10)"),
    (Config(label_fraction=0.01), "--label_fraction=0.01 (5 of 500) is smaller than the number"),
    (Config(num_labeled=490, num_val=20), "--num_labeled=490 plus the validation holdout "
     "(--num_val=20) need more than the 500 training examples: at most 10 can be held out"),
    # --num_val unset: the line said --num_val=5, a value the user never gave
    (Config(num_labeled=498), "--num_labeled=498 plus the validation holdout (5: the dataset's "
     "default, as --num_val is unset) need more than the 500 training examples: at most 2 can "
     "be held out"),
])
def test_impossible_splits_fail_in_one_line(config, message):
    with pytest.raises(ConfigError) as error:
        split_plan.plan(LABELS, 10, config, default_num_val=5)
    assert message in str(error.value) and "\n" not in str(error.value)


@pytest.mark.parametrize("fraction", [-0.1, 1.5])
def test_label_fraction_outside_zero_one_is_rejected_by_the_config(fraction):
    with pytest.raises(ConfigError, match=r"--label_fraction=.* must be in \(0, 1\]"):
        Config(label_fraction=fraction).validate()


def test_test_holdout_is_stratified_and_fixed():
    train, test = split_plan.test_holdout(LABELS, 0.3)
    assert np.all(np.bincount(LABELS[test]) == 15)
    assert not set(train) & set(test) and len(train) + len(test) == 500
    assert np.array_equal(test, split_plan.test_holdout(LABELS, 0.3)[1])
