"""The Jiandaoyun (简道云) Open API v5 emulator (see sandbox.py)."""

from crm_sandbox.jiandaoyun.sandbox import JiandaoyunSandbox

__all__ = ["JiandaoyunSandbox"]
