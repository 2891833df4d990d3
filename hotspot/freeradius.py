"""`manage.py radius_config`: a complete FreeRADIUS 3 configuration directory for the platform.

FreeRADIUS asks the platform over HTTP (rlm_rest, as OpenWISP RADIUS does):

- routers are *dynamic clients*: the first packet from an unknown address makes FreeRADIUS ask
  ``/radius/client/``; the answer (address, secret, router id) is cached for
  ``RADIUS_CLIENT_LIFETIME`` seconds, so a router added, changed or removed takes effect without a
  restart; an address the platform does not know gets no answer at all;
- ``authorize`` asks ``/radius/authorize/`` for the user's cleartext password (FreeRADIUS checks
  PAP and CHAP itself) and the reply attributes, or a reject with a Reply-Message;
- ``accounting`` posts every Start / Interim-Update / Stop to ``/radius/accounting/``.

Every call carries the shared token (HTTP Basic, user ``freeradius``); the endpoints refuse
anything else.
"""

from __future__ import annotations

import grp
import os
from dataclasses import dataclass
from pathlib import Path

#: Debian's freeradius package puts its modules and dictionaries here.
LIBDIR = "/usr/lib/freeradius"
DICTDIR = "/usr/share/freeradius"


@dataclass(frozen=True)
class RadiusConfig:
    api_url: str
    token: str
    auth_port: int = 1812
    acct_port: int = 1813
    listen_address: str = "*"
    client_lifetime: int = 60
    reject_delay: float = 1.0
    #: addresses FreeRADIUS accepts packets from at all (dynamic clients are looked up within)
    client_network: str = "0.0.0.0/0"
    http_timeout: float = 4.0
    pool_max: int = 32


def _q(value: str) -> str:
    """A FreeRADIUS double-quoted string (no expansion of % in the token)."""
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"').replace("%", "%%") + '"'


def radiusd_conf(cfg: RadiusConfig, directory: Path) -> str:
    url = cfg.api_url.rstrip("/")
    auth = (
        f"\t\tauth = 'basic'\n\t\tusername = \"freeradius\"\n\t\tpassword = {_q(cfg.token)}\n"
        f"\t\trequire_auth = yes\n\t\ttimeout = {cfg.http_timeout:g}\n"
    )
    authorize_uri = (
        "${..connect_uri}/radius/authorize/?router=%{client:shortname}&username=%{User-Name}"
    )
    return f"""# Written by `manage.py radius_config`; run with `freeradius -f -d {directory}`.
# Regenerate instead of editing: the platform's endpoints and token live in this file.
prefix = /usr
exec_prefix = /usr
sysconfdir = /etc
localstatedir = /var
sbindir = ${{exec_prefix}}/sbin
raddbdir = {directory}
confdir = ${{raddbdir}}
modconfdir = ${{confdir}}/mods-config
logdir = ${{confdir}}/log
radacctdir = ${{logdir}}/radacct
run_dir = ${{confdir}}/run
db_dir = ${{confdir}}
libdir = {LIBDIR}
dictdir = {DICTDIR}
name = freeradius
pidfile = ${{run_dir}}/${{name}}.pid
max_request_time = 30
cleanup_delay = 5
max_requests = 65536
hostname_lookups = no
proxy_requests = no

log {{
	destination = stdout
	colourise = no
	stripped_names = no
	auth = no
}}

security {{
	allow_core_dumps = no
	max_attributes = 200
	reject_delay = {cfg.reject_delay:g}
	status_server = yes
}}

thread pool {{
	start_servers = 8
	max_servers = {cfg.pool_max}
	min_spare_servers = 4
	max_spare_servers = 16
	max_requests_per_server = 0
	auto_limit_acct = no
}}

# The platform may start after FreeRADIUS: the pools open connections on first use (start = 0).
# Every router is looked up by its source address (server dynamic_clients below).
client platform_routers {{
	ipaddr = {cfg.client_network}
	dynamic_clients = dynamic_clients
	lifetime = {cfg.client_lifetime}
}}

modules {{
	# %{{urlencode:...}} and the other string expansions
	expr {{
	}}
	always ok {{
		rcode = ok
	}}
	always reject {{
		rcode = reject
	}}
	always noop {{
		rcode = noop
	}}
	pap {{
		normalise = yes
	}}
	chap {{
	}}
	# the baseline of bench/radius.py: the same users from a plain file
	files {{
		moddir = ${{modconfdir}}/files
		filename = ${{moddir}}/authorize
	}}
	rest rest_client {{
		connect_uri = {_q(url)}
		authorize {{
			uri = "${{..connect_uri}}/radius/client/?address=%{{Packet-Src-IP-Address}}"
			method = 'get'
{auth}		}}
		pool {{
			start = 0
			min = 0
			max = 4
			spare = 2
			uses = 0
			retry_delay = 1
			lifetime = 0
			idle_timeout = 60
		}}
	}}
	rest rest {{
		connect_uri = {_q(url)}
		authorize {{
			uri = "{authorize_uri}"
			method = 'get'
{auth}		}}
		accounting {{
			uri = "${{..connect_uri}}/radius/accounting/?router=%{{client:shortname}}"
			method = 'post'
			body = 'post'
{auth}		}}
		pool {{
			start = 0
			min = 0
			max = {cfg.pool_max}
			spare = 8
			uses = 0
			retry_delay = 1
			lifetime = 0
			idle_timeout = 60
		}}
	}}
}}

instantiate {{
}}

policy {{
	# accept-only attributes never ride on a reject
	platform_strip_reply {{
		update reply {{
			&Session-Timeout !* ANY
			&Acct-Interim-Interval !* ANY
			&Mikrotik-Rate-Limit !* ANY
			&Mikrotik-Total-Limit !* ANY
			&Mikrotik-Total-Limit-Gigawords !* ANY
			&WISPr-Bandwidth-Max-Up !* ANY
			&WISPr-Bandwidth-Max-Down !* ANY
			&WISPr-Session-Terminate-Time !* ANY
			&ChilliSpot-Bandwidth-Max-Up !* ANY
			&ChilliSpot-Bandwidth-Max-Down !* ANY
			&ChilliSpot-Max-Total-Octets !* ANY
		}}
	}}
}}

server dynamic_clients {{
	authorize {{
		rest_client
		if (!ok && !updated) {{
			reject
		}}
		ok
	}}
}}

server default {{
	listen {{
		type = auth
		ipaddr = {cfg.listen_address}
		port = {cfg.auth_port}
	}}
	listen {{
		type = acct
		ipaddr = {cfg.listen_address}
		port = {cfg.acct_port}
	}}

	authorize {{
		if ("%{{client:shortname}}" == "files-baseline") {{
			files
		}}
		else {{
			rest {{
				fail = 1
				userlock = 1
				invalid = 1
				notfound = 1
			}}
			if (reject) {{
				reject
			}}
			if (fail || userlock || invalid || notfound) {{
				update reply {{
					&Reply-Message := "Login is unavailable right now, try again shortly."
				}}
				reject
			}}
		}}
		chap
		pap
	}}

	authenticate {{
		Auth-Type PAP {{
			pap
		}}
		Auth-Type CHAP {{
			chap
		}}
	}}

	preacct {{
		noop
	}}

	accounting {{
		if ("%{{client:shortname}}" == "files-baseline") {{
			ok
		}}
		else {{
			rest
		}}
	}}

	post-auth {{
		Post-Auth-Type REJECT {{
			platform_strip_reply
			if (!&reply:Reply-Message) {{
				update reply {{
					&Reply-Message := "Wrong password."
				}}
			}}
		}}
	}}
}}
"""


def write_config(
    cfg: RadiusConfig, directory: Path, *, files_users: str = "", files_client: str = ""
) -> list[Path]:
    """Write the directory; readable by root and the `freerad` group (Debian's service user).

    `files_users` / `files_client` feed the `files` baseline of bench/radius.py (a client
    stanza with shortname files-baseline and users in the `users` file format); empty in
    production.
    """
    directory = directory.resolve()
    for sub in ("", "log", "log/radacct", "run", "mods-config", "mods-config/files"):
        (directory / sub).mkdir(parents=True, exist_ok=True)
    conf = radiusd_conf(cfg, directory)
    if files_client:
        conf += "\n" + files_client
    written = {
        directory / "radiusd.conf": conf,
        directory / "dictionary": "# local dictionary additions (none)\n",
        directory / "mods-config/files/authorize": files_users or "# bench/radius.py only\n",
    }
    for path, text in written.items():
        path.write_text(text)
    _share_with_freerad(directory, list(written))
    return list(written)


def _share_with_freerad(directory: Path, files: list[Path]) -> None:
    try:
        gid = grp.getgrnam("freerad").gr_gid
    except KeyError:
        gid = -1
    for path in files:
        os.chmod(path, 0o640)
    for sub in ("", "mods-config", "mods-config/files"):
        os.chmod(directory / sub, 0o750)  # noqa: S103 (directories: freerad must enter them)
    for sub in ("log", "log/radacct", "run"):
        os.chmod(directory / sub, 0o770)  # noqa: S103 (freerad writes its log and pid here)
    if gid >= 0 and os.geteuid() == 0:
        for path in [
            directory,
            *files,
            *(
                directory / s
                for s in ("log", "log/radacct", "run", "mods-config", "mods-config/files")
            ),
        ]:
            os.chown(path, -1, gid)
