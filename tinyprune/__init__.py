"""tinyprune: fit a PyTorch model onto a microcontroller, and prove it fits.

Stages (one module each) exchange plain dataclasses and files; ``tinyprune.cli`` is the only
place that prints to the user or chooses an exit code.
"""

__version__ = "0.1.0"
