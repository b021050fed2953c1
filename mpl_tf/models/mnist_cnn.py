"""A CNN for 28x28 grayscale images (Fashion-MNIST, MNIST): about 4x the parameters of the digits
CNN (cnn.py) at about its cost per image, so a semi-supervised run still takes minutes on a CPU.

It pools early: one conv at full resolution, then the channels double as the side halves
(28 -> 14 -> 7), and global average pooling, so any image of at least 8x8 gives the same head;
conv-BN-ReLU layers and initializers as in the digits CNN and the WRN.
"""

from mpl_tf.models.cnn import cnn
from mpl_tf.models.network import convolutional

# (filters, max-pool after the layer): cnn.py's builder with these layers.
LAYERS = ((32, True), (64, True), (128, False))

NETWORK = convolutional(cnn, min_image_size=8, layers=LAYERS)
