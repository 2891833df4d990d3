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
