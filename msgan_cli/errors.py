"""Errors a user can cause (a bad option, missing data, incompatible choices, a corrupt checkpoint).

The CLI prints their message in one or two plain sentences, without a traceback, and exits with 2.
Anything else is a bug and keeps its traceback.
"""


class UserError(Exception):
    """Something the user can fix; the message says how."""
