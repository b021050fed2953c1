"""The rules_python names BUILD loads, as Bazel 4's built-in rules (see third_party/bazel)."""

def py_binary(**kwargs):
    native.py_binary(**kwargs)

def py_library(**kwargs):
    native.py_library(**kwargs)

def py_test(**kwargs):
    native.py_test(**kwargs)
