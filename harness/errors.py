"""Errors that end a command with a one-line message instead of a traceback."""


class UserError(Exception):
    """Bad input from the user (odd hex, unreadable file, unknown name): exit status 2."""
