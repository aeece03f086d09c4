"""torch's Adam and Adagrad, without importing ``torch._dynamo`` into a training process.

In torch 2.13 four of ``torch.optim.Optimizer``'s methods (``add_param_group``, ``zero_grad``,
``state_dict``, ``load_state_dict``) are wrapped in ``torch._disable_dynamo``, and every optimizer's
``step`` in ``_use_grad_for_differentiable``; both import ``torch._dynamo`` on their first call, so
merely constructing ``torch.optim.Adam`` pulls in dynamo, sympy and ~820 modules: 71 MB of resident
memory and 1.1 s per process (a fresh process on an idle machine; 1.7 s beside two training jobs),
for a compiler chronorec never runs.

The classes below are torch's own ``Adam`` and ``Adagrad`` (same update kernels, same state and
``state_dict`` format, so checkpoints move freely between them and ``torch.optim``) whose wrapped
methods call the functions the decorators wrap (``inspect.unwrap``), with ``step`` under
``torch.no_grad`` as ``_use_grad_for_differentiable`` does for a non-differentiable optimizer. What is
lost is only what those decorators are for: tracing the optimizer inside ``torch.compile``.
``tests/train/test_optim.py`` checks equal parameters and state against ``torch.optim`` and that a
training process never imports ``torch._dynamo``.
"""

from __future__ import annotations

import inspect
from typing import Any

import torch
from torch.optim.optimizer import Optimizer

_EAGER_METHODS = ("add_param_group", "zero_grad", "state_dict", "load_state_dict")


def _eager(base: type[Optimizer]) -> type[Optimizer]:
    step = inspect.unwrap(base.step)

    def eager_step(self: Optimizer, closure: Any = None) -> Any:
        if self.defaults.get("differentiable"):
            return base.step(self, closure)
        with torch.no_grad():
            return step(self, closure)

    eager_step.__doc__ = step.__doc__
    body: dict[str, Any] = {name: inspect.unwrap(getattr(Optimizer, name)) for name in _EAGER_METHODS}
    body["step"] = eager_step
    body["__doc__"] = f"``torch.optim.{base.__name__}`` without the ``torch._dynamo`` import (see module)."
    body["__module__"] = __name__
    return type(base.__name__, (base,), body)


Adam = _eager(torch.optim.Adam)
Adagrad = _eager(torch.optim.Adagrad)
