"""Signals sent by hotspot.services (receivers run inside the service's transaction).

All carry `by` (acting User or None for the system/payment provider) and:
- package_created / package_updated: `package` (+ `changed` for updates)
- hotspot_user_created / hotspot_user_expired / hotspot_user_disabled: `hotspot_user`
"""

from django.dispatch import Signal

package_created = Signal()
package_updated = Signal()
hotspot_user_created = Signal()
hotspot_user_expired = Signal()
hotspot_user_disabled = Signal()

# --- routers and RADIUS (hotspot.services router_*, hotspot.radius) ---------------------------
# router_added / router_updated (+ `changed`) / router_removed: `router` (removed: the
# unsaved instance as it was, pk kept), `by`.
# router_first_seen / router_silent: `router` (no `by`: the router itself or the sweep).
# session_started / session_ended: `session`; data_limit_warning: `hotspot_user`, `percent`;
# hotspot_user_cut_off: `hotspot_user`, `reason` ("data" or "time");
# disconnect_failed: `session`, `reason` ("nak" or "no_answer").
router_added = Signal()
router_updated = Signal()
router_removed = Signal()
router_first_seen = Signal()
router_silent = Signal()
session_started = Signal()
session_ended = Signal()
data_limit_warning = Signal()
hotspot_user_cut_off = Signal()
disconnect_failed = Signal()
