"""Errors of bad user input that the command line reports as one line on stderr with exit code 2.

On the ground floor so that every command module can raise them without importing the command line itself.
"""


def first_line(exc: BaseException) -> str:
    """The first line of an exception's message (its type's name if it has none): for one-line reports."""
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


class UsageError(ValueError):
    """Bad input from the user: reported as one line, exit code 2."""
