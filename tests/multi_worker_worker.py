"""One worker of tests/test_multi_worker.py: 3 MPL steps under MultiWorkerMirroredStrategy
(TF_CONFIG set by the test), driven by mpl_tf.run.loop; saves the final weights to argv[1]."""

import sys

import numpy as np
import tensorflow as tf

STEPS = 3


def shard(global_batch, pipeline, num_pipelines):
    """This input pipeline's rows of every tensor of the fixed global batch."""
    def rows(t):
        size = t.shape[0] // num_pipelines
        return t[pipeline * size:(pipeline + 1) * size]
    return tf.nest.map_structure(rows, global_batch)


def main(out_path):
    strategy = tf.distribute.MultiWorkerMirroredStrategy()
    from mpl_tf.run import loop
    from mpl_tf.method.build import build_model
    from mpl_testing import INPUT_SHAPE, NUM_CLASSES, batch, distributed_step_config

    config = distributed_step_config()
    data = batch(config, dtype="float32")
    with strategy.scope():
        model = build_model(config, INPUT_SHAPE, NUM_CLASSES)
    dataset = strategy.distribute_datasets_from_function(
        lambda context: tf.data.Dataset.from_tensors(
            shard(data, context.input_pipeline_id, context.num_input_pipelines)).repeat())
    loop.fit(model, strategy, dataset, epochs=1, steps_per_epoch=STEPS, verbose=0)
    np.savez(out_path, *[w.numpy() for w in model.teacher.weights + model.student.weights])


if __name__ == "__main__":
    main(sys.argv[1])
