"""Emulator of the OKKI (Xiaoman / 小满) CRM Open API, the source of tap-okki.

`sandbox` holds the HTTP surface and knobs, `store` the records in update-time order,
`generator` the seeded fake data, `records` the stored shapes and their JSON, `shapes` the
other shapes OKKI sends them in (knob `shape_variety`), `auth` the tokens.
"""

from crm_sandbox.okki.sandbox import OkkiSandbox

__all__ = ["OkkiSandbox"]
