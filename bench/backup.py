"""Benchmark: leanstack-backup and leanstack-restore-drill against raw pg_dump / pg_restore.

Builds a database of about 1 GB with `pgbench -i` (scale 70 by default) on a throw-away
local PostgreSQL, with moto's S3 on loopback, then measures in one run:

    raw pg_dump -Fc to a local file        vs  leanstack-backup (stream to S3, manifest)
    raw pg_restore from that file          vs  leanstack-restore-drill (stream from S3,
                                               restore, count rows, drop) into the same
                                               server (DRILL_TARGET=url)
                                           and leanstack-restore-drill with its default
                                               target, a throw-away local PostgreSQL
                                               (initdb, restore, remove): no target, shown
                                               for what a local drill costs

and prints the wall times and ratios. Targets: backup <= 1.2x raw dump, drill <= 1.3x raw
restore. Both sides use the same server, client programs and pg_restore options; moto is
an in-memory S3, so the network to real S3 is not part of the comparison.

    .venv/bin/python bench/backup.py [--scale 70]
"""

from __future__ import annotations

import argparse
import glob
import logging
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import boto3  # noqa: E402
from moto.server import ThreadedMotoServer  # noqa: E402

from support.agent import agent_script  # noqa: E402
from support.servers import SUPERUSER, SUPERUSER_PASSWORD, PostgresServer  # noqa: E402

TOOL = agent_script("leanstack-backup")
DATABASE = "bench"
TARGETS = {"backup": 1.2, "drill": 1.3}


def postgres_bin_dir() -> Path:
    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin/pgbench"), reverse=True)
    if not candidates:
        sys.exit("PostgreSQL with pgbench is needed: apt-get install postgresql postgresql-contrib")
    return Path(candidates[0]).parent


def timed(argv: list[str], env: dict[str, str] | None = None) -> tuple[float, str]:
    started = time.monotonic()
    done = subprocess.run(argv, env=env, capture_output=True, text=True, check=False)
    elapsed = time.monotonic() - started
    if done.returncode != 0:
        sys.exit(f"{argv[0]} failed ({done.returncode}): {done.stderr.strip()}")
    return elapsed, done.stdout.strip()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scale", type=int, default=70, help="pgbench scale (70 is about 1 GB)")
    parser.add_argument("--rounds", type=int, default=3, help="alternating measurement rounds")
    parser.add_argument(
        "--data-parent",
        default="/dev/shm" if os.path.isdir("/dev/shm") else tempfile.gettempdir(),
        help="where the data directory goes; tmpfs by default, so disk writeback does not add noise",
    )
    arguments = parser.parse_args()
    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # moto logs every request otherwise

    server = PostgresServer(
        postgres_bin_dir(),
        settings=("max_wal_size=4GB", "maintenance_work_mem=256MB", "checkpoint_timeout=30min"),
    )
    moto = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    work = Path(tempfile.mkdtemp(prefix="leanstack-bench-"))
    # The local target's server runs as postgres when this runs as root: a 0755 directory.
    drill_work = Path(tempfile.mkdtemp(prefix="leanstack-bench-drill-"))
    drill_work.chmod(0o755)
    try:
        server.start()
        moto.start()
        host, port = moto.get_host_and_port()
        endpoint = f"http://{host}:{port}"
        credentials = {"AWS_ACCESS_KEY_ID": "bench", "AWS_SECRET_ACCESS_KEY": "bench"}
        os.environ.update(credentials)
        s3 = boto3.client("s3", region_name="eu-central-1", endpoint_url=endpoint)
        s3.create_bucket(
            Bucket="bench",
            CreateBucketConfiguration={"LocationConstraint": "eu-central-1"},
            ObjectLockEnabledForBucket=True,
        )

        server.psql(f"CREATE DATABASE {DATABASE};")
        url = server.url(SUPERUSER, None, DATABASE)
        password_env = dict(os.environ, PGPASSWORD=SUPERUSER_PASSWORD)
        print(f"building the database: pgbench -i -s {arguments.scale} ...", flush=True)
        build_seconds, _ = timed(
            [server.program("pgbench"), "-i", "-q", "-s", str(arguments.scale), url], env=password_env
        )
        size = server.psql(f"SELECT pg_size_pretty(pg_database_size('{DATABASE}'));")
        print(f"  {size} in {build_seconds:.0f} s", flush=True)
        # Warm the page cache, so that neither side pays for the first read from disk.
        server.psql("VACUUM ANALYZE;", database=DATABASE)

        dump_file = work / "raw.dump"
        tool_env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": str(work),
            **credentials,
            "AWS_ENDPOINT_URL": endpoint,
            "AWS_REGION": "eu-west-1",
            "BACKUP_BUCKET_REGION": "eu-central-1",
            "BACKUP_BUCKET": "bench",
            "BACKUP_PREFIX": "bench",
            "DATABASE_URL": server.url(SUPERUSER, SUPERUSER_PASSWORD, DATABASE),
            "DRILL_TARGET": "url",
            "DRILL_DATABASE_URL": server.url(SUPERUSER, SUPERUSER_PASSWORD, "postgres"),
            "STACK": "bench",
            "PG_BIN_DIR": str(server.bin_dir),
            "LEANSTACK_LOCK_DIR": str(work / "lock"),
        }
        local_env = {key: value for key, value in tool_env.items() if key != "DRILL_DATABASE_URL"}
        local_env.update(DRILL_TARGET="local", DRILL_WORK_DIR=str(drill_work))
        times: dict[str, list[float]] = {
            "raw dump": [],
            "backup": [],
            "raw restore": [],
            "drill": [],
            "local drill": [],
        }
        outputs: dict[str, str] = {}
        # Alternate raw and tool runs and keep the median of each: a one-off stall (page
        # cache writeback, another process) then moves neither side's figure much.
        for round_number in range(1, arguments.rounds + 1):
            print(f"round {round_number} of {arguments.rounds} ...", flush=True)
            seconds, _ = timed(
                [server.program("pg_dump"), "--format=custom", f"--file={dump_file}", f"--dbname={url}"],
                env=password_env,
            )
            times["raw dump"].append(seconds)
            seconds, outputs["backup"] = timed([sys.executable, str(TOOL), "backup"], env=tool_env)
            times["backup"].append(seconds)
            server.psql("CREATE DATABASE raw_restore TEMPLATE template0;")
            seconds, _ = timed(
                [
                    server.program("pg_restore"),
                    "--no-owner",
                    "--no-privileges",
                    "--exit-on-error",
                    f"--dbname={server.url(SUPERUSER, None, 'raw_restore')}",
                    str(dump_file),
                ],
                env=password_env,
            )
            times["raw restore"].append(seconds)
            server.psql("DROP DATABASE raw_restore;")
            seconds, outputs["drill"] = timed([sys.executable, str(TOOL), "restore-drill"], env=tool_env)
            times["drill"].append(seconds)
            seconds, outputs["local drill"] = timed([sys.executable, str(TOOL), "restore-drill"], env=local_env)
            times["local drill"].append(seconds)

        median = {name: statistics.median(values) for name, values in times.items()}
        dump_mib = dump_file.stat().st_size / 2**20
        print(f"\ndatabase {size}, pgbench scale {arguments.scale}, custom-format dump {dump_mib:.0f} MiB")
        print(f"data directory on {arguments.data_parent}; last runs said:")
        print(f"  {outputs['backup']}\n  {outputs['drill']}\n  {outputs['local drill']}\n")
        heading = f"median of {arguments.rounds} rounds"
        print(f"{heading:32}{'seconds':>9}{'ratio':>8}{'target':>8}  all runs")
        rows = [
            ("raw pg_dump -Fc to a file", "raw dump", None),
            ("leanstack-backup", "backup", "raw dump"),
            ("raw pg_restore from the file", "raw restore", None),
            ("leanstack-restore-drill", "drill", "raw restore"),
            ("  ... into a local PostgreSQL", "local drill", "raw restore"),
        ]
        for label, name, baseline in rows:
            runs = " ".join(f"{value:.1f}" for value in times[name])
            if baseline is None:
                print(f"{label:32}{median[name]:9.1f}{'':16}  {runs}")
            else:
                ratio = median[name] / median[baseline]
                if name not in TARGETS:
                    print(f"{label:32}{median[name]:9.1f}{ratio:8.2f}{'-':>8}  {runs}")
                    continue
                target = TARGETS[name]
                verdict = "ok" if ratio <= target else "over"
                print(f"{label:32}{median[name]:9.1f}{ratio:8.2f}{target:8.1f}  {runs}  {verdict}")
    finally:
        moto.stop()
        server.stop()
        subprocess.run(["rm", "-rf", str(work), str(drill_work)], check=False)


if __name__ == "__main__":
    main()
