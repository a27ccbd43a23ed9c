"""Error types. Every user-facing error names where the problem is (file, key/field, line, value)."""

from __future__ import annotations


class RegimecastError(Exception):
    """Base class: the CLI prints the message and exits non-zero."""


class ConfigError(RegimecastError):
    """A model or prior file is invalid.

    The message names the file, the dotted key and the offending value.
    """

    def __init__(self, file: object, key: str, value: object, problem: str):
        self.file, self.key, self.value, self.problem = str(file), key, value, problem
        super().__init__(f"{file}: key '{key}' = {value!r}: {problem}")


class DataError(RegimecastError):
    """A data file or series is invalid.

    The message names the file, the field (series id), the line number (1-based, header is
    line 1, None when the problem is not tied to a line) and the offending value.
    """

    def __init__(self, file: object, field: str, line: int | None, value: object, problem: str):
        self.file, self.field, self.line, self.value, self.problem = str(file), field, line, value, problem
        where = f"{file}" + (f", line {line}" if line is not None else "")
        super().__init__(f"{where}: field '{field}' value {value!r}: {problem}")


class FetchError(RegimecastError):
    """A download failed; the cache was left as it was."""


class RunError(RegimecastError):
    """A run directory is missing, incomplete or does not match its manifest."""
