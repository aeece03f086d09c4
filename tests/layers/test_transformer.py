"""TransformerBlock / TransformerEncoder: shapes, padding safety, causality, no NaN on empty rows."""

from __future__ import annotations

import torch

from chronorec.layers.dropout import Dropout
from chronorec.layers.transformer import TransformerBlock, TransformerEncoder


def _inputs(lengths: list[int], L: int = 6, D: int = 8) -> tuple[torch.Tensor, torch.Tensor]:
    torch.manual_seed(0)
    x = torch.randn(len(lengths), L, D)  # [B, L, D]
    mask = torch.arange(L)[None, :] < torch.tensor(lengths)[:, None]  # [B, L]
    return x, mask


def test_padding_invariance_and_no_nan() -> None:
    enc = TransformerEncoder(2, 8, 2, 16, dropout=0.0).eval()
    x, mask = _inputs([6, 3, 0])
    for causal in (False, True):
        y = enc(x, mask, causal)
        assert y.shape == x.shape
        assert torch.isfinite(y).all()
        assert (y[~mask] == 0).all()  # padded rows, incl. a fully padded sequence, are exactly zero
        junk = torch.where(mask[..., None], x, torch.randn_like(x) * 100)
        torch.testing.assert_close(enc(junk, mask, causal), y)


def test_causal_prefix_independence() -> None:
    enc = TransformerEncoder(1, 8, 2, 16).eval()
    x, mask = _inputs([6, 6])
    y = enc(x, mask, causal=True)
    x2 = x.clone()
    x2[:, 4:] = torch.randn(2, 2, 8)  # change the future
    y2 = enc(x2, mask, causal=True)
    torch.testing.assert_close(y[:, :4], y2[:, :4])
    assert not torch.allclose(enc(x2, mask, causal=False)[:, :4], enc(x, mask, causal=False)[:, :4])


def test_block_gradients_finite_with_empty_row() -> None:
    blk = TransformerBlock(8, 2, 16, dropout=0.1, act="relu")
    x, mask = _inputs([4, 0])
    x.requires_grad_(True)
    blk(x, mask, causal=True).sum().backward()
    assert x.grad is not None and torch.isfinite(x.grad).all()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in blk.parameters())


def test_extra_attention_mask_restricts() -> None:
    enc = TransformerEncoder(1, 8, 2, 16).eval()
    x, mask = _inputs([6])
    same = torch.zeros(1, 6, 6, dtype=torch.bool)
    same[:, :3, :3] = True
    same[:, 3:, 3:] = True  # two blocks, like two sessions
    y = enc(x, mask, attn_mask=same)
    x2 = x.clone()
    x2[:, 3:] += 1.0
    torch.testing.assert_close(enc(x2, mask, attn_mask=same)[:, :3], y[:, :3])


def test_ffn_dropout_zero_is_recboles_feed_forward() -> None:
    """``ffn_dropout=0`` drops nothing inside the feed-forward (RecBole's layout) and keeps the
    parameter names of the default block, so a checkpoint loads either way."""
    torch.manual_seed(0)
    default = TransformerBlock(8, 2, 16, dropout=0.5).train()
    recbole = TransformerBlock(8, 2, 16, dropout=0.5, ffn_dropout=0.0).train()
    assert list(default.state_dict()) == list(recbole.state_dict())
    recbole.load_state_dict(default.state_dict())
    h = torch.randn(3, 5, 8)
    torch.testing.assert_close(recbole.ffn(h), recbole.ffn(h))  # deterministic in training mode
    assert not torch.equal(default.ffn(h), default.ffn(h))  # the default drops inner activations
    assert isinstance(default.ffn[2], Dropout) and default.ffn[2].p == 0.5
    assert TransformerBlock(8, 2, 16, dropout=0.5, ffn_dropout=0.1).ffn[2].p == 0.1
    enc = TransformerEncoder(2, 8, 2, 16, dropout=0.5, ffn_dropout=0.0)
    assert all(isinstance(layer.ffn[2], torch.nn.Identity) for layer in enc.layers)


def test_reading_some_positions_computes_those_outputs_exactly() -> None:
    """``read``: the last layer computes only the read positions; they equal the full pass, the rest are zero,
    and the parameters get the same gradients from a loss on the read positions."""
    from chronorec.layers.transformer import read_rows

    torch.manual_seed(0)
    lengths = torch.tensor([12, 5, 1, 0])
    mask = torch.arange(12)[None] < lengths[:, None]  # [4, 12]
    read = torch.zeros(4, 12, dtype=torch.bool)
    read[0, 9:12] = True
    read[1, [2, 4]] = True
    read[2, 0] = True
    read[3, 3] = True  # a padded position: never read
    for causal in (True, False):
        enc = TransformerEncoder(n_layers=2, dim=16, heads=2, inner=32, dropout=0.0)
        x = torch.randn(4, 12, 16)
        full = enc(x, mask, causal)
        gw = torch.autograd.grad(full[read & mask].square().sum(), enc.layers[0].attn.qkv.weight)[0]
        part = enc(x, mask, causal, read=read)
        assert torch.allclose(part[read & mask], full[read & mask], atol=1e-5)
        assert (part[~(read & mask)] == 0).all()
        gp = torch.autograd.grad(part[read & mask].square().sum(), enc.layers[0].attn.qkv.weight)[0]
        assert torch.allclose(gp, gw, atol=1e-5)
    assert read_rows(torch.ones(2, 8, dtype=torch.bool), 8) is None  # reading most positions: no packing
    pos, real = read_rows(read & mask, 12)
    assert pos.shape == (4, 3) and real.sum().item() == 6 and pos[0].tolist() == [9, 10, 11]
