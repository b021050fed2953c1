"""FixMatch (mpl_tf/method/fixmatch.py), the method added through the registry alone: its
gradient against central finite differences of the loss written out in numpy, its logs, and a
Two Moons run through the command line."""

import json

import numpy as np
import pytest

from command_testing import main_in_process
from mpl_testing import NUM_CLASSES, batch, build, tiny_config, weights


def _forward(params, x):
    """The tiny tanh MLP of `tiny_config` (one hidden layer), in numpy."""
    kernel, bias, out_kernel, out_bias = params
    return np.tanh(x @ kernel + bias) @ out_kernel + out_bias


def _log_softmax(logits):
    shifted = logits - logits.max(axis=-1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))


def _pseudo_labels(params, x_uw, threshold):
    probabilities = np.exp(_log_softmax(_forward(params, x_uw)))
    return probabilities.argmax(-1), (probabilities.max(-1) >= threshold).astype(np.float64)


def numpy_loss(params, data, config):
    """Supervised CE (label-smoothed) on the labeled batch + weight * mean over the unlabeled
    batch of mask * CE(argmax of the weak view, strong view)."""
    (x_l, y_l), (x_uw, x_us, _) = (tuple(np.asarray(t) for t in part) for part in data)
    smoothing = config.label_smoothing
    targets = (1 - smoothing) * np.eye(NUM_CLASSES)[y_l] + smoothing / NUM_CLASSES
    supervised = -np.mean(np.sum(targets * _log_softmax(_forward(params, x_l)), -1))
    labels, mask = _pseudo_labels(params, x_uw, config.fixmatch_threshold)
    strong = _log_softmax(_forward(params, x_us))
    unlabeled = -np.mean(mask * strong[np.arange(len(labels)), labels])
    return supervised + config.fixmatch_weight * unlabeled


def _config():
    """A threshold between the weak view's confidences, so the mask keeps some examples and
    drops others."""
    config = tiny_config(method="fixmatch", label_smoothing=0.2, fixmatch_weight=1.5)
    params = weights(build(config).network)
    _, (x_uw, _, _) = batch(config)
    confidence = np.exp(_log_softmax(_forward(params, np.asarray(x_uw)))).max(-1)
    return config.replace(fixmatch_threshold=float(np.median(confidence)))


def test_gradient_matches_central_finite_differences_of_the_numpy_loss():
    config = _config()
    data = batch(config)
    model = build(config)
    params = weights(model.network)
    _, mask = _pseudo_labels(params, np.asarray(data[1][0]), config.fixmatch_threshold)
    assert 0 < mask.sum() < len(mask), "the mask should keep some examples and drop others"

    logs = model.train_step(data)  # plain SGD from rest: w_after = w - lr * grad
    assert float(logs["loss"]) == pytest.approx(numpy_loss(params, data, config), rel=1e-6)
    lr = config.network_schedule[0]
    grad = [(before - after) / lr for before, after in zip(params, weights(model.network))]

    rng = np.random.default_rng(1)
    eps = 1e-6
    for _ in range(3):
        direction = [rng.normal(size=p.shape) for p in params]
        plus = numpy_loss([p + eps * d for p, d in zip(params, direction)], data, config)
        minus = numpy_loss([p - eps * d for p, d in zip(params, direction)], data, config)
        numeric = (plus - minus) / (2 * eps)
        analytic = sum(float(np.sum(g * d)) for g, d in zip(grad, direction))
        assert abs(numeric) > 1e-3
        np.testing.assert_allclose(analytic, numeric, rtol=1e-6, atol=1e-10)


def test_logs_mask_rate_and_pseudo_label_accuracy():
    config = _config()
    data = batch(config)
    model = build(config)
    params = weights(model.network)
    (_, _), (x_uw, _, y_u) = data
    labels, mask = _pseudo_labels(params, np.asarray(x_uw), config.fixmatch_threshold)
    logs = {k: float(v) for k, v in model.train_step(data).items()}
    correct = labels == np.asarray(y_u)
    assert logs["mask_rate"] == pytest.approx(mask.mean())
    assert logs["pseudo_label_accuracy"] == pytest.approx(correct.mean())
    assert logs["masked_pseudo_label_accuracy"] == pytest.approx(correct[mask > 0].mean())
    assert model.trackers["masked_pseudo_label_accuracy"].defined()

    nothing = build(config.replace(fixmatch_threshold=1.0))
    logs = nothing.train_step(data)
    assert float(logs["mask_rate"]) == 0.0 and float(logs["unlabeled"]) == 0.0
    assert not nothing.trackers["masked_pseudo_label_accuracy"].defined()


def test_fixmatch_trains_two_moons_from_the_command_line(tmp_path):
    model_dir = tmp_path / "run"
    assert main_in_process("--flagfile=flags/two_moons.cfg", "--method=fixmatch",
                           f"--model_dir={model_dir}", "--train_steps=400",
                           "--log_every=200") == 0
    results = json.loads((model_dir / "results.json").read_text())
    assert results["method"] == "fixmatch"
    assert results["fixmatch_threshold"] == 0.95 and results["fixmatch_weight"] == 1.0
    assert "feedback" not in results and "teacher_test_accuracy" not in results
    assert 0.0 <= results["control_supervised_test_accuracy"] <= 1.0
    assert 0.0 <= results["train_logs_mean"]["mask_rate"] <= 1.0
    assert (model_dir / "decision_boundary.png").exists()
    card = (model_dir / "export" / "hub" / "MODEL_CARD.md").read_text()
    assert "FixMatch" in card and "`--fixmatch_threshold=0.95`" in card
