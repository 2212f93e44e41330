"""Reverse mode over the recorded entries: GradientTape, the backward walk, jacobians,
custom_gradient and the functional transforms (written with the ops below)."""

from .forward import ForwardAccumulator

__all__ = ["ForwardAccumulator"]
