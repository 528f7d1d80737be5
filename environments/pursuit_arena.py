"""The pursuit arena's fixed facts, shared by its dynamics (:mod:`rljax.environments.pursuit_evasion`)
and its drawing (:mod:`rljax.environments.pursuit_render`) without either importing the other."""

PURSUER, EVADER = 0, 1
ROLES = ("pursuer", "evader")
ARENA_HALF = 10.0  # the arena is [-10, 10]^2
