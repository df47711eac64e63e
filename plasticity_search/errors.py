"""Errors of bad user input that the command line reports as one line on stderr with exit code 2.

On the ground floor so that every command module can raise them without importing the command line itself.
"""


def has_control_characters(text: str) -> bool:
    """Whether ``text`` holds a control character other than tab and newline (an escape sequence that would clear
    or recolour a terminal, a carriage return that overwrites a line): configs and run directories refuse them."""
    import unicodedata

    return any(unicodedata.category(c) == "Cc" and c not in "\t\n" for c in text)


def first_line(exc: BaseException) -> str:
    """The first line of an exception's message (its type's name if it has none): for one-line reports."""
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


class UsageError(ValueError):
    """Bad input from the user: reported as one line, exit code 2."""
