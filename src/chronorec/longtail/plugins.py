"""PIN stage two: plugin prediction networks, one per activity group, around any model.

The shared model (backbone + its prediction network) is trained first (:mod:`.aggregation`). Each
group ``z`` then gets its own copy of the prediction network, initialised from the shared one and
trained on that group's rows while the backbone stays frozen (option: fine-tuned with a smaller lr).
At prediction and serving time every row is routed to its group's plugin.

What the "prediction network" is depends on the model, found without branching on its name:

- models with an MLP tower named by ``plugin_modules`` (default ``("mlp", "bias")``, the CTR models'
  MLP head and per-item bias) — the plugin is a copy of those parameters, applied with
  :func:`torch.func.functional_call`, so the model's own forward runs unchanged with group ``z``'s
  head swapped in;
- models without such modules (next-item encoders scoring ``<h, E[i]>``) — the plugin is a residual
  adapter on the final hidden state, ``h_z = h + W2 relu(W1 h)`` with ``W2`` zero-initialised, so
  stage two starts exactly at the shared model.

Routing is by ``batch.group`` (saved with the prepared data; unseen users fall in the tail group).
Because the backbone is frozen, training all plugins on all rows at once is the same as training
each plugin on its own group's data: rows of group z reach only plugin z.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn
from torch.func import functional_call

from chronorec.data.batch import Batch
from chronorec.models.base import Explanation, ModelOutput

DEFAULT_PLUGIN_MODULES = ("mlp", "bias")


def _safe(name: str) -> str:
    return name.replace(".", "__")


class ResidualAdapter(nn.Module):
    """``h + W2 relu(W1 h)``, ``W2 = 0`` at start. ``[..., D] -> [..., D]``."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.up = nn.Linear(dim, dim)
        self.down = nn.Linear(dim, dim)
        nn.init.zeros_(self.down.weight)
        nn.init.zeros_(self.down.bias)

    def forward(self, h: Tensor) -> Tensor:
        return h + self.down(torch.relu(self.up(h)))


class PluginModel(nn.Module):
    """``base`` with one prediction network per group, routed by ``batch.group``.

    >>> from chronorec.data.batch import synthetic_batch
    >>> # model = PluginModel(create_model("din", schema), n_groups=2); model(synthetic_batch()).logits.shape
    """

    def __init__(self, base: nn.Module, n_groups: int, plugin_modules: Sequence[str] = DEFAULT_PLUGIN_MODULES) -> None:
        super().__init__()
        self.base = base
        self.task = getattr(base, "task", "ctr")
        self.n_groups = n_groups
        names = {n for n, m in base.named_children() if m is not None}
        self.head_modules = tuple(m for m in plugin_modules if m in names)
        self.head_params = [
            n for n, _ in base.named_parameters() if n.split(".", 1)[0] in self.head_modules
        ]
        if self.head_params:
            shared = dict(base.named_parameters())
            self.plugins = nn.ModuleList(
                nn.ParameterDict({_safe(n): nn.Parameter(shared[n].detach().clone()) for n in self.head_params})
                for _ in range(n_groups)
            )
            self.adapters = None
        else:
            dim = int(base.item_weights().shape[1])
            self.plugins = None
            self.adapters = nn.ModuleList(ResidualAdapter(dim) for _ in range(n_groups))

    # -- stage two set-up ---------------------------------------------------------------------------
    def reset_plugins(self) -> None:
        """Copy the shared prediction network into every plugin (after loading the backbone weights);
        adapters are reset to the identity."""
        with torch.no_grad():
            if self.plugins is not None:
                shared = dict(self.base.named_parameters())
                for plugin in self.plugins:
                    for n in self.head_params:
                        plugin[_safe(n)].copy_(shared[n])
            else:
                for adapter in self.adapters:  # type: ignore[union-attr]
                    nn.init.zeros_(adapter.down.weight)
                    nn.init.zeros_(adapter.down.bias)

    def configure_stage_two(self, finetune_backbone: bool, backbone_lr_scale: float) -> None:
        """Freeze the backbone (default) or let it train at ``backbone_lr_scale`` x the plugins' lr."""
        self._backbone_lr_scale = backbone_lr_scale if finetune_backbone else 0.0
        for p in self.base.parameters():
            p.requires_grad_(finetune_backbone)

    def param_groups(self, lr: float) -> list[dict]:
        """Optimizer parameter groups: plugins at ``lr``, a fine-tuned backbone at a lower lr."""
        groups: list[dict] = [{"params": self.plugin_parameters(), "lr": lr}]
        scale = getattr(self, "_backbone_lr_scale", 0.0)
        if scale > 0:
            groups.append({"params": [p for p in self.base.parameters() if p.requires_grad], "lr": lr * scale})
        return groups

    # -- which parameters train in stage two --------------------------------------------------------
    def plugin_parameters(self) -> list[nn.Parameter]:
        mods = self.plugins if self.plugins is not None else self.adapters
        return list(mods.parameters())  # type: ignore[union-attr]

    def backbone_parameters(self) -> list[nn.Parameter]:
        return list(self.base.parameters())

    # -- forward -------------------------------------------------------------------------------------
    def forward(self, batch: Batch) -> ModelOutput:
        if self.plugins is None:
            out = self.base(batch)
            h = out.logits  # [B, L, D] or [B, D]
            routed = torch.zeros_like(h)
            for z, adapter in enumerate(self.adapters):  # type: ignore[arg-type]
                rows = batch.group == z  # [B]
                if bool(rows.any()):
                    routed[rows] = adapter(h[rows])
            return ModelOutput(logits=routed, aux_loss=out.aux_loss)
        logits = None
        aux: Tensor | None = None
        for z in range(self.n_groups):
            rows = (batch.group == z).nonzero().squeeze(1)  # [Bz]
            if rows.numel() == 0:
                continue
            params = {n: self.plugins[z][_safe(n)] for n in self.head_params}
            out = functional_call(self.base, params, (batch.select(rows),), strict=False)
            if logits is None:
                logits = out.logits.new_zeros((len(batch), *out.logits.shape[1:]))
            logits = logits.index_copy(0, rows, out.logits)
            if out.aux_loss is not None:
                aux = out.aux_loss * rows.numel() / len(batch) + (0 if aux is None else aux)
        if logits is None:  # empty batch
            return self.base(batch)
        return ModelOutput(logits=logits, aux_loss=aux)

    # -- what the task and the analysis call on the wrapped model ----------------------------------
    def item_weights(self) -> Tensor:
        return self.base.item_weights()

    def prepare_batch(self, batch: Batch, training: bool) -> Batch:
        hook = getattr(self.base, "prepare_batch", None)
        return hook(batch, training) if hook is not None else batch

    def explain(self, batch: Batch) -> Explanation:
        return self.base.explain(batch)
