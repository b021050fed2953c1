"""taylor: h = CE_l(theta) - CE_l(theta'), the first-order difference the released code logs
(with both losses from one dropout mask and batch-norm batch, see mpl_tf/method/feedback/forwards.py)."""

from mpl_tf.method.feedback.base import ScoreFunction


class Taylor(ScoreFunction):
    """The signal is the default one: the labeled loss before minus after the step."""
