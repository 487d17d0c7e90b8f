"""leanstack-restore --swap: maintenance page on, rename the databases (the app's aside,
the restored one in its place), restart the app, check its health path, page off. Scaled out
(behind the load balancer) the page must already be on every host (the laptop's
`python -m leanstack maintenance STACK on`): this host cannot reach the others."""

from __future__ import annotations

import contextlib
import secrets
import shlex
import subprocess
import time
from typing import (
    TYPE_CHECKING,
    List,
    Mapping,
    Optional,
)

if TYPE_CHECKING:
    pass

from .backup_settings import Connection, Settings
from .common import ConfigError, Failure, command_from, env_value, iso, one_line, stamp, utc_now
from .drill_app import read_app, wait_for_200
from .postgres import PsqlSession, quote_identifier, quote_literal, run_psql
from .restoring import RESTORE_MARK, say

# ---------------------------------------------------------------------------------------
# leanstack-restore

MAINTENANCE_COMMAND = "leanstack-maintenance"
APP_RESTART_COMMAND = "leanstack-app restart"
SWAP_WAIT_SECONDS = 30.0


def run_step(env: Mapping[str, str], name: str, default: str, extra: List[str], timeout: float) -> Optional[str]:
    """Run a host command (LEANSTACK_MAINTENANCE, LEANSTACK_APP_RESTART); None, or why it failed."""
    argv = command_from(env, name, shlex.split(default)) + extra
    try:
        done = subprocess.run(
            argv, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=timeout, check=False
        )
    except FileNotFoundError:
        return f"{argv[0]} is not installed"
    except subprocess.TimeoutExpired:
        return f"{' '.join(argv)} timed out after {timeout:.0f} s"
    if done.returncode == 0:
        return None
    said = [line for line in (done.stderr + "\n" + done.stdout).splitlines() if line.strip()]
    return one_line(said[-1]) if said else f"exit status {done.returncode}"


BEFORE_RESTORE_INFIX = "_before_restore_"
# PostgreSQL keeps the first 63 bytes of a name and drops the rest without an error.
NAME_BYTES = 63


def before_restore_name(app_name: str, extra: str = "") -> str:
    """<app>_before_restore_<stamp>[_<extra>], the app's name cut so the whole stays within 63
    bytes: a longer name would be truncated by PostgreSQL, and the undo it printed refused."""
    tail = f"{BEFORE_RESTORE_INFIX}{stamp(utc_now()).lower()}" + (f"_{extra}" if extra else "")
    head = app_name.encode("utf-8")[: NAME_BYTES - len(tail.encode("utf-8"))].decode("utf-8", "ignore")
    return head + tail


def fleet_page_is_on(settings: Settings) -> bool:
    """False on a single host. Behind the load balancer (several hosts), the page must be on
    every host before the switch, and this host cannot reach the others: True when it is on
    here (the laptop's `maintenance STACK on` puts it on all of them), else a refusal that
    says what to run. Checked before anything is restored or switched."""
    if env_value(settings.env, "BEHIND_LOAD_BALANCER", "0") != "1":
        return False
    argv = [*command_from(settings.env, "LEANSTACK_MAINTENANCE", shlex.split(MAINTENANCE_COMMAND)), "status"]
    try:
        done = subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=60, check=False)
    except (OSError, subprocess.TimeoutExpired) as error:
        raise Failure(f"cannot ask {argv[0]} whether the maintenance page is on: {error}") from None
    if done.returncode == 0 and done.stdout.strip() == "on":
        return True
    raise Failure(
        f"this stack's hosts sit behind a load balancer, and a switch needs the maintenance page on every one "
        f"of them, which this host cannot reach; first, from your laptop: python -m leanstack maintenance "
        f"{settings.stack} on; then run this again (the page stays on after the switch until you turn it off "
        "the same way); nothing was restored or switched"
    )


def swap(
    settings: Settings, maintenance: Connection, app_name: str, restored: str, fleet_page: bool = False
) -> List[str]:
    """Maintenance page on, rename (app -> app_before_restore_<stamp>, restored -> app) in
    one transaction, restart the app, check its health path, page off. With `fleet_page` the
    page is already on every host (fleet_page_is_on) and is left to the laptop's command."""
    env = settings.env

    def page_off() -> Optional[str]:
        if fleet_page:
            return None
        return run_step(env, "LEANSTACK_MAINTENANCE", MAINTENANCE_COMMAND, ["off"], 60)

    if restored == app_name:
        raise ConfigError(f"--use-restored {restored} is the app's database itself")
    before = before_restore_name(app_name)
    undo = f"sudo leanstack-restore --swap --use-restored {before}"
    session = PsqlSession(settings, maintenance, "cannot connect to the instance")
    try:
        listed = session.query(
            "SELECT datname || '|' || coalesce(shobj_description(oid, 'pg_database'), '') FROM pg_database "
            f"WHERE datname IN ({quote_literal(app_name)}, {quote_literal(restored)}, {quote_literal(before)});",
            "cannot list databases",
        )
        comments = dict(line.split("|", 1) for line in listed if "|" in line)
        if before in comments:
            # A second switch within the same second (an undo right after the switch).
            before = before_restore_name(app_name, secrets.token_hex(2))
            undo = f"sudo leanstack-restore --swap --use-restored {before}"
        if restored not in comments:
            raise Failure(f"there is no database {restored} on the instance")
        if not comments[restored].startswith(RESTORE_MARK):
            raise Failure(
                f"{restored} was not made by leanstack-restore (it carries no such comment); not switching to it"
            )
        app_exists = app_name in comments
        problem = (
            None
            if fleet_page
            else run_step(
                env,
                "LEANSTACK_MAINTENANCE",
                MAINTENANCE_COMMAND,
                ["on", "--message", "We are restoring data and will be back shortly."],
                60,
            )
        )
        if problem is not None:
            raise Failure(f"cannot show the maintenance page ({problem}); nothing was switched")
        say("maintenance page on" + (" (on every host, from the laptop)" if fleet_page else ""))
        app = quote_identifier(app_name)
        if app_exists:
            session.query(f"ALTER DATABASE {app} WITH ALLOW_CONNECTIONS false;", f"cannot close {app_name}")
            deadline = time.monotonic() + SWAP_WAIT_SECONDS
            while True:
                remaining = session.query(
                    "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                    f"WHERE datname = {quote_literal(app_name)} AND pid <> pg_backend_pid();",
                    "cannot close the app's connections",
                )
                if remaining[:1] == ["0"]:
                    break
                if time.monotonic() >= deadline:
                    session.query(f"ALTER DATABASE {app} WITH ALLOW_CONNECTIONS true;")
                    page_off()
                    raise Failure(
                        f"connections to {app_name} did not end in {SWAP_WAIT_SECONDS:.0f} s; nothing was switched"
                    )
                time.sleep(0.2)
        renames = [
            f"ALTER DATABASE {quote_identifier(restored)} RENAME TO {app};",
            f"COMMENT ON DATABASE {app} IS NULL;",
        ]
        if app_exists:
            renames = [
                f"ALTER DATABASE {app} RENAME TO {quote_identifier(before)};",
                f"ALTER DATABASE {quote_identifier(before)} WITH ALLOW_CONNECTIONS true;",
                f"COMMENT ON DATABASE {quote_identifier(before)} IS "
                f"{quote_literal(RESTORE_MARK + 'the app database before the switch at ' + iso(utc_now()))};",
                *renames,
            ]
        # One transaction: either both names change or neither does.
        try:
            session.query("BEGIN;\n" + "\n".join(renames) + "\nCOMMIT;", "cannot rename the databases")
        except Failure as failure:
            # psql has exited with the transaction rolled back: reopen the app's database to
            # its connections and users, on a new session, then report.
            if app_exists:
                with contextlib.suppress(Failure):
                    run_psql(settings, maintenance, "reopen", f"ALTER DATABASE {app} WITH ALLOW_CONNECTIONS true;")
            off = page_off()
            still_on = "" if off is None else f"; the maintenance page is still on ({off})"
            raise Failure(f"{failure}; nothing was switched{still_on}") from None
    finally:
        session.close()
    # Said now, not returned: should the restart fail, the operator still learns the names changed.
    say(
        f"switched: {app_name} now holds the restored data"
        + (f"; the previous database is kept as {before}" if app_exists else " (there was no app database)")
    )
    lines: List[str] = []
    undo_hint = f"to undo: {undo}" if app_exists else ""
    problem = run_step(env, "LEANSTACK_APP_RESTART", APP_RESTART_COMMAND, [], 1800)
    if problem is not None:
        raise Failure(f"the app did not restart ({problem}); the maintenance page stays on; {undo_hint}")
    say("app restarted")
    app_config = read_app(env)
    if app_config is not None and app_config.serving_port is not None:
        url = f"http://127.0.0.1:{app_config.serving_port}{app_config.health_path}"
        problem = wait_for_200(url, app_config.health_timeout_seconds)
        if problem is not None:
            raise Failure(
                f"the app's health path {app_config.health_path} answers {problem}; the maintenance page stays on; "
                + undo_hint
            )
        lines.append(f"the app answers 200 on {app_config.health_path}")
    else:
        lines.append("no app is deployed on this host: its health was not checked")
    problem = page_off()
    if problem is not None:
        raise Failure(f"switched, but the maintenance page is still on ({problem}): sudo leanstack-maintenance off")
    if fleet_page:
        lines += [
            "the other hosts' apps reconnect to the restored database by its name; to restart them all as well: "
            f"python -m leanstack restart {settings.stack}",
            f"the maintenance page is still on every host; when the app looks right: "
            f"python -m leanstack maintenance {settings.stack} off",
        ]
    else:
        lines.append("maintenance page off: users are served again")
    if app_exists:
        lines += [
            f"to undo the switch: {undo}",
            f"when you no longer need {before}, drop it (it takes space on the instance)",
        ]
    return lines
