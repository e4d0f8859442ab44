"""One error tree for the whole project; ``tinyprune.cli`` turns it into a message and exit code.

Library code raises these and never prints or exits. Every message names what was wrong
(file, field, value) and, through ``hint``, what the user can do about it.
"""

from __future__ import annotations


class TinypruneError(Exception):
    """Base class. ``exit_code`` follows the CLI contract: 2 bad input, 1 a check failed."""

    exit_code = 2

    def __init__(self, message: str, hint: str | None = None):
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return self.message


class BadInput(TinypruneError):
    """The user gave something we cannot use: a path, a size, a board, a model, a dataset."""

    exit_code = 2


class BoardError(BadInput):
    """A board name that does not exist or a board file that does not validate."""


class ToolMissing(BadInput):
    """An external program (cross compiler, QEMU, Renode) is not installed."""


class BudgetError(BadInput):
    """The budget cannot be met by any pruning of this architecture."""


class CheckFailed(TinypruneError):
    """The work ran but a check failed: a mismatch, a missed budget, a failed build."""

    exit_code = 1


class FirmwareTooBig(CheckFailed):
    """The linker found the image larger than the board's flash or RAM budget."""

    def __init__(self, message: str, region: str, overflow_bytes: int, hint: str | None = None):
        super().__init__(message, hint)
        self.region = region
        self.overflow_bytes = overflow_bytes


class EmulatorError(CheckFailed):
    """The emulator ran but the firmware hung, faulted or reported an error."""
