"""The one error type for a user's mistake: bad data, bad params, missing weights; and the stop a
signal asks for.

The CLI prints a ``KDError`` as a single ``error: ...`` line with exit status 2, a ``Stopped`` as
one line with 128 + the signal's number. Anything else is a bug and keeps its traceback.
"""

import signal


class KDError(Exception):
    """A problem with the user's input, worded to name the file, row or key at fault."""


class Stopped(BaseException):
    """A stop signal (SIGTERM, SIGHUP, SIGINT) reached a command that runs a study, raised in its
    main thread wherever it waits (``kdcore.study.kernels.stopped_by_signals``)."""

    def __init__(self, signum: int):
        super().__init__(signal.Signals(signum).name)
        self.signum = signum
