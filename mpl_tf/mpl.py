"""Meta Pseudo Labels as one Keras model: a teacher, a student, two optimizers, one train_step.

One step, in order (MPL_ALGORITHM.md section 1, with the paper's feedback):
1. the teacher sees [labeled; unlabeled weak; unlabeled strong] in one batch; its supervised loss
   and UDA consistency come from these logits, and pseudo labels from its strong-view logits;
2. the student takes one optimizer step on the pseudo labels of the strong view;
3. the student's labeled loss is measured just before and just after that step (same forward
   settings both times, so their difference measures the step and nothing else);
4. the teacher descends supervised + UDA + the feedback term built from that difference;
5. the student's EMA moves (after the step, as released; the order does not change the step).
A step with any non-finite loss or gradient is rolled back whole (see ClassifierTrainer).
Every loss is a per-replica share of the global-batch mean and every gradient is summed over
replicas before use, so the step does not depend on how the global batch is split, up to what is
per replica by nature: batch-norm batch statistics, dropout masks and sampled labels.
"""

import contextlib

import tensorflow as tf

from mpl_tf import feedback
from mpl_tf import losses
from mpl_tf import pseudo_labels
from mpl_tf.distribute import replica_sum
from mpl_tf.trainer import ClassifierTrainer, all_finite, restore_unless, snapshot


class MetaPseudoLabels(ClassifierTrainer):
    """Teacher and student trained together; `call` (serving, evaluation) is the student, or
    its EMA when one is attached (updated right after each student step, as released)."""

    LOG_NAMES = ("teacher_loss", "teacher_supervised", "teacher_uda", "uda_mask_ratio",
                 "student_loss", "labeled_loss_old", "labeled_loss_new", "feedback_h",
                 "feedback_h_positive", "feedback_baseline", "feedback_coefficient",
                 "pseudo_label_accuracy", "teacher_lr", "student_lr", "teacher_loss_scale",
                 "student_loss_scale")

    def __init__(self, teacher, student, config, **kwargs):
        super().__init__(name="meta_pseudo_labels", **kwargs)
        self.teacher = teacher
        self.student = student
        self.config = config
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
        self.teacher_optimizer.build(self.teacher.trainable_variables)
        self.student_optimizer.build(self.student.trainable_variables)

    @property
    def trained_network(self):
        return self.student

    def train_step(self, data):
        (x_l, y_l), (x_uw, x_us, y_u) = data
        cfg = self.config
        step = self.teacher_optimizer.iterations.read_value()
        exact = cfg.feedback == "exact"
        score_function = cfg.feedback in ("taylor", "dot")
        n_l, n_u = tf.shape(x_l)[0], tf.shape(x_uw)[0]
        teacher_vars = self.teacher.trainable_variables
        student_vars = self.student.trainable_variables
        teacher_scale = self.teacher_optimizer.loss_scale
        student_scale = self.student_optimizer.loss_scale
        step_state = self._step_state()
        saved_state = snapshot(step_state)  # before any forward moves batch-norm statistics

        with tf.GradientTape() as teacher_tape:
            t_logits = self.teacher(tf.concat([x_l, x_uw, x_us], axis=0), training=True)
            t_l, t_uw, t_us = tf.split(t_logits, [n_l, n_u, n_u], axis=0)
            supervised, uda, uda_mask = losses.uda_objective(t_l, y_l, t_uw, t_us, cfg)
            uda_weight = cfg.uda_weight * losses.ramp(step, cfg.uda_ramp_steps)
            targets = pseudo_labels.targets(t_us, cfg.label_type,
                                            pseudo_labels.step_seed(cfg.seed, step))
            if not exact:
                targets = tf.stop_gradient(targets)

            # The student's step. Only `exact` differentiates through it, so only then does the
            # teacher's tape record it (second order); otherwise recording would waste memory.
            recording = contextlib.nullcontext() if exact else teacher_tape.stop_recording()
            with recording:
                with tf.GradientTape() as student_tape:
                    s_u = self.student(x_us, training=True)
                    student_loss = losses.global_mean(
                        losses.cross_entropy(losses.smooth(targets, cfg.label_smoothing), s_u),
                        cfg.global_unlabeled_batch_size)
                pseudo_grads = student_scale.gradients(student_tape, student_loss, student_vars)

            with teacher_tape.stop_recording():
                global_pseudo_grads = replica_sum(pseudo_grads)
                student_ok = all_finite(global_pseudo_grads)
                # The labeled forwards only measure the student: they must not move its
                # batch-norm statistics (the released step updates them once, on x_u).
                statistics = self.student.non_trainable_weights
                saved_statistics = snapshot(statistics)
                old = self._labeled_loss(x_l, y_l)
                student_lr = self.student_optimizer.apply(global_pseudo_grads, student_vars,
                                                          apply_if=student_ok)
                with tf.GradientTape() as labeled_tape:
                    new = self._labeled_loss(x_l, y_l)
                restore_unless(tf.constant(False), statistics, saved_statistics)
                student_finite = student_ok
                if cfg.feedback in ("dot", "exact"):
                    labeled_grads = replica_sum(
                        student_scale.gradients(labeled_tape, new, student_vars))
                    student_finite = tf.logical_and(student_ok, all_finite(labeled_grads))
                old, new = replica_sum([old, new])
                h = feedback.taylor(old, new, cfg.feedback_sign)
                step_size = student_lr * self.student_optimizer.gradient_coefficient
                if cfg.feedback == "dot":
                    h = feedback.dot(step_size, labeled_grads, global_pseudo_grads,
                                     cfg.feedback_sign)
                coefficient = tf.zeros_like(h)
                if score_function:
                    coefficient = feedback.subtract_baseline(h, self.feedback_baseline,
                                                             cfg.feedback_baseline_decay)

            if score_function:
                feedback_term = feedback.score_function_term(coefficient, targets, t_us,
                                                             cfg.global_unlabeled_batch_size)
            elif exact:
                feedback_term = feedback.exact_term(step_size, pseudo_grads, labeled_grads)
            else:
                feedback_term = tf.zeros_like(supervised)
            teacher_loss = (supervised + tf.cast(uda_weight, uda.dtype) * uda
                            + cfg.feedback_weight * feedback_term)

        teacher_grads = replica_sum(teacher_scale.gradients(teacher_tape, teacher_loss,
                                                            teacher_vars))
        teacher_finite = all_finite(teacher_grads)
        ok = tf.logical_and(tf.logical_and(student_finite, teacher_finite),
                            all_finite([old, new, h]))
        teacher_lr = self.teacher_optimizer.apply(teacher_grads, teacher_vars, apply_if=ok)
        restore_unless(ok, step_state, saved_state)
        self.update_ema(step, apply_if=ok)
        student_scale.update(student_finite)
        # A student overflow makes h (dot) or the exact term non-finite, and so the teacher's
        # gradients: that says nothing about the teacher's own scale.
        teacher_scale.update(teacher_finite, counts=student_finite)

        teacher_loss, supervised, uda, student_loss, masked, correct, known = replica_sum([
            teacher_loss, supervised, uda, student_loss, tf.reduce_sum(uda_mask),
            *_pseudo_label_hits(targets, y_u)])
        return self.record(ok, {
            "teacher_loss": teacher_loss, "teacher_supervised": supervised, "teacher_uda": uda,
            "uda_mask_ratio": masked / cfg.global_unlabeled_batch_size,
            "student_loss": student_loss,
            "labeled_loss_old": old, "labeled_loss_new": new, "feedback_h": h,
            "feedback_h_positive": tf.cast(h > 0, tf.float32),
            "feedback_baseline": self.feedback_baseline, "feedback_coefficient": coefficient,
            "pseudo_label_accuracy": correct / tf.maximum(known, 1.0),
            "teacher_lr": teacher_lr, "student_lr": student_lr,
            "teacher_loss_scale": teacher_scale.value(),
            "student_loss_scale": student_scale.value(),
        }, weights={"pseudo_label_accuracy": known})

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


def _pseudo_label_hits(targets, true_labels):
    """(correct, known) counts of pseudo labels against hidden labels (-1 = unknown)."""
    known = tf.cast(true_labels >= 0, tf.float32)
    predicted = tf.argmax(targets, axis=-1, output_type=true_labels.dtype)
    correct = tf.cast(tf.equal(predicted, true_labels), tf.float32) * known
    return tf.cast(tf.reduce_sum(correct), targets.dtype), tf.cast(tf.reduce_sum(known),
                                                                  targets.dtype)
