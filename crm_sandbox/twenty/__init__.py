"""A local emulator of the Twenty CRM REST API (contract: shared/api/twenty.md).

    TwentySandbox(seed=0, knobs=None)    demo key "twenty-demo-key"

Routes: `POST /rest/batch/{plural}[?upsert=true]`, `GET|POST /rest/{plural}`,
`GET|PATCH|DELETE /rest/{plural}/{id}`, `GET /rest/metadata/objects[/{id}]`,
`GET|POST /rest/metadata/fields` (a POST creates a custom field; knob `metadata_writes` false
makes it 403, as for a key whose role may not change the data model). Control routes:
`POST /_sandbox/metadata/fields` and `POST /_sandbox/metadata/objects` add custom fields and
objects (see `workspace`).

Knobs in `Knobs.extra`: `api_keys` (accepted keys; every other key gets 401),
`limit_per_minute`, `limit_per_second`, `rate_limit_style`, `announce_limits` (see `limits`).
Rate-limit windows, `Retry-After` and `X-RateLimit-Reset` are divided by `Knobs.time_scale`;
when time is scaled, `Retry-After` and `retryAfterSeconds` are fractional seconds ("0.2").

Modules: `schema` (objects and fields), `values` (validation and normalisation), `workspace`
(custom metadata), `store` (records and write rules), `filters` (find-many filters), `limits`
(rate limits), `errors` (error bodies), `sandbox` (routes).
"""

from crm_sandbox.twenty.sandbox import DEMO_KEY, TwentySandbox

__all__ = ["DEMO_KEY", "TwentySandbox"]
