"""`manage.py radius_config`: a complete FreeRADIUS 3 configuration directory for the platform.

FreeRADIUS asks the platform over HTTP (rlm_rest, as OpenWISP RADIUS does):

- routers are *dynamic clients*: the first packet from an unknown address makes FreeRADIUS ask
  ``/radius/client/``; the answer (address, secret, router id) is cached for
  ``RADIUS_CLIENT_LIFETIME`` seconds, so a router added, changed or removed takes effect without a
  restart; an address the platform does not know gets no answer at all;
- ``authorize`` asks ``/radius/authorize/`` for the user's cleartext password (FreeRADIUS checks
  PAP and CHAP itself) and the reply attributes, or a reject with a Reply-Message;
- ``accounting`` posts every Start / Interim-Update / Stop to ``/radius/accounting/``.

An Access-Accept's answer is kept in FreeRADIUS's memory (rlm_cache, rbtree) for
``RADIUS_CACHE_TTL`` seconds, keyed on router + User-Name, so a repeated login does not cross
HTTP. Time-dependent attributes are computed at answer time (Session-Timeout from the cached
expiry). The platform drops an entry the moment an answer changes (hotspot/radius_cache.py:
a packet to the ``platform_cache`` listener on localhost, or, from accounting, in the answer
to the accounting call); docs/radius.md explains the guarantees.

Every call carries the shared token (HTTP Basic, user ``freeradius``); the endpoints refuse
anything else.
"""

from __future__ import annotations

import grp
import math
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
    #: socket receive buffer of the auth/acct listeners (Linux caps it at net.core.rmem_max): a
    #: burst of requests that lands while every thread is busy waits here instead of being lost
    recv_buff: int = 4 * 1024 * 1024
    #: seconds an Access-Accept is answered from FreeRADIUS's memory; 0: no cache
    cache_ttl: int = 30
    #: the listener the platform drops cache entries through (localhost, its own secret)
    cache_address: str = "127.0.0.1"
    #: where the platform's drops may come from (an address or network)
    cache_client: str = "127.0.0.1"
    cache_port: int = 18120
    cache_secret: str = ""

    @property
    def hold_ttl(self) -> int:
        """Seconds a dropped key stays uncacheable: longer than any HTTP call that may have read
        the old answer before the change committed (docs/radius.md, "the race")."""
        return max(10, math.ceil(2 * self.http_timeout) + 2)


#: A vendor number local to this FreeRADIUS (in no dictionary it ships): its attributes only
#: travel between the platform and FreeRADIUS's cache listener, never to a router.
VENDOR_ID = 65400
DICTIONARY = f"""# Written by `manage.py radius_config`: the platform's cache attributes.
VENDOR\tHotspot-Platform\t{VENDOR_ID}
BEGIN-VENDOR\tHotspot-Platform
# a "router-id:User-Name" whose cached answer is to be dropped (repeatable)
ATTRIBUTE\tHotspot-Drop-Key\t1\tstring
# a new generation: every cached answer of the old one is dropped at once
ATTRIBUTE\tHotspot-Cache-Generation\t2\tstring
END-VENDOR\tHotspot-Platform
# internal (never in a packet)
ATTRIBUTE\tHotspot-Expires-At\t3000\tinteger
ATTRIBUTE\tHotspot-Cache-Key\t3001\tstring
ATTRIBUTE\tHotspot-Hold-Key\t3002\tstring
ATTRIBUTE\tHotspot-Cache-Hit\t3003\tinteger
"""

#: what a cached answer holds besides the password (the reply attributes of an Accept)
CACHED_REPLY = (
    "Acct-Interim-Interval",
    "Mikrotik-Rate-Limit",
    "Mikrotik-Total-Limit",
    "Mikrotik-Total-Limit-Gigawords",
    "WISPr-Bandwidth-Max-Up",
    "WISPr-Bandwidth-Max-Down",
    "WISPr-Session-Terminate-Time",
    "ChilliSpot-Bandwidth-Max-Up",
    "ChilliSpot-Bandwidth-Max-Down",
    "ChilliSpot-Max-Total-Octets",
)


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
    cache_modules, cache_policies, authorize_platform, accounting_drop, control_server = (
        _cache_parts(cfg)
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
{cache_modules}	rest rest {{
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
{cache_policies}}}

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
		recv_buff = {cfg.recv_buff}
	}}
	listen {{
		type = acct
		ipaddr = {cfg.listen_address}
		port = {cfg.acct_port}
		recv_buff = {cfg.recv_buff}
	}}

	authorize {{
		if ("%{{client:shortname}}" == "files-baseline") {{
			files
		}}
		else {{
{authorize_platform}		}}
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
{accounting_drop}		}}
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
{control_server}"""


REST_AUTHORIZE = """\
rest {
	fail = 1
	userlock = 1
	invalid = 1
	notfound = 1
}
if (reject) {
	reject
}
if (fail || userlock || invalid || notfound) {
	update reply {
		&Reply-Message := "Login is unavailable right now, try again shortly."
	}
	reject
}
"""


def _indent(text: str, tabs: int) -> str:
    return "".join(("\t" * tabs + line if line.strip() else line) for line in text.splitlines(True))


def _cache_parts(cfg: RadiusConfig) -> tuple[str, str, str, str, str]:
    """The rlm_cache pieces: modules, policies, authorize, accounting, the control server."""
    if cfg.cache_ttl <= 0:
        return "", "", _indent(REST_AUTHORIZE, 3), "", ""
    copies = "".join(f"\t\t\t&reply:{name} := &reply:{name}\n" for name in CACHED_REPLY)
    modules = f"""\
	# one entry per router + User-Name: what the platform answered for an Access-Accept
	cache platform_cache {{
		driver = "rlm_cache_rbtree"
		key = "%{{control:Hotspot-Cache-Key}}"
		ttl = {cfg.cache_ttl}
		update {{
			&control:Cleartext-Password := &control:Cleartext-Password
			&control:Hotspot-Expires-At := &control:Hotspot-Expires-At
{copies}		}}
	}}
	# keys dropped in the last {cfg.hold_ttl} s: neither answered from nor stored in the cache
	cache platform_hold {{
		driver = "rlm_cache_rbtree"
		key = "%{{control:Hotspot-Hold-Key}}"
		ttl = {cfg.hold_ttl}
		update {{
			&control:Hotspot-Hold-Key := &control:Hotspot-Hold-Key
		}}
	}}
	# part of every key: a new generation drops every cached answer at once
	cache platform_generation {{
		driver = "rlm_cache_rbtree"
		key = "generation"
		ttl = 86400
		update {{
			&control:Hotspot-Cache-Generation := &control:Hotspot-Cache-Generation
		}}
	}}
"""
    generation = "%{control:Hotspot-Cache-Generation}"
    policies = f"""\
	# drop the answers of control:Hotspot-Drop-Key ("router-id:User-Name") and hold the keys
	platform_cache_drop {{
		update control {{
			&Cache-Read-Only := yes
		}}
		platform_generation
		foreach &control:Hotspot-Drop-Key {{
			update control {{
				&Hotspot-Hold-Key := "%{{Foreach-Variable-0}}"
				&Cache-TTL := {cfg.hold_ttl}
			}}
			platform_hold
			update control {{
				&Hotspot-Cache-Key := "{generation}:%{{Foreach-Variable-0}}"
				&Cache-TTL := 0
				&Cache-Read-Only := yes
			}}
			platform_cache
		}}
	}}
	# after the platform accepted: keep its answer unless the key was dropped meanwhile
	platform_cache_store {{
		update control {{
			&Cache-Status-Only := yes
		}}
		platform_hold
		if (notfound) {{
			update control {{
				&Cache-TTL := -{cfg.cache_ttl}
			}}
			platform_cache
			# a drop that landed while the platform was answering: undo the store
			update control {{
				&Cache-Status-Only := yes
			}}
			platform_hold
			if (ok) {{
				update control {{
					&Cache-TTL := 0
				}}
				platform_cache
			}}
		}}
	}}
"""
    authorize = f"""\
update control {{
	&Hotspot-Hold-Key := "%{{client:shortname}}:%{{User-Name}}"
	&Cache-Read-Only := yes
}}
platform_generation
if (notfound) {{
	# none yet (start-up, or a new one being written): a fresh one, so no old entry matches
	update control {{
		&Hotspot-Cache-Generation := "%{{randstr:hhhhhhhhhhhhhhhh}}"
	}}
	platform_generation
}}
update control {{
	&Hotspot-Cache-Key := "%{{control:Hotspot-Cache-Generation}}:%{{control:Hotspot-Hold-Key}}"
	&Cache-Status-Only := yes
}}
platform_hold
if (notfound) {{
	update control {{
		&Cache-Read-Only := yes
	}}
	platform_cache
	if (ok) {{
		if (&control:Hotspot-Expires-At > "%l") {{
			# time-dependent: computed now, from the cached expiry
			update reply {{
				&Session-Timeout := "%{{expr:%{{control:Hotspot-Expires-At}} - %l}}"
			}}
			update control {{
				&Hotspot-Cache-Hit := 1
			}}
		}}
		else {{
			# over since it was cached: the platform says why
			update control {{
				&Cleartext-Password !* ANY
				&Hotspot-Expires-At !* ANY
			}}
			platform_strip_reply
		}}
	}}
}}
if (!&control:Hotspot-Cache-Hit) {{
{_indent(REST_AUTHORIZE, 1)}	platform_cache_store
}}
"""
    accounting = """\
			# the platform names the answers this packet changed (data used against a limit)
			if (&control:Hotspot-Drop-Key) {
				platform_cache_drop
			}
"""
    control = f"""
# The platform drops cached answers here (hotspot/radius_cache.py), right after its change
# commits: Hotspot-Drop-Key per "router-id:User-Name", or a new Hotspot-Cache-Generation.
server platform_cache_control {{
	listen {{
		type = auth
		ipaddr = {cfg.cache_address}
		port = {cfg.cache_port}
	}}
	client platform_cache_control {{
		ipaddr = {cfg.cache_client}
		secret = {_q(cfg.cache_secret)}
		shortname = platform-cache
	}}
	authorize {{
		if (&request:Hotspot-Cache-Generation) {{
			update control {{
				&Hotspot-Cache-Generation := &request:Hotspot-Cache-Generation
				&Cache-TTL := -86400
			}}
			platform_generation
		}}
		update control {{
			&Hotspot-Drop-Key += &request:Hotspot-Drop-Key[*]
		}}
		platform_cache_drop
		update control {{
			&Auth-Type := Accept
		}}
	}}
	authenticate {{
	}}
}}
"""
    return modules, policies, _indent(authorize, 3), accounting, control


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
        directory / "dictionary": DICTIONARY,
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
