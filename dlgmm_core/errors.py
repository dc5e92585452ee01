"""The one user-facing error type and the wrapper every stage script runs under."""
from __future__ import annotations

import errno
import sys
from typing import Callable


class DlgmmError(Exception):
    """A problem with the user's input (a file, a parameter, a checkpoint).

    The message is complete on its own: it names the file or the parameter
    and says what is wrong and what to change. Stage scripts print it as one
    line and exit with status 2, never with a traceback.
    """


#: Storage failures a stage reports in one line instead of a traceback: disk full, quota, read-only, permission.
_STORAGE_ERRNOS = {errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES, errno.EPERM}


def run_stage(main: Callable[[], None]) -> None:
    """Run a stage's ``main``; turn a :class:`DlgmmError` or a storage failure (disk full, read-only, permission)
    into one message and exit 2."""
    try:
        main()
    except DlgmmError as err:
        print(f"error: {err}", file=sys.stderr)
        sys.exit(2)
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        sys.exit(130)
    except OSError as err:
        if err.errno not in _STORAGE_ERRNOS:
            raise
        where = f"{err.filename}: " if err.filename else ""
        print(f"error: {where}{err.strerror or err}; free disk space or fix the permissions, then rerun the "
              f"stage (every output is written atomically, and training resumes from its last completed epoch)",
              file=sys.stderr)
        sys.exit(2)
