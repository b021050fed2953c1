"""The controls every MPL number needs, built from the same pieces: one network trained on the
labeled data alone (`Supervised`) or on the teacher's own objective (`UDA`)."""

import tensorflow as tf

from mpl_tf.method import losses
from mpl_tf.durable.strategies import replica_sum
from mpl_tf.models import weight_decay_mask
from mpl_tf.method.teacher_objective import teacher_objective
from mpl_tf.method.trainer import (ClassifierTrainer, TrainedNetwork, all_finite, restore_unless,
                                   snapshot)


class SingleNetwork(ClassifierTrainer):
    """One network, one optimizer (set by --network_lr and --network_warmup_steps); subclasses
    define `objective`, and may turn its summed logs into ratios in `summarize`."""

    def __init__(self, network, config, **kwargs):
        super().__init__(**kwargs)
        self.network = network
        self.config = config

    def compile(self, network_optimizer, **kwargs):
        super().compile(optimizer=None, **kwargs)
        self.network_optimizer = network_optimizer

    def build_all(self, input_shape):
        """Builds the network and its optimizer; call inside the strategy scope."""
        self(tf.zeros((1, *input_shape), self.network.dtype))
        self.network_optimizer.build(self.network.trainable_variables,
                                     weight_decay_mask(self.network))

    @property
    def networks(self):
        return [self.network]

    def train_step(self, data):
        variables = self.network.trainable_variables
        step = self.network_optimizer.iterations.read_value()
        statistics = self.network.non_trainable_weights  # BN moving averages move in forward
        saved_statistics = snapshot(statistics)
        loss_scale = self.network_optimizer.loss_scale
        with tf.GradientTape() as tape:
            loss, logs = self.objective(data)
        grads = replica_sum(loss_scale.gradients(tape, loss, variables))
        logs, weights = self.summarize(dict(zip(logs, replica_sum(list(logs.values())))))
        grads_finite = all_finite(grads)
        ok = tf.logical_and(grads_finite, all_finite([logs["loss"]]))
        lr = self.network_optimizer.apply(grads, variables, apply_if=ok)
        restore_unless(ok, statistics, saved_statistics)
        self.update_ema(step, apply_if=ok)
        loss_scale.update(grads_finite)
        return self.record(ok, {**logs, "lr": lr, "loss_scale": loss_scale.value()}, weights)

    def summarize(self, logs):
        """The logs to record from the objective's (summed over replicas), and their weights
        (see `ClassifierTrainer.record`)."""
        return logs, None


class Supervised(SingleNetwork):
    """Label-smoothed cross-entropy on the labeled batch; the unlabeled batch is ignored."""

    LOG_NAMES = ("loss", "lr", "loss_scale")
    NETWORKS = (TrainedNetwork("supervised", seed_offset=1, optimizer="network"),)
    LABELED_LOSS = "loss"
    TITLE = "Supervised"
    DESCRIPTION = "supervised training on the labeled examples only"
    TWO_D_CONTROL = False
    UNLABELED = False

    def __init__(self, network, config, **kwargs):
        super().__init__(network, config, name="supervised", **kwargs)

    def objective(self, data):
        (x_l, y_l), _ = data
        loss = losses.supervised(y_l, self.network(x_l, training=True),
                                 self.config.labeled_batch_size, self.config.label_smoothing)
        return loss, {"loss": loss}


class UDA(SingleNetwork):
    """Supervised loss plus confidence-masked consistency: MPL's teacher without the student."""

    LOG_NAMES = ("loss", "supervised", "uda", "uda_mask_ratio", "lr", "loss_scale")
    NETWORKS = (TrainedNetwork("uda", seed_offset=0, optimizer="network"),)
    LABELED_LOSS = "supervised"
    TITLE = "UDA"
    DESCRIPTION = "UDA (consistency training; the network MPL's teacher would be)"
    FLAGS = ("uda_weight", "uda_temperature", "uda_threshold", "uda_ramp_steps")

    def __init__(self, network, config, **kwargs):
        super().__init__(network, config, name="uda", **kwargs)

    def objective(self, data):
        (x_l, y_l), (x_uw, x_us, _) = data
        objective = teacher_objective(self.network, x_l, y_l, x_uw, x_us,
                                      self.network_optimizer.iterations, self.config)
        mask_ratio = (tf.reduce_sum(objective.uda_mask)
                      / self.config.global_unlabeled_batch_size)
        return objective.loss, {"loss": objective.loss, "supervised": objective.supervised,
                                "uda": objective.uda, "uda_mask_ratio": mask_ratio}
