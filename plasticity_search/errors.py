"""Errors of bad user input that the command line reports as one line on stderr with exit code 2.

On the ground floor so that every command module can raise them without importing the command line itself.
"""


class UsageError(ValueError):
    """Bad input from the user: reported as one line, exit code 2."""
