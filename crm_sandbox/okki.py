"""Placeholder: being written."""

from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from crm_sandbox.runtime import Sandbox


class OkkiSandbox(Sandbox):
    name = "okki"

    def __init__(self, seed=0, knobs=None, **kwargs):
        super().__init__(seed, knobs)

    def api_routes(self):
        async def ping(request: Request):
            request.state.batch_size = 3
            return JSONResponse({"ok": True})

        return [Route("/ping", ping)]
