"""The one error type for a user's mistake: bad data, bad params, missing weights.

The CLI prints it as a single ``error: ...`` line with exit status 2. Anything else is a bug
and keeps its traceback.
"""


class KDError(Exception):
    """A problem with the user's input, worded to name the file, row or key at fault."""
