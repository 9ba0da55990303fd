"""target-jiandaoyun: Singer records → rows of Jiandaoyun (简道云) forms.

Settings are checked in two steps, both before anything is written: the values themselves when
the target starts, then, once per form, every widget the `forms` setting names (through
`widget/list`), before the first SCHEMA message is handled.

The same rooms as target-twenty's: settings (`settings.py`), the sink (`sinks.py`) and its writer
(`writer.py`), the form's metadata (`metadata.py`), mappings (`mapping.py`, read by `rows.py`)
and values (`values.py`); besides them the company directory (`directory.py`).
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Any

from connector_kit.connector_target import ConnectorTarget
from connector_kit.http import ApiError, ConfigError
from target_jiandaoyun.client import BATCH_ROWS, JiandaoyunApi, Rates
from target_jiandaoyun.directory import Directory
from target_jiandaoyun.mapping import MappingError, Policy, StreamMapping, resolve
from target_jiandaoyun.metadata import Form
from target_jiandaoyun.plan import PlanApi
from target_jiandaoyun.settings import SETTINGS, JiandaoyunSettings
from target_jiandaoyun.sinks import JiandaoyunSink
from target_jiandaoyun.values import DEPARTMENT_TYPES, MEMBER_TYPES
from target_jiandaoyun.writer import FormWriter


class TargetJiandaoyun(ConnectorTarget):
    """Writes any Singer stream into Jiandaoyun (简道云) forms: batched, checked, upserted."""

    name = "target-jiandaoyun"
    config_jsonschema = SETTINGS.to_dict()
    settings_class = JiandaoyunSettings
    settings: JiandaoyunSettings
    default_sink_class = JiandaoyunSink

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        settings = self.settings
        self.base_url = self.checked_base_url(settings.base_url)
        rates = Rates(
            batch=settings.batch_requests_per_second,
            single_write=settings.single_write_requests_per_second,
            read=settings.read_requests_per_second,
            company=settings.company_requests_per_second,
        )
        in_flight = settings.max_in_flight
        api_options: dict[str, Any] = {
            "concurrency": 3 * in_flight,
            "timeout": settings.request_timeout,
            "max_retry_after": self.max_retry_after,
            "budget_dir": settings.rate_budget_dir,
        }
        self.api = (
            PlanApi(self.base_url, settings.api_key, rates, changes=self.changes, **api_options)
            if self.dry_run
            else JiandaoyunApi(self.base_url, settings.api_key, rates, **api_options)
        )
        self.update_pool = ThreadPoolExecutor(in_flight, thread_name_prefix="update")
        self.report.ceiling_per_minute = min(rates.batch, rates.company) * BATCH_ROWS * 60
        self.report.meaningful_seconds = 1.0  # the API's limits are per second
        self.policy = Policy(
            member=settings.on_unknown_member,
            department=settings.on_unknown_department,
            option=settings.on_unknown_option,
            required=settings.check_required_widgets,
        )
        for kind in ("member", "department", "option"):
            if getattr(self.policy, kind) not in ("skip_field", "dead_letter"):
                raise ConfigError(
                    f"Setting 'on_unknown_{kind}' is 'skip_field' or 'dead_letter', got "
                    f"{getattr(self.policy, kind)!r}."
                )
        self.forms: dict[str, Form] | None = None
        self._directory: Directory | None = None  # read once, when a mapping first needs it
        self.writers: list[FormWriter] = []  # one per sink, for the end-of-run summary

    def check_destination(self) -> list[str]:
        """`meltano config test`: the key, and every form's widgets against its mapping."""
        self.prepare()
        assert self.forms is not None
        return [
            f"the API key reads form {form.ref}: stream '{stream}' mapping checked against its "
            f"{len(form.widgets)} widgets"
            for stream, form in sorted(self.forms.items())
        ]

    # Start-up check of every form ----------------------------------------------------------------
    def prepare(self) -> None:
        """Read each form's widgets and check every stream's mapping against them."""
        if self.forms is not None:
            return
        by_form: dict[tuple[str, str], Form] = {}
        forms: dict[str, Form] = {}
        errors: list[str] = []
        for stream, spec in self.settings.forms.items():
            ids = (spec["app_id"], spec["entry_id"])
            if ids not in by_form:
                try:
                    by_form[ids] = Form.parse(*ids, self.api.widgets(*ids))
                except ApiError as exc:
                    raise ConfigError(
                        f"Stream '{stream}': reading the widgets of form {ids[0]}/{ids[1]} "
                        f"failed: {exc}"
                    ) from None
            forms[stream] = by_form[ids]
            try:
                resolve(
                    stream,
                    spec,
                    forms[stream],
                    timezone=self.settings.default_timezone,
                    policy=self.policy,
                )
            except MappingError as exc:
                errors.append(str(exc))
        if errors:
            raise MappingError("The 'forms' setting does not fit the forms:\n" + "\n".join(errors))
        self.forms = forms
        self.logger.info("Checked %d form mapping(s) against their forms", len(forms))

    def _process_schema_message(self, message_dict: dict) -> None:
        self.prepare()  # before the first record: nothing is written with a wrong mapping
        super()._process_schema_message(message_dict)

    def stream_mapping(
        self, stream: str, schema: dict[str, Any], key_properties: list[str] | None
    ) -> StreamMapping:
        self.prepare()
        assert self.forms is not None
        if stream not in self.settings.forms:
            raise ConfigError(
                f"Stream '{stream}' has no entry in the 'forms' setting; add forms.{stream} "
                f"with its app_id and entry_id (configured: {sorted(self.settings.forms)})."
            )

        form = self.forms[stream]

        def mapping(directory: Directory | None) -> StreamMapping:
            return resolve(
                stream,
                self.settings.forms[stream],
                form,
                schema=schema,
                key_properties=list(key_properties or []),
                timezone=self.settings.default_timezone,
                defaults={
                    "data_creator": self.settings.data_creator,
                    "is_start_workflow": self.settings.is_start_workflow,
                },
                policy=self.policy,
                directory=directory,
            )

        resolved = mapping(None)
        if not resolved.widgets_of(MEMBER_TYPES | DEPARTMENT_TYPES):
            return resolved
        return mapping(self.directory())  # checked again: `match_by` may need the directory

    def directory(self) -> Directory:
        """The company directory, read on first use (sinks are made on the main thread)."""
        if self._directory is None:
            try:
                self._directory = Directory.parse(self.api.departments(), self.api.members())
            except ApiError as exc:
                raise ConfigError(
                    "Reading the company directory (corp/department/list, "
                    f"corp/department/user/list) failed: {exc}. Member and department widgets "
                    "are checked against it; the API key needs access to the contacts (通讯录)."
                ) from None
            self.logger.info(
                "Read the company directory: %d members, %d departments",
                len(self._directory.members["username"]),
                len(self._directory.departments["dept_no"]),
            )
        return self._directory

    def _finish(self, raise_failures: bool) -> None:
        first = not self._finished
        try:
            super()._finish(raise_failures)
        finally:
            if first:
                self._log_api_stats()

    def _log_api_stats(self) -> None:
        self.update_pool.shutdown(wait=True)
        for writer in self.writers:
            if writer.resends or writer.unchanged:
                self.logger.info(
                    "Stream '%s': %d batch re-send(s) after partial failures; %d row(s) already "
                    "up to date (not written again)",
                    writer.mapping.stream,
                    writer.resends,
                    writer.unchanged,
                )
        for endpoint, counts in self.api.stats().items():
            if counts["calls"]:
                self.logger.info(
                    "%s: %d calls, %d retried, %d rate-limited",
                    endpoint,
                    counts["calls"],
                    counts["retries"],
                    counts["throttled"],
                )
