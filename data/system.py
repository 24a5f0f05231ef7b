"""Debian packages the data renderers and the benchmarks read: checked, never installed.

Allowed data (soundfonts, sound collections, synthesisers, codecs) comes from Debian packages.
Nothing here installs anything: ``make data-packages`` installs every package that
``data/`` and ``benchmarks/`` read, once, as root.
"""

from __future__ import annotations

from pathlib import Path

#: the Makefile target that installs every Debian package data/ and benchmarks/ read
INSTALL_TARGET = "make data-packages"


class MissingDebianPackage(RuntimeError):
    """A file a Debian package provides is not there."""


def require_debian_package(package: str, path: Path | str) -> None:
    """Raise :class:`MissingDebianPackage` (one line: the path, the package, the make target)
    when ``path`` is missing; return quietly when it is there. Never installs anything."""
    if Path(path).exists():
        return
    raise MissingDebianPackage(f"{path} is missing: install the Debian package {package} "
                               f"(`{INSTALL_TARGET}` installs every package data/ and benchmarks/ read)")
