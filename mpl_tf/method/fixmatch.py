"""FixMatch (Sohn et al., NeurIPS 2020): one network learns, on the strong view of each
unlabeled example, the hard label it predicts itself on the weak view, when that prediction is
confident enough.

    loss = CE(y_l, f(x_l)) + --fixmatch_weight * mean_u [ mask_u * CE(y_hat_u, f(x_u_strong)) ]
    y_hat_u = argmax f(x_u_weak) (held fixed), mask_u = 1[max softmax f(x_u_weak) >= threshold]

One training-mode forward of [x_l; x_u_weak; x_u_strong] (one batch-norm batch, as UDA's); the
labeled loss takes --label_smoothing like every supervised loss here, the hard pseudo labels
none; masked examples still count in the mean (the fixed global unlabeled batch size).

Smoothing caps the confidence the threshold is compared with: trained on targets 1 - s + s/K,
the network rarely predicts much above that. With the digits recipe (s = 0.1, so 0.91) the
default threshold 0.95 kept 7% of the unlabeled batch (test 89.2%); --label_smoothing=0 kept
68% (92.6%), --fixmatch_threshold=0.7 79% (96.5%; seed 0, 2,000 steps).
"""

import tensorflow as tf

from mpl_tf.method import losses
from mpl_tf.method.controls import SingleNetwork
from mpl_tf.method.trainer import TrainedNetwork
from mpl_tf.method.window_stats import WindowMean


class FixMatch(SingleNetwork):
    """Supervised loss plus thresholded hard pseudo labels from the weak view, learnt on the
    strong view."""

    LOG_NAMES = ("loss", "supervised", "unlabeled", "mask_rate", "lr", "loss_scale")
    # The pseudo labels' accuracy against the hidden labels (never used in a loss), of all and
    # of those above the threshold; undefined in a window without hidden labels (a folder's
    # unlabeled images) or without a confident prediction, and then left out.
    WINDOW_LOGS = {"pseudo_label_accuracy": WindowMean,
                   "masked_pseudo_label_accuracy": WindowMean}
    OPTIONAL_LOGS = tuple(WINDOW_LOGS)
    NETWORKS = (TrainedNetwork("fixmatch", seed_offset=0, optimizer="network"),)
    LABELED_LOSS = "supervised"
    TITLE = "FixMatch"
    DESCRIPTION = ("FixMatch (confident hard pseudo labels from a weak view, learnt on a strong "
                   "view; Sohn et al., 2020)")
    FLAGS = ("fixmatch_threshold", "fixmatch_weight")

    def __init__(self, network, config, **kwargs):
        super().__init__(network, config, name="fixmatch", **kwargs)

    def objective(self, data):
        (x_l, y_l), (x_uw, x_us, y_u) = data
        cfg = self.config
        n_l, n_u = tf.shape(x_l)[0], tf.shape(x_uw)[0]
        logits = self.network(tf.concat([x_l, x_uw, x_us], axis=0), training=True)
        labeled, weak, strong = tf.split(logits, [n_l, n_u, n_u], axis=0)
        supervised = losses.supervised(y_l, labeled, cfg.labeled_batch_size,
                                       cfg.label_smoothing)
        unlabeled, mask, pseudo_labels = fixmatch_consistency(
            weak, strong, cfg.fixmatch_threshold, cfg.global_unlabeled_batch_size)
        loss = supervised + cfg.fixmatch_weight * unlabeled
        known = tf.cast(y_u >= 0, mask.dtype)
        correct = tf.cast(tf.equal(pseudo_labels, y_u), mask.dtype) * known
        # Shares of global sums (the train step sums every log over replicas); `summarize`
        # turns the counts into accuracies.
        return loss, {"loss": loss, "supervised": supervised, "unlabeled": unlabeled,
                      "mask_rate": tf.reduce_sum(mask) / cfg.global_unlabeled_batch_size,
                      "correct": tf.reduce_sum(correct), "known": tf.reduce_sum(known),
                      "masked_correct": tf.reduce_sum(correct * mask),
                      "masked_known": tf.reduce_sum(known * mask)}

    def summarize(self, logs):
        logs = dict(logs)
        correct, known = logs.pop("correct"), logs.pop("known")
        masked_correct, masked_known = logs.pop("masked_correct"), logs.pop("masked_known")
        logs["pseudo_label_accuracy"] = correct / tf.maximum(known, 1.0)
        logs["masked_pseudo_label_accuracy"] = masked_correct / tf.maximum(masked_known, 1.0)
        return logs, {"pseudo_label_accuracy": known,
                      "masked_pseudo_label_accuracy": masked_known}


def fixmatch_consistency(weak_logits, strong_logits, threshold, global_batch_size):
    """FixMatch's unlabeled loss share: returns (loss, mask, pseudo labels).

    The pseudo labels are the argmax of the weak-view prediction, held fixed; an example counts
    only if that prediction's probability reaches `threshold`, and masked examples still count
    in the denominator (the global batch size).
    """
    probabilities = tf.stop_gradient(tf.nn.softmax(weak_logits, axis=-1))
    pseudo_labels = tf.argmax(probabilities, axis=-1, output_type=tf.int32)
    mask = tf.cast(tf.reduce_max(probabilities, axis=-1) >= threshold, strong_logits.dtype)
    targets = losses.one_hot(pseudo_labels, strong_logits)
    loss = losses.global_mean(mask * losses.cross_entropy(targets, strong_logits),
                              global_batch_size)
    return loss, mask, pseudo_labels
