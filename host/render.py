"""Render the proxy host's files: nginx.conf, the error pages, the CloudWatch agent config,
the TLS fetch script, and the cloud-init document (and EC2 user data) that installs them.

Plain Python and jinja2, no Pulumi: `components.proxy_host` calls these with a resolved
`HostParams`, and the tests write the same output to disk and run it with the real nginx
and cloud-init.

Every value that reaches a template is validated here, even though the stack config was
validated first: nginx and shell syntax give a stray `;`, quote or newline a meaning, so a
value that is not plainly what it claims to be is refused with a `ValueError` naming the
field rather than rendered.
"""

from __future__ import annotations

import base64
import gzip
import ipaddress
import re
import shlex
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jinja2
import yaml

from leanstack.host.agent import contract
from leanstack.host.agent.blue_green import upstream_text
from leanstack.host.params import HostFile, HostParams

__all__ = [
    "ORIGIN_PULL_CA_PEM",
    "USER_DATA_LIMIT_BYTES",
    "NginxPaths",
    "host_files",
    "render_cloud_config",
    "render_cloudwatch_agent_config",
    "render_error_pages",
    "render_maintenance_tool",
    "render_nginx_conf",
    "render_tls_fetch_script",
    "render_upstream",
    "render_user_data",
    "validate_host_params",
]

_HERE = Path(__file__).resolve().parent
_TEMPLATES = _HERE / "templates"

# Cloudflare's Authenticated Origin Pulls CA (CN=origin-pull.cloudflare.net, valid until
# 2029-11-01). Public; embedded so the host needs no download at boot.
ORIGIN_PULL_CA_PEM: str = (_HERE / "cloudflare_origin_pull_ca.pem").read_text(encoding="ascii")

# EC2 limits user data to 16 KB before base64 encoding.
USER_DATA_LIMIT_BYTES = 16384

# Where the files live on the host (Amazon Linux 2023).
NGINX_CONF_PATH = "/etc/nginx/nginx.conf"
TLS_FETCH_SCRIPT_PATH = contract.TLS_FETCH_SCRIPT_PATH
NGINX_DROP_IN_PATH = "/etc/systemd/system/nginx.service.d/leanstack.conf"
CLOUDWATCH_AGENT_CONFIG_PATH = "/opt/aws/amazon-cloudwatch-agent/etc/amazon-cloudwatch-agent.json"
CLOUDWATCH_AGENT_CTL = "/opt/aws/amazon-cloudwatch-agent/bin/amazon-cloudwatch-agent-ctl"
BASE_PACKAGES: tuple[str, ...] = ("nginx", "amazon-cloudwatch-agent")
MAINTENANCE_PAGE_PATH = "/var/lib/leanstack/maintenance/maintenance.html"
MAINTENANCE_TOOL_PATH = contract.MAINTENANCE_TOOL_PATH
# What nginx tells clients (and Cloudflare) in Retry-After while the maintenance page is on.
MAINTENANCE_RETRY_AFTER_SECONDS = 120


@dataclass(frozen=True)
class NginxPaths:
    """What differs between the real host and a test or benchmark instance of nginx.

    The defaults are the host's. Tests point everything at a temporary directory, listen on
    a free loopback port and run as root; the benchmark also sets `tls=False`, because wrk
    cannot present a client certificate.
    """

    # Empty: every IPv4 address of the host.
    listen_address: str = ""
    listen_port: int = 443
    tls: bool = True
    cert_path: str = "/etc/nginx/tls/origin.crt"
    key_path: str = "/etc/nginx/tls/origin.key"
    client_ca_path: str = "/etc/nginx/tls/cloudflare-origin-pull-ca.pem"
    pid_path: str = "/run/nginx.pid"
    error_log_path: str = "/var/log/nginx/error.log"
    # The file the CloudWatch agent ships; AL2023's logrotate rule covers /var/log/nginx/*.log.
    access_log_path: str = "/var/log/nginx/access.json.log"
    temp_dir: str = "/var/lib/nginx/tmp"
    error_root: str = "/usr/share/nginx/leanstack-errors"
    # The app server nginx proxies to, in a file of its own: `leanstack-app deploy` rewrites
    # it (atomically) and reloads nginx to switch between the two app ports.
    upstream_path: str = "/etc/nginx/leanstack-upstream.conf"
    # The `user` directive; None leaves it out (nginx then uses its built-in default).
    user: str | None = "nginx"
    worker_processes: str = "auto"
    # While this file exists nginx serves it, as a 503, for every request (see
    # `leanstack-maintenance`, which writes and removes it).
    maintenance_page: str = MAINTENANCE_PAGE_PATH


# --- validation -----------------------------------------------------------------------

_LABEL = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?$")
_HEALTH_PATH = re.compile(r"^/[A-Za-z0-9._~/-]*$")
_STACK = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
_REGION = re.compile(r"^[a-z]{2}(?:-[a-z]+)+-[0-9]{1,2}$")
_SSM_PREFIX = re.compile(r"^(?:/[A-Za-z0-9_.-]+)+$")
_LOG_GROUP = re.compile(r"^[A-Za-z0-9_./#-]{1,512}$")
_NAMESPACE = re.compile(r"^[A-Za-z0-9 ._/#:-]{1,255}$")
# Absolute paths without whitespace or anything nginx, YAML or a shell would interpret.
_FS_PATH = re.compile(r"^/[A-Za-z0-9._+@/-]*$")
_UNIX_NAME = re.compile(r"^[a-z_][a-z0-9_-]{0,31}$")
_OWNER = re.compile(r"^[a-z_][a-z0-9_-]{0,31}(?::[a-z_][a-z0-9_-]{0,31})?$")
_MODE = re.compile(r"^0?[0-7]{3}$|^[0-7]{4}$")
_PACKAGE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._+-]{0,127}$")
_UNIT = re.compile(r"^[A-Za-z0-9][A-Za-z0-9@._:-]{0,200}\.(?:service|timer|socket|path|target|mount)$")
_WORKERS = re.compile(r"^(?:auto|[1-9][0-9]{0,2})$")
_NGINX_INT_MAX = 2**31 - 1


def _fail(field: str, value: object, allowed: str) -> ValueError:
    return ValueError(f"{field}: {value!r} is not allowed: {allowed}")


def _check_hostname(field: str, name: object) -> str:
    if not isinstance(name, str) or not name or len(name) > 253 or name.endswith("."):
        raise _fail(field, name, "a plain RFC 1123 hostname such as www.example.com")
    if not all(_LABEL.fullmatch(label) for label in name.split(".")):
        raise _fail(field, name, "a plain RFC 1123 hostname such as www.example.com")
    return name


def _check_port(field: str, port: object) -> int:
    # bool is an int subclass; True is no port.
    if isinstance(port, bool) or not isinstance(port, int) or not 1 <= port <= 65535:
        raise _fail(field, port, "an integer port from 1 to 65535")
    return port


def _check_int(field: str, value: object, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise _fail(field, value, f"an integer from {low} to {high}")
    return value


def _check_match(field: str, value: object, pattern: re.Pattern[str], allowed: str) -> str:
    # fullmatch: `$` alone would accept a trailing newline.
    if not isinstance(value, str) or not pattern.fullmatch(value):
        raise _fail(field, value, allowed)
    return value


def _check_path(field: str, value: object) -> str:
    path = _check_match(field, value, _FS_PATH, "an absolute path of letters, digits and ._+@/-")
    if "/../" in path + "/" or path.endswith("/.."):
        raise _fail(field, value, "a path without '..'")
    return path


def _check_cidrs(field: str, cidrs: object, version: int | None) -> list[str]:
    """The networks in `cidrs`, all of IP `version` (4 or 6), or of either when it is None."""
    kind = f"IPv{version}" if version else "IP"
    if not isinstance(cidrs, tuple | list):
        raise _fail(field, cidrs, f"a list of {kind} networks")
    checked = []
    for index, cidr in enumerate(cidrs):
        name = f"{field}[{index}]"
        if not isinstance(cidr, str):
            raise _fail(name, cidr, f"an {kind} network such as 173.245.48.0/20")
        try:
            network = ipaddress.ip_network(cidr, strict=True)
        except ValueError as error:
            raise _fail(name, cidr, f"an {kind} network with no host bits set ({error})") from None
        if version is not None and network.version != version:
            raise _fail(name, cidr, f"an {kind} network")
        checked.append(str(network))
    return checked


def validate_host_params(p: HostParams) -> None:
    """Raise `ValueError` naming the first field of `p` that is unsafe to render."""
    _check_match("stack", p.stack, _STACK, "letters, digits and ._- (at most 64)")
    _check_match("region", p.region, _REGION, "an AWS region name such as eu-west-1")
    if not isinstance(p.hostnames, tuple | list) or not p.hostnames:
        raise _fail("hostnames", p.hostnames, "at least one hostname")
    for index, name in enumerate(p.hostnames):
        _check_hostname(f"hostnames[{index}]", name)
    if len({name.lower() for name in p.hostnames}) != len(p.hostnames):
        raise _fail("hostnames", p.hostnames, "each hostname once")
    _check_port("app_port", p.app_port)
    _check_match(
        "health_path",
        p.health_path,
        _HEALTH_PATH,
        "a URL path starting with '/' of letters, digits and ._~/- (no spaces, ';', quotes or braces)",
    )
    if not isinstance(p.cdn_proxied, bool):
        raise _fail("cdn_proxied", p.cdn_proxied, "true or false")
    v4 = _check_cidrs("cloudflare_ipv4_cidrs", p.cloudflare_ipv4_cidrs, 4)
    v6 = _check_cidrs("cloudflare_ipv6_cidrs", p.cloudflare_ipv6_cidrs, 6)
    if not isinstance(p.behind_load_balancer, bool):
        raise _fail("behind_load_balancer", p.behind_load_balancer, "true or false")
    if p.cdn_proxied and not p.behind_load_balancer and not (v4 or v6):
        # Without ranges nginx would trust nobody's CF-Connecting-IP and log Cloudflare's
        # addresses as clients: the stack config must pass Cloudflare's ranges.
        raise _fail("cloudflare_ipv4_cidrs", p.cloudflare_ipv4_cidrs, "Cloudflare's ranges when cdn_proxied")
    lb_cidrs = _check_cidrs("load_balancer_cidrs", p.load_balancer_cidrs, None)
    if p.behind_load_balancer and not lb_cidrs:
        # Behind the load balancer every TCP peer is the load balancer: trusting nobody would
        # log its addresses as every client's.
        raise _fail("load_balancer_cidrs", p.load_balancer_cidrs, "the VPC's CIDR blocks when behind_load_balancer")
    if lb_cidrs and not p.behind_load_balancer:
        # A direct host trusting a private range would believe a forged header from anything in it.
        raise _fail("load_balancer_cidrs", p.load_balancer_cidrs, "no networks unless behind_load_balancer")
    _check_int("hsts_max_age_seconds", p.hsts_max_age_seconds, 0, _NGINX_INT_MAX)
    _check_int("max_body_mb", p.max_body_mb, 1, 10240)
    _check_match(
        "tls_parameter_prefix",
        p.tls_parameter_prefix,
        _SSM_PREFIX,
        "an SSM parameter path such as /leanstack/dev/tls (letters, digits, _.-; no trailing '/')",
    )
    _check_match("access_log_group", p.access_log_group, _LOG_GROUP, "a CloudWatch Logs group name")
    _check_match("metrics_namespace", p.metrics_namespace, _NAMESPACE, "a CloudWatch namespace")
    if p.metrics_namespace.startswith("AWS/"):
        raise _fail("metrics_namespace", p.metrics_namespace, "a namespace not starting with AWS/")
    _check_files("extra_files", p.extra_files)


def _check_paths(paths: NginxPaths, p: HostParams) -> None:
    address = paths.listen_address
    if address:
        try:
            ipaddress.ip_address(address)
        except ValueError:
            raise _fail("paths.listen_address", address, "empty or an IP address") from None
    _check_port("paths.listen_port", paths.listen_port)
    if paths.listen_port == p.app_port:
        raise _fail("app_port", p.app_port, f"a port other than the one nginx listens on ({paths.listen_port})")
    for name in (
        "cert_path",
        "key_path",
        "client_ca_path",
        "pid_path",
        "error_log_path",
        "access_log_path",
        "temp_dir",
        "error_root",
        "upstream_path",
        "maintenance_page",
    ):
        _check_path(f"paths.{name}", getattr(paths, name))
    if paths.user is not None:
        _check_match("paths.user", paths.user, _UNIX_NAME, "a Unix user name")
    _check_match("paths.worker_processes", paths.worker_processes, _WORKERS, "auto or a number")


def _check_files(field: str, files: Iterable[HostFile]) -> None:
    for index, host_file in enumerate(files):
        name = f"{field}[{index}]"
        if not isinstance(host_file, HostFile):
            raise _fail(name, host_file, "a HostFile")
        _check_path(f"{name}.path", host_file.path)
        _check_match(f"{name}.permissions", host_file.permissions, _MODE, "an octal mode such as 0644")
        _check_match(f"{name}.owner", host_file.owner, _OWNER, "user or user:group")
        if not isinstance(host_file.content, str):
            raise _fail(f"{name}.content", type(host_file.content).__name__, "text")


# --- rendering ------------------------------------------------------------------------


def _environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(_TEMPLATES)),
        undefined=jinja2.StrictUndefined,
        # Config files, not HTML: escaping would corrupt them. Values are validated instead.
        autoescape=False,
        keep_trailing_newline=True,
        trim_blocks=False,
        lstrip_blocks=False,
    )
    env.filters["sh"] = shlex.quote
    return env


_ENV = _environment()


def _render(template: str, **values: Any) -> str:
    return _ENV.get_template(template).render(**values)


def _listen(paths: NginxPaths) -> str:
    if not paths.listen_address:
        return str(paths.listen_port)
    address = ipaddress.ip_address(paths.listen_address)
    host = f"[{address}]" if address.version == 6 else str(address)
    return f"{host}:{paths.listen_port}"


def render_nginx_conf(p: HostParams, *, paths: NginxPaths | None = None) -> str:
    """The whole nginx.conf; it includes one file, `paths.upstream_path` (see `render_upstream`)."""
    paths = paths or NginxPaths()
    validate_host_params(p)
    _check_paths(paths, p)
    return _render(
        "nginx.conf.j2",
        stack=p.stack,
        hostnames=[name.lower() for name in p.hostnames],
        health_path=p.health_path,
        cdn_proxied=p.cdn_proxied,
        behind_load_balancer=p.behind_load_balancer,
        # Whose word on the client's address nginx takes: the load balancer's when behind it
        # (its peers are always the load balancer), otherwise Cloudflare's edge's.
        trusted_cidrs=_check_cidrs("load_balancer_cidrs", p.load_balancer_cidrs, None)
        if p.behind_load_balancer
        else _check_cidrs("cloudflare_ipv4_cidrs", p.cloudflare_ipv4_cidrs, 4)
        + _check_cidrs("cloudflare_ipv6_cidrs", p.cloudflare_ipv6_cidrs, 6),
        hsts_max_age_seconds=p.hsts_max_age_seconds,
        max_body_mb=p.max_body_mb,
        listen=_listen(paths),
        paths=paths,
        maintenance_retry_after_seconds=MAINTENANCE_RETRY_AFTER_SECONDS,
    )


def render_maintenance_tool(*, paths: NginxPaths | None = None) -> str:
    """`leanstack-maintenance on [--message TEXT] | off | status`, for the page nginx serves."""
    paths = paths or NginxPaths()
    _check_path("paths.maintenance_page", paths.maintenance_page)
    return _render("leanstack-maintenance.py.j2", maintenance_page=paths.maintenance_page)


def render_upstream(app_port: int) -> str:
    """The included upstream file for the app on 127.0.0.1:`app_port`.

    cloud-init writes it for `app.port`; the deploy script writes the same text (one
    function, `host.agent.blue_green.upstream_text`) for whichever port it switches to.
    """
    return upstream_text(_check_port("app_port", app_port))


def render_error_pages() -> dict[str, str]:
    """The static error pages by file name (50x.html, 4xx.html); they take no parameters."""
    return {name: (_TEMPLATES / name).read_text(encoding="utf-8") for name in ("50x.html", "4xx.html")}


def render_cloudwatch_agent_config(p: HostParams, *, paths: NginxPaths | None = None) -> str:
    """CloudWatch agent config: ships the JSON access log to `p.access_log_group`."""
    paths = paths or NginxPaths()
    validate_host_params(p)
    _check_paths(paths, p)
    return _render(
        "amazon-cloudwatch-agent.json.j2",
        access_log_path=paths.access_log_path,
        access_log_group=p.access_log_group,
        metrics_namespace=p.metrics_namespace,
    )


def render_tls_fetch_script(p: HostParams, *, paths: NginxPaths | None = None) -> str:
    """The boot script that installs the origin certificate and key from SSM."""
    paths = paths or NginxPaths()
    validate_host_params(p)
    _check_paths(paths, p)
    return _render(
        "leanstack-fetch-origin-tls.sh.j2",
        region=p.region,
        tls_parameter_prefix=p.tls_parameter_prefix,
        cert_path=paths.cert_path,
        key_path=paths.key_path,
        # The group that may read the certificate: nginx's user on the host.
        tls_group=paths.user or "root",
    )


def host_files(p: HostParams, *, paths: NginxPaths | None = None) -> tuple[HostFile, ...]:
    """The files leanstack itself puts on the host (not counting `p.extra_files`)."""
    paths = paths or NginxPaths()
    files = [
        HostFile(NGINX_CONF_PATH, render_nginx_conf(p, paths=paths)),
        HostFile(paths.upstream_path, render_upstream(p.app_port)),
        *(HostFile(f"{paths.error_root}/{name}", content) for name, content in render_error_pages().items()),
        HostFile(TLS_FETCH_SCRIPT_PATH, render_tls_fetch_script(p, paths=paths), permissions="0750"),
        HostFile(NGINX_DROP_IN_PATH, (_TEMPLATES / "nginx-leanstack.conf").read_text(encoding="utf-8")),
        HostFile(CLOUDWATCH_AGENT_CONFIG_PATH, render_cloudwatch_agent_config(p, paths=paths)),
        HostFile(MAINTENANCE_TOOL_PATH, render_maintenance_tool(paths=paths), permissions="0755"),
    ]
    if p.cdn_proxied and not p.behind_load_balancer:
        # Behind the load balancer, the load balancer's trust store holds the CA instead.
        files.append(HostFile(paths.client_ca_path, ORIGIN_PULL_CA_PEM))
    return tuple(files)


class _CloudConfigDumper(yaml.SafeDumper):
    """Writes multi-line strings as literal blocks, so the user data stays readable."""


def _represent_str(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    # PyYAML falls back to a quoted style by itself when a block cannot represent the value.
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_CloudConfigDumper.add_representer(str, _represent_str)


def render_cloud_config(
    p: HostParams,
    *,
    extra_files: Sequence[HostFile] = (),
    packages: Sequence[str] = (),
    enable_units: Sequence[str] = (),
) -> str:
    """The `#cloud-config` document for the host.

    `extra_files`, `packages` and `enable_units` are how other parts of leanstack (the
    backup tools) add to the host; `p.extra_files` are written too.
    """
    validate_host_params(p)
    extra = (*p.extra_files, *extra_files)
    _check_files("extra_files", extra)
    for index, package in enumerate(packages):
        _check_match(f"packages[{index}]", package, _PACKAGE, "a package name")
    for index, unit in enumerate(enable_units):
        _check_match(f"enable_units[{index}]", unit, _UNIT, "a systemd unit name such as backup.timer")

    files = (*host_files(p), *extra)
    seen: set[str] = set()
    for host_file in files:
        if host_file.path in seen:
            raise _fail("extra_files", host_file.path, "a path no other host file uses")
        seen.add(host_file.path)

    runcmd: list[list[str]] = [
        ["systemctl", "daemon-reload"],
        # The drop-in fetches the certificate before nginx starts.
        ["systemctl", "enable", "--now", "nginx.service"],
        [
            CLOUDWATCH_AGENT_CTL,
            "-a",
            "fetch-config",
            "-m",
            "ec2",
            "-s",
            "-c",
            f"file:{CLOUDWATCH_AGENT_CONFIG_PATH}",
        ],
        ["systemctl", "enable", "amazon-cloudwatch-agent.service"],
        *(["systemctl", "enable", "--now", unit] for unit in dict.fromkeys(enable_units)),
    ]
    document: dict[str, Any] = {
        # Amazon Linux 2023 releases are pinned per AMI; upgrades come with a new AMI.
        "package_update": False,
        "package_upgrade": False,
        "packages": list(dict.fromkeys((*BASE_PACKAGES, *packages))),
        "write_files": [
            {
                "path": host_file.path,
                "content": host_file.content,
                "owner": host_file.owner,
                "permissions": host_file.permissions
                if host_file.permissions.startswith("0")
                else "0" + host_file.permissions,
                # After packages: owners such as nginx exist then, and the package's own
                # nginx.conf is already in place to be replaced.
                "defer": True,
            }
            for host_file in files
        ],
        "runcmd": runcmd,
    }
    body = yaml.dump(
        document,
        Dumper=_CloudConfigDumper,
        sort_keys=False,
        default_flow_style=False,
        allow_unicode=True,
        width=1000,
    )
    return "#cloud-config\n" + body


def render_user_data(
    p: HostParams,
    *,
    extra_files: Sequence[HostFile] = (),
    packages: Sequence[str] = (),
    enable_units: Sequence[str] = (),
) -> str:
    """Base64 of the gzipped cloud-config, for `aws.ec2.Instance(user_data_base64=...)`.

    cloud-init recognises gzip itself. The timestamp is fixed so the same input gives the
    same user data, and Pulumi shows no spurious change.
    """
    document = render_cloud_config(p, extra_files=extra_files, packages=packages, enable_units=enable_units)
    raw = gzip.compress(document.encode("utf-8"), compresslevel=9, mtime=0)
    if len(raw) > USER_DATA_LIMIT_BYTES:
        raise ValueError(
            f"user data: {len(raw)} bytes gzipped exceeds EC2's limit of {USER_DATA_LIMIT_BYTES} bytes; "
            "move large files to S3 or SSM and fetch them at boot"
        )
    return base64.b64encode(raw).decode("ascii")
