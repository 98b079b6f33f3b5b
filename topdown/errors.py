"""Error types shown to users.

Every problem a user can fix (a wrong path, a missing key, a malformed spec) raises a
:class:`TopdownError` whose message names the problem *and* the fix. The command line
prints it as one line on stderr and exits with code 2, without a traceback.
"""

from __future__ import annotations


class TopdownError(Exception):
    """A problem with the user's input or environment that the user can fix."""


class InputError(TopdownError, ValueError):
    """Bad input data or arguments (wrong value, missing field, misaligned data)."""


class SpecError(InputError):
    """An invalid tissue specification; the message names the field and allowed values."""


class DataFileError(TopdownError, FileNotFoundError):
    """A file or folder that is missing, unreadable or not in the expected format."""


class OutputError(TopdownError, OSError):
    """An output location that cannot be written (exists, read-only, disk full)."""


class OutputConflictError(OutputError, InputError):
    """An output path that would destroy data: an input, another output of the same
    command, a file it does not own, or a name that does not fit what is written.

    Both an :class:`OutputError` and an :class:`InputError` (the arguments are wrong).
    """
