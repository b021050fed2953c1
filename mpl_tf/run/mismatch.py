"""A network that runs on the data but does not suit it, said before training starts (once, on
stderr, so the user can stop the run) and recorded in results.json's `warnings`.

`--dataset=folder:PATH` with the default flags trained Two Moons' 8-8 sigmoid MLP on the
images and ended at chance without a word: the MLP flattens any input, so nothing failed.
"""

from mpl_tf import models
from mpl_tf.data import sources


def network_warnings(config, data):
    """The warnings (one line each) about `config.model` on `data` (a `SplitData`)."""
    image = len(data.input_shape) == 3
    if not image or models.NETWORKS[config.model].min_image_size:
        return []
    convolutional = ", ".join(name for name, network in models.NETWORKS.items()
                              if network.min_image_size)
    fix = ("--recipe=folder (a CNN for small images) or --model=cnn"
           if sources.folder_root(config.dataset) is not None else "--model=cnn")
    height, width, channels = data.input_shape
    return [f"network meant for 2-D points ({config.model}) meets images of shape "
            f"{height}x{width}x{channels}: use {fix} (convolutional networks: {convolutional})"]
