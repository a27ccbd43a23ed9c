"""Error types. Every user-facing error names where the problem is (file, key/field, line, value)."""

from __future__ import annotations


MAX_SHOWN = 200  # characters of an offending value that a message shows


def shown(value: object) -> str:
    """``repr(value)``, cut to about ``MAX_SHOWN`` characters (a 300 MB field is not printed)."""
    if isinstance(value, (str, bytes)) and len(value) > MAX_SHOWN:
        return f"{value[:MAX_SHOWN]!r}... ({len(value):,} {'characters' if isinstance(value, str) else 'bytes'})"
    text = repr(value)
    return text if len(text) <= MAX_SHOWN + 20 else f"{text[:MAX_SHOWN]}... ({len(text):,} characters)"


class RegimecastError(Exception):
    """Base class: the CLI prints the message and exits non-zero."""


class ConfigError(RegimecastError):
    """A model or prior file is invalid.

    The message names the file, the dotted key and the offending value.
    """

    def __init__(self, file: object, key: str, value: object, problem: str):
        self.file, self.key, self.value, self.problem = str(file), key, value, problem
        super().__init__(f"{file}: key '{key}' = {shown(value)}: {problem}")


class DataError(RegimecastError):
    """A data file or series is invalid.

    The message names the file, the field (series id), the line number (1-based, header is
    line 1, None when the problem is not tied to a line) and the offending value.
    """

    def __init__(self, file: object, field: str, line: int | None, value: object, problem: str):
        self.file, self.field, self.line, self.value, self.problem = str(file), field, line, value, problem
        where = f"{file}" + (f", line {line}" if line is not None else "")
        super().__init__(f"{where}: field '{field}' value {shown(value)}: {problem}")


class FetchError(RegimecastError):
    """A download failed; the cache was left as it was."""


class RunError(RegimecastError):
    """A run directory is missing, incomplete or does not match its manifest."""


class OutputError(RegimecastError):
    """An output directory (a report) could not be written; the previous one is unchanged."""


class ResourceError(RegimecastError):
    """A job would need more memory than the machine has; the message gives the amount."""


class Interrupted(RegimecastError):
    """A command was interrupted (Ctrl-C); the message says what it left. Exit code 130."""

    exit_code = 130
