"""The same supervised WRN-28-2 training step in PyTorch, eager and torch.compile'd, for the
efficiency a second framework reaches on this machine (issue #7 quotes about 0.8 for one).

    make torch_reference    # a venv of its own (.venv-torch): torch is not a dependency of ours
    .venv-torch/bin/python -m benchmarks.torch_reference [--repeats=5]

The network is ours (models/wide_resnet.py): 32-channel stem, pre-activation blocks, LeakyReLU
0.2, BN momentum 0.01 (decay 0.99) and eps 1e-3, 1x1 shortcuts of the shared pre-activation,
dropout 0.2; the step is label-smoothed (0.15) cross-entropy on 128 channels-last 32x32 images,
Nesterov SGD with weight decay, and an EMA of parameters and BN statistics. Each variant is also
timed with BN and LeakyReLU removed, as in benchmarks.efficiency_bound. FLOPs (convolutions and
the dense layer, forward and backward, 2 per multiply-add) are counted from the layers' shapes as
step_benchmark counts ours; the matmul (4096^2 float32) runs in every round. Writes OUT.json/.md.
"""

import json
import os
import platform
import statistics
import sys
import time

import torch
import torch.nn.functional as F
from absl import app, flags
from torch import nn

flags.DEFINE_integer("repeats", 5, "Timed rounds (medians are reported).")
flags.DEFINE_string("out", "benchmarks/results/torch_reference", "Output path, no extension.")

BATCH, CLASSES, WIDTH, MATMUL_SIZE = 128, 10, 2, 4096


def bn(channels, strip):
    return nn.Identity() if strip else nn.BatchNorm2d(channels, eps=1e-3, momentum=0.01)


def act(strip):
    return nn.Identity() if strip else nn.LeakyReLU(0.2)


class Block(nn.Module):
    """BN-act-conv-BN-act-conv; a changed shape takes a 1x1 conv of the pre-activation."""

    def __init__(self, cin, cout, stride, strip):
        super().__init__()
        self.pre = nn.Sequential(bn(cin, strip), act(strip))
        self.conv_1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.mid = nn.Sequential(bn(cout, strip), act(strip))
        self.conv_2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.shortcut = (nn.Conv2d(cin, cout, 1, stride, bias=False)
                         if stride != 1 or cin != cout else None)

    def forward(self, x):
        p = self.pre(x)
        shortcut = x if self.shortcut is None else self.shortcut(p)
        return self.conv_2(self.mid(self.conv_1(p))) + shortcut


def wide_resnet(strip):
    layers, cin = [nn.Conv2d(3, 16 * WIDTH, 3, 1, 1, bias=False)], 16 * WIDTH
    for filters, stride in ((16 * WIDTH, 1), (32 * WIDTH, 2), (64 * WIDTH, 2)):
        for i in range(4):
            layers.append(Block(cin, filters, stride if i == 0 else 1, strip))
            cin = filters
    layers += [bn(cin, strip), act(strip), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
               nn.Dropout(0.2), nn.Linear(cin, CLASSES)]
    return nn.Sequential(*layers).to(memory_format=torch.channels_last)


def step_flops(network):
    """Forward + backward FLOPs of the step; the first layer needs no input gradient."""
    per_layer = []

    def count(module, inputs, output):
        if isinstance(module, nn.Conv2d):
            kh, kw = module.kernel_size
            per_layer.append(2 * output[0].numel() * kh * kw * module.in_channels)
        else:
            per_layer.append(2 * module.in_features * module.out_features)

    hooks = [m.register_forward_hook(count) for m in network.modules()
             if isinstance(m, (nn.Conv2d, nn.Linear))]
    with torch.no_grad():
        network.eval()(torch.zeros(1, 3, 32, 32))
    network.train()
    for hook in hooks:
        hook.remove()
    forward = sum(per_layer)
    return BATCH * (3 * forward - per_layer[0])


def make_step(network, compiled):
    images = torch.rand(BATCH, 3, 32, 32).mul(255).contiguous(memory_format=torch.channels_last)
    labels = torch.randint(0, CLASSES, (BATCH,))
    average = [t.detach().clone() for t in (*network.parameters(), *network.buffers())
               if t.is_floating_point()]
    optimizer = torch.optim.SGD(network.parameters(), lr=1e-3, momentum=0.9, nesterov=True,
                                weight_decay=5e-4)
    forward = torch.compile(network) if compiled else network

    def step():
        optimizer.zero_grad(set_to_none=True)
        loss = F.cross_entropy(forward(images), labels, label_smoothing=0.15)
        loss.backward()
        optimizer.step()
        with torch.no_grad():
            current = [t for t in (*network.parameters(), *network.buffers())
                       if t.is_floating_point()]
            torch._foreach_lerp_(average, current, 1 - 0.995)
        return loss.item()

    return step


def matmul_step():
    a, b = torch.randn(MATMUL_SIZE, MATMUL_SIZE), torch.randn(MATMUL_SIZE, MATMUL_SIZE)
    return lambda: torch.mm(a, b).sum().item()


def main(argv):
    del argv
    cfg = flags.FLAGS
    torch.manual_seed(0)
    started = time.time()
    flops = step_flops(wide_resnet(strip=False))
    calls = {f"{mode}{'/convolutions_only' if strip else ''}":
             make_step(wide_resnet(strip), compiled=mode == "compiled")
             for mode in ("eager", "compiled") for strip in (False, True)}
    calls["matmul"] = matmul_step()
    times = {name: [] for name in calls}
    for round_index in range(2 + cfg.repeats):  # 2 untimed rounds: compiling, warm-up
        for name, call in calls.items():
            start = time.perf_counter()
            call()
            if round_index >= 2:
                times[name].append(time.perf_counter() - start)
    median = {name: statistics.median(seconds) for name, seconds in times.items()}
    matmul = 2 * MATMUL_SIZE ** 3 / median.pop("matmul") / 1e9
    results = {
        "command": " ".join(["python -m benchmarks.torch_reference", *sys.argv[1:]]),
        "machine": {"cores": len(os.sched_getaffinity(0)), "python": platform.python_version(),
                    "torch": torch.__version__, "torch_threads": torch.get_num_threads()},
        "batch_size": BATCH, "repeats": cfg.repeats, "gflop_per_step": round(flops / 1e9, 2),
        "matmul_gflops_per_second": round(matmul, 1),
        "steps": {name: {"seconds": round(seconds, 4),
                         "all_seconds": [round(s, 3) for s in times[name]],
                         "efficiency": round(flops / seconds / 1e9 / matmul, 3)}
                  for name, seconds in median.items()},
        "wall_seconds": round(time.time() - started, 1)}
    os.makedirs(os.path.dirname(cfg.out) or ".", exist_ok=True)
    for extension, text in ((".json", json.dumps(results, indent=2)), (".md", markdown(results))):
        with open(cfg.out + extension, "w") as f:
            f.write(text)
    print(markdown(results))


def markdown(results):
    rows = [f"| {name} | {step['seconds']} | {step['efficiency']:.1%} |"
            for name, step in results["steps"].items()]
    return "\n".join([
        "# The supervised WRN-28-2 step in PyTorch (float32, CPU)", "",
        f"`{results['command']}`: torch {results['machine']['torch']}, "
        f"{results['machine']['torch_threads']} threads, {results['machine']['cores']} cores. "
        f"{results['batch_size']} images, {results['gflop_per_step']} GFLOP; median of "
        f"{results['repeats']} interleaved rounds; matmul (4096^2) "
        f"{results['matmul_gflops_per_second']} GFLOP/s in the same rounds.", "",
        "| step | s | of the matmul rate |", "|---|---|---|", *rows, ""])


if __name__ == "__main__":
    app.run(main)
