"""User-facing errors: the CLI prints these as one line (no traceback) and exits non-zero."""


class UserError(Exception):
    """Bad input from the user (file, value, option); message is shown as is."""


class StructureFileError(UserError):
    """A structure file cannot be read or holds something we cannot use."""

    def __init__(self, path, problem):
        self.path = str(path)
        self.problem = problem
        super().__init__(f"{self.path}: {problem}")
