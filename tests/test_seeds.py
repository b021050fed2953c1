"""Every random stream of a run has its own seed (across streams, runs and input pipelines), and
every initializer of a network its own."""

import itertools

import pytest

from mpl_tf import errors
from mpl_tf.durable.seeds import PIPELINE_SLOTS, STREAM_SLOTS, STREAMS, stream_seed


def test_no_two_streams_runs_or_pipelines_share_a_seed():
    keys = list(itertools.product(range(40), STREAMS, (0, 1, 2, 7, PIPELINE_SLOTS - 1)))
    seeds = [stream_seed(*key) for key in keys]
    assert len(set(seeds)) == len(keys)
    # The collision the old offsets had: run 1's labeled order was run 0's unlabeled order.
    assert stream_seed(1, "labeled_order") != stream_seed(0, "unlabeled_order")
    assert stream_seed(0, "labeled_order", 1) != stream_seed(1000, "labeled_order", 0)


def test_seeds_fit_int64_and_bad_pipelines_are_refused():
    assert len(STREAMS) <= STREAM_SLOTS and len(set(STREAMS.values())) == len(STREAMS)
    assert 0 <= stream_seed(2 ** 31 - 1, max(STREAMS, key=STREAMS.get),
                            PIPELINE_SLOTS - 1) < 2 ** 63
    for pipeline in (-1, PIPELINE_SLOTS):
        with pytest.raises(ValueError, match=f"input pipeline {pipeline} is not in"):
            stream_seed(0, "labeled_order", pipeline)


def test_a_network_s_initializer_seeds_never_reach_the_next_network_s():
    from mpl_tf import config
    from mpl_tf.models.layers import LayerSeeds

    seeds = LayerSeeds(3)
    drawn = [seeds.next() for _ in range(LayerSeeds.PER_NETWORK)]
    assert drawn[0] == 3 * LayerSeeds.PER_NETWORK and drawn[-1] < LayerSeeds(4).next()
    with pytest.raises(ValueError, match="more than 1000 initializer seeds"):
        seeds.next()
    # The longest MLP the flags allow (two seeds a layer, and the logits layer) fits.
    assert 2 * (config._MAX_MLP_LAYERS + 1) <= LayerSeeds.PER_NETWORK
    with pytest.raises(errors.ConfigError, match="must list at most 100 widths"):
        config.Config(mlp_hidden=(4,) * 101).validate()
