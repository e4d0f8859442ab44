"""Where the project's data lives: board files and firmware sources sit beside the package.

`make setup` installs the package in editable mode, so these resolve inside the checkout.
"""

from __future__ import annotations

from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent
PROJECT_DIR = PACKAGE_DIR.parent
BOARDS_DIR = PROJECT_DIR / "boards"
FIRMWARE_DIR = PROJECT_DIR / "firmware"
DATA_DIR = PACKAGE_DIR / "data"
