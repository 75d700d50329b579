"""Optimizers by name: a registry of `torch.optim` classes and your own.

Helios 1.x spelling: ``hlo.create_optimizer("SGD", net.parameters(), lr=0.01)``.
"""

from __future__ import annotations

from typing import Any, Final

from torch import optim

from helios.core import Registry

__all__ = ["OPTIMIZER_REGISTRY", "create_optimizer"]

#: Optimizer classes by class name: torch's own (``"SGD"``, ``"Adam"``, ``"AdamW"``, ...,
#: every `torch.optim.Optimizer` subclass that `torch.optim` exports) and those you
#: register with ``@OPTIMIZER_REGISTRY`` or ``OPTIMIZER_REGISTRY.register(cls)``.
OPTIMIZER_REGISTRY: Final[Registry[optim.Optimizer]] = Registry("optimizer")


def _register_torch_optimizers(registry: Registry[optim.Optimizer]) -> None:
    # Read from torch.optim itself, so that the list follows the installed torch.
    for name in sorted(dir(optim)):
        value = getattr(optim, name)
        is_optimizer = isinstance(value, type) and issubclass(value, optim.Optimizer)
        if is_optimizer and value is not optim.Optimizer:
            registry.register(value)


_register_torch_optimizers(OPTIMIZER_REGISTRY)


def create_optimizer(type_name: str, /, *args: Any, **kwargs: Any) -> optim.Optimizer:
    """Build the optimizer registered as ``type_name`` with the given arguments.

    Args:
        type_name: A class name in `OPTIMIZER_REGISTRY` (``"SGD"``, ``"Adam"``, ...).
        *args: Passed to the class (usually the parameters first).
        **kwargs: Passed to the class (``lr=...``, ...).

    Raises:
        KeyError: if no optimizer has that name; the message lists the known names.

    Examples:
        >>> import torch
        >>> import helios.optim as hlo
        >>> net = torch.nn.Linear(2, 1)
        >>> type(hlo.create_optimizer("SGD", net.parameters(), lr=0.1)).__name__
        'SGD'
    """
    return OPTIMIZER_REGISTRY.create(type_name, *args, **kwargs)
