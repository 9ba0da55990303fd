"""Keep secrets out of every log line, error message, report and dead-letter entry."""

from __future__ import annotations

import logging

MASK = "********"


def redact(text: str, secrets: list[str]) -> str:
    for secret in secrets:
        if secret:
            text = text.replace(secret, MASK)
    return text


class RedactingFilter(logging.Filter):
    """A logging filter that masks the given secrets in every record, whatever its level."""

    def __init__(self, secrets: list[str]) -> None:
        super().__init__()
        self.secrets = [s for s in secrets if s]

    def filter(self, record: logging.LogRecord) -> bool:
        if self.secrets:
            record.msg = redact(record.getMessage(), self.secrets)
            record.args = ()
            if record.exc_text:
                record.exc_text = redact(record.exc_text, self.secrets)
        return True


def install_redaction(secrets: list[str]) -> None:
    """Mask `secrets` in everything logged through the root logger's handlers."""
    flt = RedactingFilter(secrets)
    for handler in logging.getLogger().handlers:
        handler.addFilter(flt)
    logging.getLogger().addFilter(flt)
