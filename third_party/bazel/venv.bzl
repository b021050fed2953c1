"""The `@pypi` repository for WORKSPACE builds: the project's .venv as the Python toolchain, and
one empty `py_library` per requirements.txt pin for BUILD's `requirement("name")` (the venv has
the packages installed already; `make bazel_test` installs them)."""

def _normalize(name):
    return name.lower().replace("-", "_").replace(".", "_")

def _venv_repository_impl(rctx):
    workspace = rctx.path(rctx.attr.requirements).dirname
    interpreter = rctx.path("%s/%s" % (workspace, rctx.attr.interpreter))
    if not interpreter.exists:
        fail("%s does not exist: run `make bazel_test` (or create .venv and pip install -r " %
             interpreter + "requirements.txt) first")
    names = []
    for line in rctx.read(rctx.attr.requirements).splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            names.append(_normalize(line.split("==")[0].split("[")[0]))
    build = [
        'load("@bazel_tools//tools/python:toolchain.bzl", "py_runtime_pair")',
        'package(default_visibility = ["//visibility:public"])',
        'py_runtime(name = "python3", interpreter_path = "%s", python_version = "PY3")' %
        interpreter,
        'py_runtime_pair(name = "runtime_pair", py3_runtime = ":python3")',
        'toolchain(name = "python_toolchain", toolchain = ":runtime_pair", ' +
        'toolchain_type = "@bazel_tools//tools/python:toolchain_type")',
    ] + ['py_library(name = "%s")' % name for name in names]
    rctx.file("BUILD", "\n".join(build) + "\n")
    rctx.file("WORKSPACE", 'workspace(name = "%s")\n' % rctx.name)
    rctx.file("requirements.bzl", "\n".join([
        '"""requirement(name): the (empty) target standing for an installed pin."""',
        "def requirement(name):",
        '    return "@%s//:" + name.lower().replace("-", "_").replace(".", "_")' % rctx.name,
    ]) + "\n")

venv_repository = repository_rule(
    implementation = _venv_repository_impl,
    attrs = {
        "requirements": attr.label(mandatory = True, allow_single_file = True),
        "interpreter": attr.string(default = ".venv/bin/python"),
    },
    local = True,
)
