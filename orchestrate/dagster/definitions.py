"""This Meltano project's jobs and schedules as Dagster jobs and schedules (dagster-meltano).

Each Meltano job (`okki-to-twenty`, `okki-to-jiandaoyun`) becomes a Dagster job that runs
`meltano run <its tasks>` in the project; each Meltano schedule becomes a Dagster schedule.
What a run needs besides the project comes from the environment the Dagster process gets:

    MELTANO_PROJECT_ROOT   the project (default: this repository)
    MELTANO_ENVIRONMENT    prod (the project has no default environment)
    MELTANO_DATABASE_URI   Meltano's system database, where the state (bookmarks) lives:
                           postgresql+psycopg://user:password@host:5432/meltano, shared by
                           every machine that runs the jobs
    PATH                   with the `meltano` of .venv-meltano first
    and the secrets (.env in the project, or the scheduler's own secret store).

    make dagster                                   # .venv-dagster, from constraints-dagster.txt
    meltano upgrade database                       # once: the shared database's tables
    .venv-dagster/bin/dagster dev -f orchestrate/dagster/definitions.py   # UI and scheduler
    .venv-dagster/bin/dagster job execute -f orchestrate/dagster/definitions.py -j okki_to_twenty

target-twenty keeps nothing a second machine needs: which OKKI record owns a Twenty row is in
the row (`okkiId`), and its id map (`id_map_path`) is a cache a new machine starts without.
target-jiandaoyun finds rows by their key widget. So any machine with the project, the
plugins and the shared database can run the next sync (tests/e2e/test_scale_out.py).
"""

from __future__ import annotations

import os
from pathlib import Path

from dagster import Definitions
from dagster_meltano import load_jobs_from_meltano_project

PROJECT = os.environ.get("MELTANO_PROJECT_ROOT") or str(Path(__file__).resolve().parents[2])

jobs_and_schedules = load_jobs_from_meltano_project(PROJECT)

defs = Definitions(
    jobs=[j for j in jobs_and_schedules if not hasattr(j, "cron_schedule")],
    schedules=[s for s in jobs_and_schedules if hasattr(s, "cron_schedule")],
)
