"""The one thing pyproject.toml cannot say: the dependencies are the runtime section of
requirements.txt (every line before `# Tests`), so the pins the tests run with are the pins a
pip install gets, from one file; the test section becomes the `test` extra."""

import pathlib

import setuptools

TESTS_HEADING = "# Tests"


def _sections():
    """(runtime, test) requirement lines of requirements.txt, comments and blanks dropped."""
    lines = pathlib.Path(__file__).with_name("requirements.txt").read_text().splitlines()
    split = next(i for i, line in enumerate(lines) if line.strip().startswith(TESTS_HEADING))

    def requirements(part):
        return [line.strip() for line in part if line.strip() and not line.startswith("#")]

    return requirements(lines[:split]), requirements(lines[split + 1:])


RUNTIME, TEST = _sections()
setuptools.setup(install_requires=RUNTIME, extras_require={"test": TEST})
