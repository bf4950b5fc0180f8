"""Errors that end a command with a one-line message instead of a traceback."""


class UserError(Exception):
    """Bad input from the user (odd hex, unreadable file, unknown name): exit status 2."""

    exit_status = 2


class MalformedInput(UserError):
    """The input was read but is not a well-formed packet (e.g. truncated): exit status 1."""

    exit_status = 1
