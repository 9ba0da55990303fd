"""`load_method` does what it says (issue 17 item 8): unset, a form with a key widget upserts;
`append-only` appends even there; `overwrite` is no value of the setting."""

from __future__ import annotations

from pathlib import Path

from crm_sandbox.control import SandboxClient
from tests.target_jiandaoyun import customers as c
from tests.target_jiandaoyun.conftest import config, new_form, rows_of, run_target
from tests.target_jiandaoyun.test_load import messages


def test_append_only_appends_rows_a_key_widget_would_have_updated(
    jdy: SandboxClient, tmp_path: Path
) -> None:
    records = c.customers(5, seed=7)
    upsert_form, append_form = new_form(jdy), new_form(jdy)
    for form, settings in ((upsert_form, {}), (append_form, {"load_method": "append-only"})):
        spec = c.form_spec(form, key_widget="客户编号")
        cfg = config(jdy, {c.STREAM: spec}, tmp_path, default_timezone=c.TIMEZONE, **settings)
        # The second run sends them in another order: an identical batch within the hour
        # would share its transaction_id, which Jiandaoyun never creates twice.
        for batch in (records, records[::-1]):
            run = run_target(cfg, messages(batch), tmp_path)
            assert run.returncode == 0, run.stderr[-3000:]

    assert len(rows_of(jdy, upsert_form)) == 5
    assert len(rows_of(jdy, append_form)) == 10


def test_overwrite_is_refused_in_one_line_naming_load_method(
    jdy: SandboxClient, tmp_path: Path
) -> None:
    form = new_form(jdy)
    cfg = config(jdy, {c.STREAM: c.form_spec(form)}, tmp_path, load_method="overwrite")

    run = run_target(cfg, messages(c.customers(2)), tmp_path)

    assert run.returncode != 0
    assert "load_method" in run.stderr and "overwrite" in run.stderr
    assert "Traceback" not in run.stderr
    assert rows_of(jdy, form) == []
