"""The container image is built in the background from the end of collection when a test
of test_image.py was selected (image_build.py), and removed at the session's end."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from image_build import BUILD


@pytest.hookimpl(trylast=True)  # after -k, -m and --deselect have left out what they do
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if config.option.collectonly or shutil.which("podman") is None:
        return
    if any(Path(item.path).name == "test_image.py" for item in items):
        BUILD.start()


def pytest_sessionfinish(session: pytest.Session) -> None:
    BUILD.stop()
