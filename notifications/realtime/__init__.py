"""The realtime transport: channel layer, socket consumers, Pusher protocol, presence, revocation.

It knows groups, frames and sockets, never a domain app: who is blocked, which records exist and
who may edit them come through `access.policy`, which the notifications app sets in its
`ready()` (notifications/policy.py). See docs/architecture.md.
"""
