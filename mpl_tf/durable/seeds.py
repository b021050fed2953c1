"""The seed of each random stream of a run, derived from the run's --seed, the stream's name and
the input pipeline, so that no two streams share a seed: not two streams of one run, nor the
same stream of two runs or of two pipelines (adding small offsets to --seed would give run 1's
labeled order the seed of run 0's unlabeled order)."""

# Each stream's number; a new stream is a new name here (at most STREAM_SLOTS of them).
STREAMS = {
    "labeled_order": 0,  # the shuffled order of the labeled examples
    "unlabeled_order": 1,  # and of the unlabeled ones
    "labeled_views": 2,  # augmentation of each labeled example (with its position)
    "unlabeled_views": 3,  # weak and strong views of each unlabeled example
    "weak_noise": 4,  # Two Moons' Gaussian weak view (with the batch index)
    "strong_noise": 5,  # and its strong view
}
STREAM_SLOTS = 16
PIPELINE_SLOTS = 4096  # input pipelines (one per worker) a run may have


def stream_seed(run_seed, stream, pipeline=0):
    """The seed of `stream` in input pipeline `pipeline` of the run seeded `run_seed` (an int
    below 2**51 for run seeds below 2**31: it fits tf.data's and stateless ops' int64)."""
    if not 0 <= pipeline < PIPELINE_SLOTS:
        raise ValueError(f"input pipeline {pipeline} is not in [0, {PIPELINE_SLOTS})")
    return (run_seed * STREAM_SLOTS + STREAMS[stream]) * PIPELINE_SLOTS + pipeline


def random_states(model):
    """The state of `model`'s layers' random-seed generators (dropout): Keras keeps them out of
    `weights`, so a snapshot of the weights does not rewind them."""
    return [v for v in model.non_trainable_variables if "seed_generator" in v.path]
