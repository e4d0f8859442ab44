"""One module per ``tinyprune`` subcommand; see ``tinyprune.cli``."""
