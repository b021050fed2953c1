"""Building a method's trainer: its networks, optimizers and EMA, compiled and built.

One place puts every method together from what its class declares (mpl_tf/method/trainer.py:
its networks, their seeds and optimizers), so every run, test and benchmark trains the same
models.
"""

import functools

from mpl_tf import method as methods
from mpl_tf import models
from mpl_tf.method import optim
from mpl_tf.models import precision

# A network's optimizer role (`TrainedNetwork.optimizer`): the flags of its schedule, as
# (peak lr, warmup steps, wait steps).
_SCHEDULE_FLAGS = {
    "teacher": lambda config: (config.teacher_lr, config.teacher_warmup_steps, 0),
    "student": lambda config: (config.student_lr, config.student_warmup_steps,
                               config.student_wait_steps),
    "network": lambda config: (*config.network_schedule, 0),
}


def make_optimizer(config, role):
    """The optimizer of a network in `role` ("teacher", "student" or "network", a one-network
    method's), with its schedule."""
    lr, warmup, wait = _SCHEDULE_FLAGS[role](config)
    schedule = functools.partial(optim.learning_rate, peak=lr, schedule=config.lr_schedule,
                                 total_steps=config.train_steps, warmup_steps=warmup,
                                 wait_steps=wait)
    loss_scale = precision.LossScale(dynamic=config.precision == "mixed_float16",
                                     name=f"{role}_loss_scale")
    return optim.MomentumSGD(schedule, momentum=config.momentum, nesterov=config.nesterov,
                             weight_decay=config.weight_decay, clip_norm=config.grad_clip_norm,
                             loss_scale=loss_scale, name=f"{role}_sgd")


def build_model(config, input_shape, num_classes, method=None, dtype=None, pixel_mean=None,
                pixel_std=None):
    """The compiled, built Keras model of `method` (a registered name; default
    `config.method`); call inside the strategy scope.

    Its networks compute in `dtype` (a dtype or Keras dtype policy; default: the policy of
    `config.precision`). Each starts from the seed its `TrainedNetwork` declares (2 * seed +
    offset). The EMA starts as a copy of the served network's weights; it is built from
    2 * seed + 1 whatever the method, as it always was: the seed state of its (unused) dropout
    layer, which checkpoints hold, comes from it.
    """
    trainer = methods.get(method or config.method)
    dtype = dtype or precision.POLICIES[config.precision]
    network = functools.partial(models.build, config, input_shape, num_classes, dtype=dtype,
                                pixel_mean=pixel_mean, pixel_std=pixel_std,
                                differentiated_twice=trainer.differentiated_twice(config))
    networks = [network(seed=2 * config.seed + n.seed_offset, name=n.name)
                for n in trainer.NETWORKS]
    average = (network(seed=2 * config.seed + 1, name=f"{trainer.NETWORKS[-1].name}_ema")
               if config.ema_decay else None)
    return assemble(config, trainer, networks, average, input_shape)


def assemble(config, trainer, networks, average, input_shape):
    """The compiled, built Keras model of the method class `trainer` around its `networks` (in
    the order of its `NETWORKS`), serving `average` as the EMA when given."""
    model = trainer(*networks, config)
    optimizers = [make_optimizer(config, n.optimizer) for n in trainer.NETWORKS]
    if average is not None:
        model.attach_ema(average, config.ema_decay, config.ema_start_step)
    model.compile(*optimizers)  # our loop drives the steps; Keras compile options do not apply
    model.build_all(input_shape)
    return model
