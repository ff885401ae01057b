"""The one exception type for mistakes a user can make (bad path, bad option, wrong file)."""


class FaceganError(Exception):
    """A user-caused error: the CLI prints its message on one line and exits non-zero."""
