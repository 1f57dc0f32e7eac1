"""Kernel names, checked by us before Jupyter sees them: what Jupyter accepts, but for `.`,
`..` and other names that do not begin with a letter or a digit."""

from __future__ import annotations

import pytest

from ana_headless.errors import UsageError
from ana_headless.kernel import NAME_RULE, check_name


@pytest.mark.parametrize("name", ["ana-headless", "Mesa-Kernel", "python3.11", "a_b", "0", "x..y"])
def test_kernel_names(name: str) -> None:
    check_name(name, "--name")


@pytest.mark.parametrize(
    "name", ["", ".", "..", "a/b", "../x", ".hidden", "-x", "_x", "a b", "x\n", "\u212a", "é"]
)
def test_not_kernel_names(name: str) -> None:
    with pytest.raises(UsageError) as error:
        check_name(name, "--name")
    assert str(error.value) == f"--name {name!r}: not a kernel name ({NAME_RULE})"
    assert error.value.exit_status == 2
