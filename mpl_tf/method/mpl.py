"""Meta Pseudo Labels as one Keras model: a teacher, a student, two optimizers, one train_step.

The step, its five parts in order and how it splits over replicas, is described once, in the
README ("One step, in order"); `train_step` follows it: the teacher's objective and pseudo
labels, the student's step (`_student_step`, which measures the labeled loss around it as
`--feedback_forwards` says), the feedback estimator's term (mpl_tf/feedback), the teacher's
update, then the EMA. What holds per replica by nature (batch-norm batch statistics, dropout
masks, sampled labels) is the only way the step depends on how the global batch is split.
"""

import contextlib

import tensorflow as tf

from mpl_tf.method import feedback
from mpl_tf.method import losses
from mpl_tf.method import pseudo_labels
from mpl_tf.durable.strategies import replica_sum
from mpl_tf.method.feedback.base import StudentStep
from mpl_tf.method.feedback.forwards import FORWARDS
from mpl_tf.models import weight_decay_mask
from mpl_tf.method.teacher_objective import teacher_objective
from mpl_tf.durable.seeds import random_states
from mpl_tf.method.trainer import (ClassifierTrainer, TrainedNetwork, all_finite, restore,
                                   restore_unless, snapshot)
from mpl_tf.method.window_stats import WindowCorrelation, WindowMean, WindowStd


class MetaPseudoLabels(ClassifierTrainer):
    """Teacher and student trained together; `call` (serving, evaluation) is the student, or
    its EMA when one is attached (updated right after each student step, as released)."""

    LOG_NAMES = ("teacher_loss", "teacher_supervised", "teacher_uda", "uda_mask_ratio",
                 "student_loss", "labeled_loss_old", "labeled_loss_new", "feedback_h",
                 "feedback_h_positive", "feedback_baseline", "feedback_coefficient",
                 "pseudo_label_accuracy", "teacher_lr", "student_lr", "teacher_loss_scale",
                 "student_loss_scale")
    # Feedback diagnostics (README, "Feedback diagnostics"): whether the feedback did anything.
    WINDOW_LOGS = {
        "feedback_h_std": WindowStd,
        "feedback_coefficient_std": WindowStd,
        "feedback_h_pseudo_label_accuracy_correlation": WindowCorrelation,
        "feedback_share_of_teacher_gradient": WindowMean,
    }
    # No hidden labels (a folder's unlabeled images), a window of one step, or no log step
    # applied: these are undefined and left out.
    OPTIONAL_LOGS = ("feedback_h_pseudo_label_accuracy_correlation",
                     "feedback_share_of_teacher_gradient")

    NETWORKS = (TrainedNetwork("teacher", seed_offset=0, optimizer="teacher"),
                TrainedNetwork("student", seed_offset=1, optimizer="student"))
    LABELED_LOSS = "labeled_loss_new"
    TITLE = "Meta Pseudo Labels (student)"
    DESCRIPTION = "Meta Pseudo Labels (the student of a teacher-student pair)"
    SERVED = "student"
    FLAGS = ("label_type", "feedback", "feedback_sign", "feedback_forwards",
             "feedback_baseline_decay", "feedback_weight", "uda_weight", "uda_temperature",
             "uda_threshold", "uda_ramp_steps")

    def __init__(self, teacher, student, config, **kwargs):
        super().__init__(name="meta_pseudo_labels", **kwargs)
        self.teacher = teacher
        self.student = student
        self.config = config
        self.estimator = feedback.build(config.feedback, config.feedback_sign)
        self.pseudo_labeler = pseudo_labels.labeler(config.label_type)
        self.forwards = FORWARDS[config.feedback_forwards]
        self.feedback_baseline = self.add_weight(
            shape=(), initializer="zeros", trainable=False, name="feedback_baseline",
            aggregation="only_first_replica")

    def compile(self, teacher_optimizer, student_optimizer, **kwargs):
        super().compile(optimizer=None, **kwargs)
        self.teacher_optimizer = teacher_optimizer
        self.student_optimizer = student_optimizer

    def build_all(self, input_shape):
        """Builds both networks and both optimizers; call inside the strategy scope."""
        self(tf.zeros((1, *input_shape), self.student.dtype))
        self.teacher(tf.zeros((1, *input_shape), self.teacher.dtype))
        for network, optimizer in ((self.teacher, self.teacher_optimizer),
                                   (self.student, self.student_optimizer)):
            optimizer.build(network.trainable_variables, weight_decay_mask(network))

    @classmethod
    def differentiated_twice(cls, config):
        return feedback.estimator_class(config.feedback).records_student_step

    @property
    def networks(self):
        return [self.teacher, self.student]

    def extra_results(self, train_logs, test_accuracy):
        """The feedback's diagnostics (README, "Feedback diagnostics") and the teacher's test
        accuracy."""
        return {"feedback_diagnostics": feedback_diagnostics(train_logs),
                "teacher_test_accuracy": test_accuracy(self.teacher)}

    def train_step(self, data):
        """One step of Meta Pseudo Labels, numbered as in the README ("One step, in order"):
        1. the teacher's objective and pseudo labels, 2. the student's step on them, 3. measured
        by its labeled loss just before and after, 4. the teacher's update on its objective plus
        the feedback's term, 5. the student's EMA. A non-finite step is undone whole."""
        (x_l, y_l), (x_uw, x_us, y_u) = data
        cfg, estimator = self.config, self.estimator
        step = self.teacher_optimizer.iterations.read_value()
        step_state = self._step_state()
        saved_state = snapshot(step_state)  # before any forward moves batch-norm statistics
        # Persistent: on log steps the feedback term's own gradient is taken too.
        with tf.GradientTape(persistent=True) as teacher_tape:
            # 1. The teacher on [x_l; x_u_weak; x_u_strong]; pseudo labels of the strong view.
            objective = teacher_objective(self.teacher, x_l, y_l, x_uw, x_us, step, cfg)
            targets = self._pseudo_labels(objective.strong_logits, step)
            # 2. The student's loss on them (recorded for a second-order estimator only),
            with self._recording(teacher_tape):
                student_loss, pseudo_grads, s_l = self._pseudo_label_gradients(x_us, x_l,
                                                                              targets)
            with teacher_tape.stop_recording():
                # 2.-3. its step between two measurements of its labeled loss, and h.
                student_step, student_lr, student_finite = self._student_step(
                    x_l, y_l, s_l, pseudo_grads, targets, objective.strong_logits)
                h = estimator.signal(student_step)
                coefficient = estimator.coefficient(h, self.feedback_baseline,
                                                    cfg.feedback_baseline_decay)
            # 4. The teacher's loss: its objective plus the feedback estimator's term.
            feedback_term = cfg.feedback_weight * estimator.teacher_term(student_step,
                                                                         coefficient)
            teacher_loss = objective.loss + feedback_term
        teacher_grads = replica_sum(self.teacher_optimizer.loss_scale.gradients(
            teacher_tape, teacher_loss, self.teacher.trainable_variables))
        log_step = tf.equal((self.steps_run + 1) % min(cfg.log_every, cfg.train_steps), 0)
        share = self._feedback_share(teacher_tape, feedback_term, teacher_grads, log_step)
        del teacher_tape
        ok, teacher_finite = self._verdict(student_finite, teacher_grads, student_step, h)
        teacher_lr = self.teacher_optimizer.apply(teacher_grads, self.teacher.trainable_variables,
                                                  apply_if=ok)
        restore_unless(ok, step_state, saved_state)
        # 5. The student's EMA.
        self.update_ema(step, apply_if=ok)
        self._update_loss_scales(student_finite, teacher_finite)
        return self._logs(ok, log_step, objective, targets, y_u, student_step, h, coefficient,
                          teacher_loss=teacher_loss, student_loss=student_loss,
                          teacher_lr=teacher_lr, student_lr=student_lr, share=share)

    def _pseudo_labels(self, teacher_strong_logits, step):
        """The student's targets (`--label_type`), held fixed unless the estimator
        differentiates through the student's step."""
        targets = self.pseudo_labeler(teacher_strong_logits,
                                      pseudo_labels.step_seed(self.config.seed, step))
        return targets if self.estimator.records_student_step else tf.stop_gradient(targets)

    def _recording(self, teacher_tape):
        """Only an estimator that differentiates through the student's step has the teacher's
        tape record it (second order); otherwise recording would waste memory."""
        return (contextlib.nullcontext() if self.estimator.records_student_step
                else teacher_tape.stop_recording())

    def _verdict(self, student_finite, teacher_grads, student_step, h):
        """The non-finite guard: (whether the step's losses and gradients are all finite,
        whether the teacher's gradients are)."""
        teacher_finite = all_finite(teacher_grads)
        measured = [student_step.labeled_loss_before, student_step.labeled_loss_after, h]
        ok = tf.logical_and(tf.logical_and(student_finite, teacher_finite), all_finite(measured))
        return ok, teacher_finite

    def _update_loss_scales(self, student_finite, teacher_finite):
        """Dynamic loss scaling (mixed_float16; a no-op otherwise)."""
        self.student_optimizer.loss_scale.update(student_finite)
        # A student overflow makes h (dot) or the exact term non-finite, and so the teacher's
        # gradients: that says nothing about the teacher's own scale.
        self.teacher_optimizer.loss_scale.update(teacher_finite, counts=student_finite)

    def _logs(self, ok, log_step, objective, targets, y_u, student_step, h, coefficient, *,
              teacher_loss, student_loss, teacher_lr, student_lr, share):
        """Records the step (`ClassifierTrainer.record`): its global losses, the feedback's
        values and diagnostics, pseudo-label accuracy against the hidden labels."""
        cfg = self.config
        teacher_loss, supervised, uda, student_loss, masked, correct, known = replica_sum([
            teacher_loss, objective.supervised, objective.uda, student_loss,
            tf.reduce_sum(objective.uda_mask),
            *_pseudo_label_hits(targets, y_u)])
        label_accuracy = correct / tf.maximum(known, 1.0)
        old, new = student_step.labeled_loss_before, student_step.labeled_loss_after
        return self.record(ok, {
            "teacher_loss": teacher_loss, "teacher_supervised": supervised, "teacher_uda": uda,
            "uda_mask_ratio": masked / cfg.global_unlabeled_batch_size,
            "student_loss": student_loss,
            "labeled_loss_old": old, "labeled_loss_new": new, "feedback_h": h,
            "feedback_h_positive": tf.cast(h > 0, tf.float32),
            "feedback_baseline": self.feedback_baseline, "feedback_coefficient": coefficient,
            "pseudo_label_accuracy": label_accuracy,
            "teacher_lr": teacher_lr, "student_lr": student_lr,
            "teacher_loss_scale": self.teacher_optimizer.loss_scale.value(),
            "student_loss_scale": self.student_optimizer.loss_scale.value(),
            "feedback_h_std": h, "feedback_coefficient_std": coefficient,
            "feedback_h_pseudo_label_accuracy_correlation": (h, label_accuracy),
            "feedback_share_of_teacher_gradient": share,
        }, weights={"pseudo_label_accuracy": known,
                    "feedback_h_pseudo_label_accuracy_correlation": tf.cast(known > 0,
                                                                            tf.float32),
                    "feedback_share_of_teacher_gradient": tf.cast(log_step, tf.float32)})

    def _pseudo_label_gradients(self, x_us, x_l, targets):
        """The student's (scaled-loss-free) loss share on the pseudo labels, its per-replica
        gradients, and the labeled logits of the same forward when `--feedback_forwards` takes
        the loss before from it (else None)."""
        cfg = self.config
        with tf.GradientTape() as student_tape:
            if self.forwards.joint_before:
                s_u, s_l = tf.split(self.student(tf.concat([x_us, x_l], axis=0), training=True),
                                    [tf.shape(x_us)[0], tf.shape(x_l)[0]], axis=0)
            else:
                s_u, s_l = self.student(x_us, training=True), None
            student_loss = losses.global_mean(
                losses.cross_entropy(losses.smooth(targets, cfg.label_smoothing), s_u),
                cfg.global_unlabeled_batch_size)
        grads = self.student_optimizer.loss_scale.gradients(student_tape, student_loss,
                                                            self.student.trainable_variables)
        return student_loss, grads, s_l

    def _student_step(self, x_l, y_l, s_l, pseudo_grads, targets, t_us):
        """Applies the student's step between two measurements of its labeled loss; returns
        the step's record for the feedback, the student's lr and whether it was finite.

        The measurements only measure: they leave the student's batch-norm statistics as the
        pseudo-label forward set them (the released step updates them once, in its first
        student forward) and, by default, both see the same dropout mask and batch-norm batch
        (x_l alone), so the difference is the step's. The released construction
        (`--feedback_forwards=released`) takes the loss before from the pseudo-label forward on
        [x_u_strong; x_l] instead, which is why that forward is joint there.
        """
        estimator, student_vars = self.estimator, self.student.trainable_variables
        pseudo_grads_global = replica_sum(pseudo_grads)
        student_finite = all_finite(pseudo_grads_global)
        statistics = self.student.non_trainable_weights
        saved_statistics = snapshot(statistics)
        random_state = random_states(self.student)
        saved_random_state = snapshot(random_state)
        before = (losses.supervised(y_l, s_l, self.config.labeled_batch_size)
                  if s_l is not None else self._labeled_loss(x_l, y_l))
        student_lr = self.student_optimizer.apply(pseudo_grads_global, student_vars,
                                                  apply_if=student_finite)
        if self.forwards.same_random_state:
            restore(random_state, saved_random_state)
        with tf.GradientTape() as labeled_tape:
            after = self._labeled_loss(x_l, y_l)
        restore(statistics, saved_statistics)
        labeled_grads = None
        if estimator.needs_labeled_gradients:
            labeled_grads = replica_sum(self.student_optimizer.loss_scale.gradients(
                labeled_tape, after, student_vars))
            student_finite = tf.logical_and(student_finite, all_finite(labeled_grads))
        before, after = replica_sum([before, after])
        record = StudentStep(
            labeled_loss_before=before, labeled_loss_after=after,
            step_size=student_lr * self.student_optimizer.gradient_coefficient,
            pseudo_grads=pseudo_grads, pseudo_grads_global=pseudo_grads_global,
            labeled_grads_global=labeled_grads, pseudo_targets=targets,
            teacher_strong_logits=t_us,
            global_unlabeled_batch_size=self.config.global_unlabeled_batch_size)
        return record, student_lr, student_finite

    def _feedback_share(self, teacher_tape, feedback_term, teacher_grads, log_step):
        """|gradient of the feedback term| / |whole teacher gradient| (global), on log steps
        only: it costs one more backward pass of the teacher (and, over several replicas, one
        more all-reduce of a teacher-sized gradient on every step)."""
        if not self.estimator.has_teacher_term:
            return tf.zeros((), teacher_grads[0].dtype)
        variables = self.teacher.trainable_variables

        def feedback_gradients():
            return self.teacher_optimizer.loss_scale.gradients(teacher_tape, feedback_term,
                                                               variables)

        grads = tf.cond(log_step, feedback_gradients,
                        lambda: [tf.zeros_like(v) for v in variables])
        return tf.math.divide_no_nan(tf.linalg.global_norm(replica_sum(grads)),
                                     tf.linalg.global_norm(teacher_grads))

    def _step_state(self):
        """What a step changes before the guard's verdict: the student's weights (BN statistics
        too), momentum and step counter, the feedback baseline, and the teacher's BN
        statistics; restored together when the guard rejects the step (the teacher's and the
        EMA's updates come after the verdict and are gated instead)."""
        return [*self.student.weights, *self.student_optimizer.velocities,
                self.student_optimizer.iterations, self.feedback_baseline,
                *self.teacher.non_trainable_weights]

    def _labeled_loss(self, x_l, y_l):
        """The student's unsmoothed labeled loss share, the quantity the feedback measures."""
        return losses.supervised(y_l, self.student(x_l, training=True),
                                 self.config.labeled_batch_size)


# results.json's feedback_diagnostics: the run's mean of each log window's diagnostic.
_DIAGNOSTICS = {
    "h_mean": "feedback_h",
    "h_std": "feedback_h_std",
    "h_positive_fraction": "feedback_h_positive",
    "coefficient_std": "feedback_coefficient_std",
    "h_pseudo_label_accuracy_correlation": "feedback_h_pseudo_label_accuracy_correlation",
    "share_of_teacher_gradient": "feedback_share_of_teacher_gradient",
    "teacher_uda_loss": "teacher_uda",
}


def feedback_diagnostics(train_logs):
    """The MPL run's feedback diagnostics, each the mean over its log windows (those it was
    defined in); a diagnostic no window defined is left out."""
    return {key: train_logs[name] for key, name in _DIAGNOSTICS.items() if name in train_logs}


def _pseudo_label_hits(targets, true_labels):
    """(correct, known) counts of pseudo labels against hidden labels (-1 = unknown)."""
    known = tf.cast(true_labels >= 0, tf.float32)
    predicted = tf.argmax(targets, axis=-1, output_type=true_labels.dtype)
    correct = tf.cast(tf.equal(predicted, true_labels), tf.float32) * known
    return tf.cast(tf.reduce_sum(correct), targets.dtype), tf.cast(tf.reduce_sum(known),
                                                                  targets.dtype)
