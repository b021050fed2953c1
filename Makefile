# make demo: one Two Moons run (about 3 minutes on 2 CPU cores); make test: the test suite.
# Both create .venv and install requirements.txt on first use.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
INSTALLED := $(VENV)/.installed-requirements
SEEDS ?= 0 1 2 3 4
# Processes `make test` runs the test files in (pytest-xdist; 0: all in this one process). Each
# file stays in one process, so its module fixtures are built once.
TEST_WORKERS ?= 2

.PHONY: demo test bazel_test two_moons_table digits_table fashion_table fashion_mnist_data \
	precision_table speed torch_reference fused_bn_act folder_benchmark

$(INSTALLED): requirements.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements.txt
	touch $(INSTALLED)

demo: $(INSTALLED)
	$(PY) -m mpl_tf.main --flagfile=flags/two_moons.cfg --model_dir=runs/demo --overwrite
	@echo "Results: runs/demo/results.json  Figure: runs/demo/decision_boundary.png"

test: $(INSTALLED)
	$(PY) -m pytest -q tests -n $(TEST_WORKERS) --dist loadfile --durations=25

# The same test files under Bazel, offline: Debian's bazel-bootstrap (4.2.3; installed with
# apt-get, as root, when there is no bazel) reads WORKSPACE, whose Python toolchain is .venv's.
bazel_test: $(INSTALLED)
	command -v bazel >/dev/null || { apt-get update -q && apt-get install -y -q bazel-bootstrap; }
	bazel test //...

# The README's tables (each writes benchmarks/results/NAME.{md,json}).
two_moons_table: $(INSTALLED)
	$(PY) -m benchmarks.two_moons --seeds="$(SEEDS)" --out=benchmarks/results/two_moons

digits_table: $(INSTALLED)
	$(PY) -m benchmarks.digits_ablation --seeds="0 1 2" --out=benchmarks/results/digits_ablation

# The Fashion-MNIST ablation, then the feedback test (a teacher pretrained on swapped labels,
# left to the feedback alone). Resumable across checkouts: each JSON records every finished run
# with its config, written after every run (commit them to go on elsewhere).
fashion_table: $(INSTALLED) fashion_mnist_data
	$(PY) -m benchmarks.fashion_mnist_ablation --seeds="0 1 2" \
	    --out=benchmarks/results/fashion_mnist_ablation
	$(PY) -m benchmarks.fashion_mnist_feedback_test --seeds="0 1 2" \
	    --out=benchmarks/results/fashion_mnist_feedback_test

# Fashion-MNIST's four IDX files, offline: Debian's dataset-fashion-mnist (apt-get, as root, when
# they are not there yet), the same files TFDS downloads.
FASHION_MNIST_DIR := /usr/share/datasets/fashion-mnist
fashion_mnist_data:
	test -f $(FASHION_MNIST_DIR)/t10k-labels-idx1-ubyte.gz || \
	    { apt-get update -q && apt-get install -y -q dataset-fashion-mnist; }

precision_table: $(INSTALLED)
	$(PY) -m benchmarks.precision_benchmark --accuracy_seeds="0 1 2"
	$(PY) -m benchmarks.precision_benchmark --precisions=mixed_float16 --jit=off --rounds=3 \
	    --steps_per_round=3 --warmup_steps=2 --out=benchmarks/results/precision_benchmark_float16

# Folder datasets: peak RSS at 1k/10k/50k images and the 224 px stream against a ResNet-50 MPL
# step (generates its JPEG folders once under /tmp/mpl_tf_folder_benchmark).
folder_benchmark: $(INSTALLED)
	$(PY) -m benchmarks.folder_benchmark

# benchmarks/fused_bn_act.cc, an experiment of efficiency_bound's (not part of the library),
# built against the installed TensorFlow. -mno-avx512fp16: TF's Eigen headers do not compile
# with GCC 12's AVX512-FP16; -w: those headers warn by the hundred (the file itself builds clean
# with -Wall).
FUSED_OP := benchmarks/fused_bn_act.so
$(FUSED_OP): benchmarks/fused_bn_act.cc $(INSTALLED)
	$(CXX) -shared -fPIC -O3 -march=native -mno-avx512fp16 -mprefer-vector-width=512 \
	    -w \
	    $$($(PY) -c "import tensorflow as tf; print(' '.join(tf.sysconfig.get_compile_flags()))") \
	    $< -o $@ \
	    $$($(PY) -c "import tensorflow as tf; print(' '.join(tf.sysconfig.get_link_flags()))")

fused_bn_act: $(FUSED_OP)

speed: $(INSTALLED)
	-$(MAKE) fused_bn_act  # optional: without it efficiency_bound skips the fused-kernel rows
	$(PY) -m benchmarks.step_benchmark
	$(PY) -m benchmarks.op_profile
	$(PY) -m benchmarks.efficiency_bound --repeats=9
	$(PY) -m benchmarks.pipeline_benchmark

# The same step in PyTorch, for comparison, in a venv of its own (PyTorch is not a dependency).
# torch==2.13.0 is the CPU build this machine keeps on disk; elsewhere pass the CPU build, e.g.
# TORCH_INSTALL="torch --index-url https://download.pytorch.org/whl/cpu".
TORCH_VENV := .venv-torch
TORCH_INSTALL ?= torch==2.13.0
torch_reference:
	test -x $(TORCH_VENV)/bin/python || $(PYTHON) -m venv $(TORCH_VENV)
	$(TORCH_VENV)/bin/pip install --quiet --disable-pip-version-check $(TORCH_INSTALL) numpy absl-py
	$(TORCH_VENV)/bin/python -m benchmarks.torch_reference
