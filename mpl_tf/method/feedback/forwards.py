"""How the student's labeled loss is measured before and after its step (`--feedback_forwards`).

h is a difference of two forwards of the student, in training mode. Unless both see the same
dropout mask and the same batch-norm batch, the difference measures those as well as the step
(the README's digits ablation measures how much, with the feedback diagnostics).
"""

import dataclasses


@dataclasses.dataclass(frozen=True)
class Forwards:
    """`joint_before`: the loss before comes from the student's pseudo-label forward on
    [x_u_strong; x_l] (one batch-norm batch for both), as released, instead of a forward of its
    own on x_l. `same_random_state`: the forward after the step replays the dropout masks of the
    forward before it (common random numbers)."""
    joint_before: bool
    same_random_state: bool
    doc: str


FORWARDS = {
    "common": Forwards(
        joint_before=False, same_random_state=True,
        doc="both on x_l alone, one dropout mask, one batch-norm batch: h measures the step"),
    "independent": Forwards(
        joint_before=False, same_random_state=False,
        doc="both on x_l alone, each with a fresh dropout mask"),
    "released": Forwards(
        joint_before=True, same_random_state=False,
        doc="before from the joint [x_u_strong; x_l] forward, after from x_l alone with a "
            "fresh mask, as the released code does"),
}
