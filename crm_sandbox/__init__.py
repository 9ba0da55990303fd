"""Local emulators of the OKKI, Twenty and Jiandaoyun APIs (see docs/api/*.md)."""

import importlib.util

# The emulators' web server is an extra (`pip install 'okki-crm-sync[sandbox]'`): the plugins'
# environments do without it. Say so, rather than fail on an import deep inside.
for _server_package in ("starlette", "uvicorn"):
    if importlib.util.find_spec(_server_package) is None:
        raise ImportError(
            f"crm-sandbox needs {_server_package}: pip install 'okki-crm-sync[sandbox]' "
            "(make install does)"
        )
