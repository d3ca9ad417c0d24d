"""Builds of this package made by the tests (the wheel of tests/install, the container
image's wheelhouse): compiled as a user's are, but with the optimiser off."""

from __future__ import annotations

import sysconfig


def quick_cflags() -> str:
    """This Python's own compiler flags with -O0 in place of -O3 and no debug info: what
    the tests check is the packaging (the extensions are built, carried, installed and
    imported), not the optimiser, and -O3 -g costs about 40 s of CPU here where -O0
    costs 6. (CFLAGS replaces this Python's flags in setuptools' compiler command.)"""
    flags = [f for f in (sysconfig.get_config_var("CFLAGS") or "").split()
             if not f.startswith(("-O", "-g"))]
    return " ".join([*flags, "-O0"])
