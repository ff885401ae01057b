"""The `facegan` command line: argument parsing only; each subcommand calls one library function."""
