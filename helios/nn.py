"""Networks by name: a registry for `torch.nn.Module` classes.

Helios 1.x spelling: ``@hln.NETWORK_REGISTRY.register`` on a network class, then
``hln.create_network("MyNet", ...)``.
"""

from __future__ import annotations

from typing import Any, Final

from torch import nn

from helios.core import Registry

__all__ = ["NETWORK_REGISTRY", "create_network"]

#: Network classes by class name; register yours with ``@NETWORK_REGISTRY`` or
#: ``@NETWORK_REGISTRY.register``. It starts empty.
NETWORK_REGISTRY: Final[Registry[nn.Module]] = Registry("network")


def create_network(type_name: str, /, *args: Any, **kwargs: Any) -> nn.Module:
    """Build the network registered as ``type_name`` with the given arguments.

    Raises:
        KeyError: if no network has that name; the message lists the known names.

    Examples:
        >>> from torch import nn
        >>> import helios.nn as hln
        >>> @hln.NETWORK_REGISTRY.register
        ... class Tiny(nn.Module):
        ...     def __init__(self, width: int = 4) -> None:
        ...         super().__init__()
        ...         self.layer = nn.Linear(width, 1)
        >>> hln.create_network("Tiny", width=8).layer.in_features
        8
    """
    return NETWORK_REGISTRY.create(type_name, *args, **kwargs)
