"""chronorec.train.optim: torch's Adam / Adagrad minus the torch._dynamo import.

Checked against torch.optim itself: the same parameters and state after several steps (fused and
per-tensor, with weight decay), state_dicts that load both ways, and a training process (a real
`chronorec train` on prepared data) that finishes without `torch._dynamo` in `sys.modules`.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from chronorec.train import optim

PAIRS = [(optim.Adam, torch.optim.Adam), (optim.Adagrad, torch.optim.Adagrad)]


def _params(seed: int = 0) -> list[torch.nn.Parameter]:
    g = torch.Generator().manual_seed(seed)
    return [torch.nn.Parameter(torch.randn(*shape, generator=g)) for shape in ((7, 3), (5,), (2, 4, 3))]


def _grads(step: int, params: list[torch.nn.Parameter]) -> None:
    g = torch.Generator().manual_seed(1000 + step)
    for p in params:
        p.grad = torch.randn(p.shape, generator=g)


def _train(cls, params, steps: int, **kw):
    opt = cls(params, **kw)
    for step in range(steps):
        opt.zero_grad(set_to_none=True)
        _grads(step, params)
        opt.step()
    return opt


@pytest.mark.parametrize(("ours", "theirs"), PAIRS, ids=["adam", "adagrad"])
@pytest.mark.parametrize("fused", [False, True])
def test_same_updates_and_state_as_torch(ours, theirs, fused: bool) -> None:
    kw = {"lr": 0.05, "weight_decay": 0.01, "fused": fused}
    a, b = _params(), _params()
    oa, ob = _train(ours, a, 6, **kw), _train(theirs, b, 6, **kw)
    for pa, pb in zip(a, b, strict=True):
        assert torch.equal(pa, pb)
        assert not pa.requires_grad or pa.grad is not None
    sa, sb = oa.state_dict(), ob.state_dict()
    assert sa["param_groups"] == sb["param_groups"]
    for i, st in sb["state"].items():
        assert set(sa["state"][i]) == set(st)
        for key, value in st.items():
            assert torch.equal(sa["state"][i][key], value), key
    assert type(oa).__name__ == theirs.__name__ and isinstance(oa, theirs)


@pytest.mark.parametrize(("ours", "theirs"), PAIRS, ids=["adam", "adagrad"])
def test_state_dicts_load_both_ways(ours, theirs) -> None:
    kw = {"lr": 0.05, "fused": True}
    ref = _params()
    _train(theirs, ref, 8, **kw)  # 8 uninterrupted steps
    for first, second in ((ours, theirs), (theirs, ours)):
        p = _params()
        sd = _train(first, p, 4, **kw).state_dict()
        opt = second(p, **kw)
        opt.load_state_dict(sd)
        for step in range(4, 8):
            opt.zero_grad()
            _grads(step, p)
            opt.step()
        for x, y in zip(p, ref, strict=True):
            assert torch.equal(x, y), (first.__module__, second.__module__)


def test_step_runs_without_grad_mode_and_takes_a_closure() -> None:
    p = _params()
    opt = optim.Adam(p, lr=0.1)

    def closure() -> torch.Tensor:
        assert torch.is_grad_enabled()  # torch.optim re-enables grad for the closure
        opt.zero_grad()
        loss = sum((x ** 2).sum() for x in p)
        loss.backward()
        return loss

    with torch.enable_grad():
        loss = opt.step(closure)
    assert torch.is_grad_enabled() and loss is not None and float(loss.detach()) > 0
    assert all(not x.grad_fn for x in p)


def test_training_process_never_imports_dynamo(tiny_nextitem_dataset: Path, tmp_path: Path) -> None:
    """The whole train path (config, data, model, deterministic mode, optimizer, the plateau
    learning-rate schedule, checkpoints, evaluation) in a fresh interpreter: no torch._dynamo, hence
    no sympy, in the process."""
    code = (
        "import sys, chronorec as cr\n"
        f"cr.fit({str(tiny_nextitem_dataset)!r}, 'sasrec', seed=0, epochs=2, out={str(tmp_path)!r},"
        " verbose=False, train={'batch_size': 32, 'lr_decay': 0.5})\n"
        "bad = sorted(m for m in ('torch._dynamo', 'torch._inductor', 'sympy') if m in sys.modules)\n"
        "print('LOADED', bad)\n"
    )
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).parents[2] / "src")}
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "LOADED []" in done.stdout, done.stdout
