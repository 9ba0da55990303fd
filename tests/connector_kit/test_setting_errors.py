"""A wrong setting ends each plugin with one line that names it (issue 17 item 8): no
traceback unless the log level is debug."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

BIN = Path(sys.executable).parent
REMOTE_HTTP = "http://crm.example.com"  # plain http to a remote host: refused before any call
CONFIGS = {
    "tap-okki": {"client_id": "id", "client_secret": "secret", "base_url": REMOTE_HTTP},
    "target-twenty": {"api_key": "key", "base_url": REMOTE_HTTP},
    "target-jiandaoyun": {
        "api_key": "key",
        "base_url": REMOTE_HTTP,
        "forms": {"customers": {"app_id": "a", "entry_id": "e"}},
    },
}


def run(plugin: str, tmp_path: Path, **env: str) -> subprocess.CompletedProcess:
    config = tmp_path / f"{plugin}.json"
    config.write_text(json.dumps(CONFIGS[plugin]))
    return subprocess.run(
        [str(BIN / plugin), "--config", str(config)],
        input="",
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
        env={**os.environ, **env},
    )


@pytest.mark.parametrize("plugin", CONFIGS)
def test_a_wrong_setting_is_one_error_line_naming_it_with_the_traceback_at_debug_level(
    plugin: str, tmp_path: Path
) -> None:
    plain = run(plugin, tmp_path)
    debug = run(plugin, tmp_path, **{f"{plugin.upper().replace('-', '_')}_LOGLEVEL": "debug"})

    assert plain.returncode != 0
    errors = [line for line in plain.stderr.splitlines() if "ERROR" in line or "error" in line]
    assert len(errors) == 1, plain.stderr
    assert "'base_url'" in errors[0] and "plain http://" in errors[0]
    assert "Traceback" not in plain.stderr
    assert debug.returncode != 0 and "Traceback" in debug.stderr
