"""The one user-facing error type and the wrapper every stage script runs under."""
from __future__ import annotations

import sys
from typing import Callable


class DlgmmError(Exception):
    """A problem with the user's input (a file, a parameter, a checkpoint).

    The message is complete on its own: it names the file or the parameter
    and says what is wrong and what to change. Stage scripts print it as one
    line and exit with status 2, never with a traceback.
    """


def run_stage(main: Callable[[], None]) -> None:
    """Run a stage's ``main``; turn a :class:`DlgmmError` into one message and exit 2."""
    try:
        main()
    except DlgmmError as err:
        print(f"error: {err}", file=sys.stderr)
        sys.exit(2)
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        sys.exit(130)
