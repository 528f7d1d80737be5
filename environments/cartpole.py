"""CartPole-v1 through the gymnax adapter (its physics, our auto-reset), with a picture of its
state (:mod:`rljax.environments.cartpole_render`)."""
from typing import Any

import jax

from rljax.envs.gymnax_adapter import GymnaxEnv


class CartPole(GymnaxEnv):
    """gymnax's CartPole-v1 under rljax's protocol, plus :meth:`render`."""

    render_jittable = True

    def __init__(self) -> None:
        super().__init__("CartPole-v1")

    def render(self, state: Any, params: Any) -> jax.Array:
        """``uint8[160, 240, 3]``: the cart on its track and the pole; jittable."""
        from rljax.environments.cartpole_render import render_cartpole

        return render_cartpole(state, params)


def make_cartpole() -> CartPole:
    return CartPole()
