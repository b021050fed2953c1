"""Building a method's trainer: its networks, optimizers and EMA, compiled and built.

One place decides how MPL, UDA and the supervised control are put together (seeds, optimizer
settings), so every run, test and benchmark trains the same models.
"""

import functools

from mpl_tf import feedback
from mpl_tf import models
from mpl_tf import optim
from mpl_tf import precision
from mpl_tf import teacher_init
from mpl_tf.controls import UDA, Supervised
from mpl_tf.mpl import MetaPseudoLabels


def make_optimizer(config, role):
    """The teacher's or the student's optimizer, with its schedule (single networks use the
    teacher's settings: they are trained the way MPL's teacher is)."""
    lr = config.student_lr if role == "student" else config.teacher_lr
    warmup = config.student_warmup_steps if role == "student" else config.teacher_warmup_steps
    wait = config.student_wait_steps if role == "student" else 0
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
    """The compiled, built Keras model for `method`; call inside the strategy scope.

    Its networks compute in `dtype` (a dtype or Keras dtype policy; default: the policy of
    `config.precision`).

    Seeds: the teacher (and the UDA network) start from 2*seed, the student (and the supervised
    network) from 2*seed+1, so each control starts where its MPL counterpart starts.
    """
    method = method or config.method
    dtype = dtype or precision.POLICIES[config.precision]
    teacher_seed, student_seed = 2 * config.seed, 2 * config.seed + 1
    network = functools.partial(models.build, config, input_shape, num_classes, dtype=dtype,
                                pixel_mean=pixel_mean, pixel_std=pixel_std,
                                differentiated_twice=method == "mpl" and feedback.estimator_class(
                                    config.feedback).records_student_step)
    trained = {"mpl": [(teacher_seed, "teacher"), (student_seed, "student")],
               "uda": [(teacher_seed, "uda")], "supervised": [(student_seed, "supervised")]}
    networks = [network(seed=seed, name=name) for seed, name in trained[method]]
    average = (network(seed=student_seed, name=f"{networks[-1].name}_ema")
               if config.ema_decay else None)
    model = assemble(config, method, networks, average, input_shape)
    if config.teacher_init and config.mode == "train" and method == config.method:
        teacher_init.load(model, config, input_shape, num_classes)
    return model


def assemble(config, method, networks, average, input_shape):
    """The compiled, built Keras model of `method` around its `networks` (teacher and student
    for MPL, else the one network), serving `average` as the EMA when given."""
    if method == "mpl":
        model = MetaPseudoLabels(*networks, config)
        optimizers = (make_optimizer(config, "teacher"), make_optimizer(config, "student"))
    else:
        model = {"uda": UDA, "supervised": Supervised}[method](*networks, config)
        optimizers = (make_optimizer(config, "teacher"),)
    if average is not None:
        model.attach_ema(average, config.ema_decay, config.ema_start_step)
    model.compile(*optimizers)  # our loop drives the steps; Keras compile options do not apply
    model.build_all(input_shape)
    return model
