"""The support console: the Django admin as VirtEngine support's place to work escalations.

Ticket models are read-only there; every change is a form or an action that calls a service, so it writes
its event, is broadcast and anchored like a change made anywhere else.
"""
