"""The base of every error a user can fix (bad input, stale plan, too little data): the command line
prints it as one line naming the file or setting at fault, never as a traceback."""


class UserError(ValueError):
    """Something in the user's files or settings stops a stage; the message says what and where."""
