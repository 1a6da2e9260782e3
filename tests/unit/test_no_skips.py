"""The suite's rule that a skip fails the run (tests/conftest.py's `pytest_sessionfinish`), run on
throwaway test files: a skip inside a test and a whole module skipped at import both fail it,
alone and under pytest-xdist, and a run without skips still passes."""

from __future__ import annotations

import inspect

import pytest

from tests import conftest

pytest_plugins = ["pytester"]

# The inner runs' conftest is the suite's own hook, its source taken from tests/conftest.py (not
# the whole file, whose imports would load the app into every inner run).
CONFTEST = "import pytest\n\n\n" + inspect.getsource(conftest.pytest_sessionfinish)

SKIP_IN_A_TEST = """
import pytest

def test_runs():
    assert True

def test_skips():
    pytest.skip("a missing tool")
"""

SKIP_A_MODULE = """
import pytest

pytest.importorskip("no_such_module_anywhere")

def test_never_collected():
    assert True
"""

NO_SKIP = """
def test_runs():
    assert True
"""


@pytest.fixture
def inner(pytester: pytest.Pytester) -> pytest.Pytester:
    """A pytester dir whose conftest is the suite's skip hook."""
    pytester.makeconftest(CONFTEST)
    return pytester


@pytest.mark.parametrize("source", [SKIP_IN_A_TEST, SKIP_A_MODULE], ids=["in-a-test", "module"])
def test_a_skip_fails_the_run(inner: pytest.Pytester, source: str) -> None:
    inner.makepyfile(test_inner=source)
    result = inner.runpytest_inprocess("-p", "no:cacheprovider")
    result.assert_outcomes(**({"passed": 1} if source is SKIP_IN_A_TEST else {}), skipped=1)
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.stdout.fnmatch_lines(["*1 skipped: the suite allows none*"])


def test_skips_on_xdist_workers_fail_the_run(inner: pytest.Pytester) -> None:
    """The workers' skips reach the controller, which fails the run (workers' own hooks pass)."""
    inner.makepyfile(test_in_a_test=SKIP_IN_A_TEST, test_module=SKIP_A_MODULE)
    result = inner.runpytest_subprocess("-p", "no:cacheprovider", "-n", "2")
    result.assert_outcomes(passed=1, skipped=2)
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.stdout.fnmatch_lines(["*2 skipped: the suite allows none*"])


def test_a_run_without_skips_passes(inner: pytest.Pytester) -> None:
    inner.makepyfile(test_inner=NO_SKIP)
    result = inner.runpytest_inprocess("-p", "no:cacheprovider")
    assert result.ret == pytest.ExitCode.OK
    assert "the suite allows none" not in result.stdout.str()
