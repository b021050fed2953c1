"""2-D datasets (Two Moons): the supervised control a run is compared with, and the figure of
the truth, the control and the run (decision_boundary.png).

The control is a second training beside the run's own (unless the run's method is that control:
`TWO_D_CONTROL` False): its test accuracy is results.json's `control_supervised_test_accuracy`.
"""

import os

import numpy as np

from mpl_tf import method as methods
from mpl_tf.run import plots
from mpl_tf.run import training


def train(config, data, strategy, model):
    """The supervised control of the run whose model is `model`: that model itself if its
    method is the control, else a supervised network trained with the run's config (neither
    logged nor checkpointed)."""
    if not model.TWO_D_CONTROL:
        return model
    control, _ = training.train(config, data, strategy, method=methods.CONTROL)
    return control


def draw(config, data, control, model):
    """Writes decision_boundary.png: ground truth | the supervised `control` | the run's
    `model` (the last panel only when the run is not the control itself)."""
    panels = [("Ground truth", None), (control.TITLE, _predictor(control, config.eval_batch_size))]
    if model.TWO_D_CONTROL:
        panels.append((model.TITLE, _predictor(model, config.eval_batch_size)))
    plots.decision_boundaries(os.path.join(config.model_dir, "decision_boundary.png"),
                              data.test_images, data.test_labels, data.labeled_indices, panels)


def _predictor(network, batch_size):
    """A numpy [N, ...] -> class ids function of a Keras network (inference mode)."""

    def predict(images):
        return np.concatenate([
            np.argmax(network(images[i:i + batch_size], training=False), axis=-1)
            for i in range(0, len(images), batch_size)])

    return predict
