"""What can go wrong when talking to OKKI, as exceptions that say which call and why.

Messages carry the endpoint and OKKI's own code and message, never a response body, a
credential or a token.
"""

from __future__ import annotations

from singer_sdk.exceptions import FatalAPIError


class OkkiApiError(FatalAPIError):
    """OKKI answered with an error that retrying cannot fix; the run stops."""

    def __init__(self, endpoint: str, code: object, message: str, hint: str = "") -> None:
        self.endpoint, self.code, self.message = endpoint, code, message
        label = code if isinstance(code, str) else f"code {code}"  # "HTTP 401" or OKKI's code
        text = f"OKKI {endpoint} answered {label}: {message or '(no message)'}"
        super().__init__(f"{text}. {hint}" if hint else text)


class OkkiAuthError(OkkiApiError):
    """OKKI refused the credentials or the scope; the message names the setting to fix."""


class CompanyNotFound(Exception):
    """`/v1/company/info` answered code 404: the company was deleted or never existed."""

    def __init__(self, company_id: object, message: str) -> None:
        self.company_id = company_id
        super().__init__(f"company {company_id}: {message}")


class OkkiKeyError(FatalAPIError):
    """A record whose key is no id: it cannot be identified, so the run stops.

    Any other value that cannot be converted is kept under `_okki_unconverted` instead.
    """

    def __init__(self, endpoint: str, company_id: object, problem: str) -> None:
        self.endpoint, self.company_id = endpoint, company_id
        super().__init__(
            f"OKKI {endpoint} sent a record of company {company_id} whose key cannot be read "
            f"({problem}); without it tap-okki cannot identify the record, so the run stops. "
            "Please report it to OKKI support with the company id."
        )
