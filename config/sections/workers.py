"""`leanstack:app.jobs` and `leanstack:app.processes`: scheduled jobs and long-running workers."""

from __future__ import annotations

from dataclasses import dataclass

from leanstack.config.fields import Validated, calendar_problem, setting

JOB_NAME_RE = r"[a-z0-9-]{1,40}"
ARGV_ITEM_RE = r"[^\x00]+"


@dataclass(frozen=True)
class JobArgs(Validated):
    """A scheduled job: a command run in a container of the serving release, on one host."""

    schedule: str = setting(
        doc="When it runs: a systemd OnCalendar expression, in UTC unless it names a timezone. "
        "Example: '*-*-* 03:15:00' (daily at 03:15), 'Mon..Fri 09:00', '*:0/15' (every 15 minutes).",
        check=calendar_problem,
    )
    command: tuple[str, ...] = setting(
        doc="The command run in the app's image with its config, secrets and database credentials, as Docker's "
        'CMD: a list is exec form (the argv, e.g. ["bin/report", "--daily"]), a string is shell form, run '
        "by /bin/sh -c (e.g. 'bin/report --daily && bin/cleanup').",
        pattern=ARGV_ITEM_RE,
        allowed="a list of non-empty arguments, or a string (run by /bin/sh -c)",
        unique=False,
        command=True,
    )

    def section_problem(self) -> tuple[str, str] | None:
        if not self.command:
            return ("command", 'missing; expected a list of non-empty arguments such as ["bin/report"]')
        return None


PROCESS_NAME_RE = r"[a-z0-9-]{1,30}"


@dataclass(frozen=True)
class ProcessArgs(Validated):
    """A long-running process beside the web container (a worker), like a Procfile line."""

    command: tuple[str, ...] = setting(
        doc="The command (argv list) run in the app's image with its config, secrets and database credentials; "
        'no port. Example: ["bin/worker", "--queue", "default"].',
        pattern=ARGV_ITEM_RE,
        allowed="a list of non-empty arguments",
        unique=False,
    )
    count: int = setting(1, doc="How many copies run on each host that runs processes (the jobs host when "
                         "scaled out).", min=1, max=10)  # fmt: skip
    stop_timeout_seconds: int = setting(
        30,
        doc="On a deploy or stop, the process gets SIGTERM and this many seconds to finish its current job "
        "before it is killed.",
        min=1,
        max=3600,
    )

    def section_problem(self) -> tuple[str, str] | None:
        if not self.command:
            return ("command", 'missing; expected a list of non-empty arguments such as ["bin/worker"]')
        return None
