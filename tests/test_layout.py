"""The folder tree is the architecture: dependencies point down (commands -> run -> method, data,
models, serving -> durable -> config, errors), no import cycle between modules or between the
packages of one layer, counting imports inside functions (a lazy import hides a cycle, it does
not remove it), and few modules directly under mpl_tf/."""

import ast
import pathlib

import pytest

PACKAGE = pathlib.Path(__file__).resolve().parent.parent / "mpl_tf"
# Layer of each top-level part of the package; higher may import lower, never the reverse.
LAYERS = {"config": 0, "errors": 0, "durable": 1, "method": 2, "data": 2, "models": 2,
          "serving": 2, "run": 3}
COMMAND_LAYER = 4  # the commands and what they share (main, cli, library, recipes, ...)
# Commands that live beside the code they drive rather than at the top.
COMMANDS_ELSEWHERE = {"mpl_tf.data.folder.to_tfds"}
MAX_TOP_LEVEL_MODULES = 14


def module_name(path):
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports(path, known):
    """The package's modules `path` imports anywhere in it (functions included); `from a import
    b` counts `a.b` when that is a module, else `a`."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and not node.level and node.module:
            names = [f"{node.module}.{a.name}" if f"{node.module}.{a.name}" in known
                     else node.module for a in node.names]
        else:
            continue
        found.update(name for name in names if name in known and name != "mpl_tf")
    return found


def graph():
    paths = {module_name(p): p for p in PACKAGE.rglob("*.py")}
    return {name: imports(path, paths) - {name} for name, path in paths.items()}


def layer(module):
    if module in COMMANDS_ELSEWHERE:
        return COMMAND_LAYER
    return LAYERS.get(module.split(".")[1], COMMAND_LAYER)


def strongly_connected(edges):
    """Groups of more than one node that reach each other (Tarjan)."""
    index, low, stack, on_stack, groups = {}, {}, [], set(), []

    def visit(node):
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for other in edges.get(node, ()):
            if other not in index:
                visit(other)
                low[node] = min(low[node], low[other])
            elif other in on_stack:
                low[node] = min(low[node], index[other])
        if low[node] == index[node]:
            group = set()
            while not group or node not in group:
                group.add(stack.pop())
            on_stack.difference_update(group)
            if len(group) > 1:
                groups.append(sorted(group))

    for node in sorted(edges):
        if node not in index:
            visit(node)
    return groups


def test_no_module_imports_a_layer_above_it():
    upward = sorted(f"{a} -> {b}" for a, targets in graph().items() for b in targets
                    if a != "mpl_tf" and layer(b) > layer(a))
    assert upward == []


def test_no_import_cycle_between_modules():
    edges = {a: targets for a, targets in graph().items() if a != "mpl_tf"}
    assert strongly_connected(edges) == []


def test_no_cycle_between_the_packages_of_a_layer():
    parts = {}
    for a, targets in graph().items():
        if a == "mpl_tf" or layer(a) == COMMAND_LAYER:
            continue
        parts.setdefault(a.split(".")[1], set()).update(b.split(".")[1] for b in targets)
    assert strongly_connected({p: t - {p} for p, t in parts.items()}) == []


def test_few_modules_directly_under_the_package():
    assert len(list(PACKAGE.glob("*.py"))) <= MAX_TOP_LEVEL_MODULES


@pytest.mark.parametrize("source,found", [
    ({"a": {"b"}, "b": {"a"}}, [["a", "b"]]),
    ({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}, [["a", "b", "c"]]),
    ({"a": {"b"}, "b": set()}, []),
])
def test_the_cycle_finder_finds_cycles(source, found):
    assert strongly_connected(source) == found


def test_a_lazy_import_counts(tmp_path):
    module = tmp_path / "m.py"
    module.write_text("def f():\n    from mpl_tf.run import orchestrate\n")
    assert imports(module, {"mpl_tf.run.orchestrate", "mpl_tf.run"}) == {"mpl_tf.run.orchestrate"}
