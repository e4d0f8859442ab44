"""Fail early, with the fix, when `make setup` is given a Python older than 3.11."""
import sys

if sys.version_info < (3, 11):
    sys.exit(
        f"setup: tinyprune needs Python 3.11 or newer, but {sys.executable} is "
        f"{sys.version.split()[0]}; run `make setup PYTHON=/path/to/python3.11`"
    )
