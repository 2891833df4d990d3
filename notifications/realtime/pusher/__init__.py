"""Pusher Channels protocol 7 over the same pipeline: `/app/<key>` and `POST /broadcasting/auth`.

consumer.py: the socket; signing.py: the HMAC signatures; views.py: /broadcasting/auth and the
HTTP publish API (`POST /apps/<app_id>/events`).

Existing Laravel Echo / pusher-js clients switch to this platform by changing host, port and key
(docs/pusher.md). Nothing here decides who may see what: a Pusher channel `private-<group>` is the
layer group `<group>`, and `notifications.realtime.access.may_join` is the rule, exactly as on
`/ws/notifications/`. Events are the same `notify.event` messages; the Pusher frame wraps the
pre-serialized `/ws/notifications/` frame as its `data` string.

A Pusher socket connects anonymously and proves each subscription with the HMAC signature that
`/broadcasting/auth` issued. That endpoint also sends the socket a `pusher.grant` (who signed it)
through the layer, so the socket joins its user's and session's groups (revocation closes reach
it) and knows the role (role-restricted events are dropped until the grant says otherwise).

`presence-tenant.<id>` is the same tenant group plus the presence scope `tenant.<id>` of
notifications/realtime/presence/, shared with `/ws/notifications/` tabs: one member however
many tabs or protocols they use. The member comes from the signed `channel_data`. Client events
(`client-*`, off unless PUSHER_CLIENT_EVENTS) travel in Pusher-only groups `pusher-ch.<channel>`,
so the tenant groups shared with /ws/notifications/ never carry a message type it cannot handle.
"""
