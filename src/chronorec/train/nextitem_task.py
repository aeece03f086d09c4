"""Next-item recommendation as a :class:`~chronorec.train.task.Task`: losses and full-ranking evaluation.

Before ``forward`` the task calls the model's optional ``prepare_batch(batch, training)`` hook
(chronorec's next-item models window the batch to ``max_len``; BERT4Rec builds its cloze batch or
appends a ``[MASK]``). After it, training targets sit where ``target_item >= 2`` and the hidden state
that scores a row's next item at evaluation sits at position ``lengths - 1``. Models without the
hook are used as they are.

Losses (``D`` hidden size, ``N`` real target positions in the batch, ``n`` items):

* ``"ce"`` (default): full softmax cross-entropy over all items at every real position, fused and
  chunked (:func:`chronorec.train.full_softmax.full_softmax_ce`); ``loss_precision="bf16"``
  (``--set task.loss_precision=bf16``) runs its matmuls on bfloat16 operands.
* ``"sampled_softmax"``: ``n_negatives`` items shared by the whole batch, sampled uniformly from the
  real items, or in proportion to ``item_counts`` when given, with the logQ correction
  ``s_i - log(k Q_i)`` (Bengio & Senécal 2008; Yi et al. 2019). Under uniform sampling the
  correction is the same constant for every logit and cancels in the softmax, so it is skipped.
  A negative equal to the row's target is masked (an "accidental hit").
* ``"bce"``: one uniform negative per position, ``softplus(-s_pos) + softplus(s_neg)`` (SASRec's
  original loss); a negative equal to the target is dropped.

Independent dropout per target (``dropout_copies=K``, ``--set task.dropout_copies=K``): training one
whole sequence in one pass gives all its targets the same dropout masks on the behaviors they share,
where RecBole's prefixes draw a fresh mask for each target. With ``K > 1`` every training row is
encoded up to ``K`` times, each copy with its own masks, and the row's targets are dealt among the
copies round-robin from a random offset (a row with ``m < K`` targets gets ``m`` copies); every target
is still trained exactly once, so the loss and its normalisation are unchanged and the cost grows by
at most ``K``. It applies to per-position training (SASRec, GRU4Rec, LightSANs, BERT4Rec's cloze
targets), after ``prepare_batch``.

Evaluation: per batch one matmul ``[B, D] @ [D, n]``, padding and UNK scores set to ``-inf``, and the
pessimistic rank of the target (:func:`chronorec.metrics.ranking.ranks_from_scores`). With
``exclude_seen=True`` the items in the batch's history (other than the target) are also removed
and the metrics are reported again under ``*_exclude_seen`` keys. Exclusion sees the history the
batch carries, so give evaluation batches the full history (the model windows it itself).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any, Literal, get_args

import polars as pl
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from chronorec.allocator import mapped_large_blocks
from chronorec.data.batch import Batch
from chronorec.data.schema import FIRST_ID, DatasetSchema
from chronorec.metrics.ranking import DEFAULT_KS, ranking_metrics, ranks_from_scores
from chronorec.train.full_softmax import Precision, full_softmax_ce

LossKind = Literal["ce", "sampled_softmax", "bce"]
LossNorm = Literal["batch", "epoch"]
EXCLUDE_SUFFIX = "_exclude_seen"


class NextItemTask:
    """Full-ranking next-item task (see the module docstring)."""

    name = "next_item"
    # sequences: evaluation runs the whole encoder over every position of each, so a batch costs ~50x
    # a CTR sample; 256 instead of 1024 lowered ml-100k's peak RSS by 85 MB (GRU4Rec) and 185 MB (SASRec)
    eval_batch_size = 256

    def __init__(
        self,
        n_items: int,
        group_names: Sequence[str] = ("head", "tail"),
        *,
        loss: LossKind = "ce",
        n_negatives: int = 256,
        item_counts: Tensor | None = None,
        exclude_seen: bool = False,
        ks: Sequence[int] = DEFAULT_KS,
        select_metric: str = "ndcg@10",
        loss_precision: Precision = "fp32",
        loss_norm: LossNorm = "batch",
        dropout_copies: int = 1,
    ) -> None:
        if dropout_copies < 1:
            raise ValueError(f"task.dropout_copies must be >= 1, got {dropout_copies}")
        if loss_norm not in get_args(LossNorm):
            raise ValueError(f"unknown task.loss_norm {loss_norm!r}; choose batch or epoch")
        if loss_precision not in get_args(Precision):
            raise ValueError(f"unknown task.loss_precision {loss_precision!r}; choose fp32 or bf16")
        if loss not in ("ce", "sampled_softmax", "bce"):
            raise ValueError(f"unknown next-item loss {loss!r}; choose ce, sampled_softmax or bce")
        self.n_items = n_items
        self.group_names = list(group_names)
        self.loss_kind = loss
        self.n_negatives = n_negatives
        self.exclude_seen = exclude_seen
        self.ks = tuple(ks)
        self.select_metric = select_metric
        self.loss_precision = loss_precision
        self.loss_norm = loss_norm
        self.dropout_copies = dropout_copies
        self.terms_per_batch: float | None = None  # loss_norm="epoch": set by calibrate()
        self.sample_prob: Tensor | None = None
        if item_counts is not None:
            q = item_counts.double().clone()
            q[:FIRST_ID] = 0.0  # never sample padding or UNK
            self.sample_prob = (q / q.sum()).float()  # [n_items]

    @classmethod
    def from_schema(cls, schema: DatasetSchema, **options: Any) -> NextItemTask:
        """The task for a prepared dataset: its item vocabulary and its activity-group names."""
        return cls(schema.item_vocab, schema.groups.names, **options)

    # ---- shared -------------------------------------------------------------------------------
    @staticmethod
    def _prepare(model: nn.Module, batch: Batch, training: bool) -> Batch:
        hook = getattr(model, "prepare_batch", None)
        return hook(batch, training) if hook is not None else batch

    @staticmethod
    def _last_states(h: Tensor, lengths: Tensor) -> Tensor:
        """``[B, D]`` hidden state at each row's last real position (``h`` may already be ``[B, D]``)."""
        if h.dim() == 2:
            return h
        return h[torch.arange(h.shape[0], device=h.device), (lengths - 1).clamp_min(0)]  # [B, D]

    # ---- training -----------------------------------------------------------------------------
    def _terms(self, model: nn.Module, batch: Batch) -> tuple[Tensor, Tensor, Tensor, Tensor | None]:
        """One training forward: ``(h [N, D], targets [N], activity group of each term [N], aux loss)``."""
        b = self._prepare(model, batch, training=True)
        if self.dropout_copies > 1 and b.per_position_targets:
            b = self._deal_targets(b, self.dropout_copies)
        out = model(b)
        if b.per_position_targets:
            real = b.target_item >= FIRST_ID  # [B, L]
            h, t = out.logits[real], b.target_item[real]  # [N, D], [N]
            rows = real.nonzero()[:, 0]  # [N] batch row of each term
        else:
            h = self._last_states(out.logits, b.lengths)  # [B, D]
            keep = b.target_item >= FIRST_ID
            h, t, rows = h[keep], b.target_item[keep], keep.nonzero()[:, 0]
        return h, t, b.group.to(h.device)[rows], out.aux_loss

    @staticmethod
    def _deal_targets(b: Batch, K: int) -> Batch:
        """Up to ``K`` copies of each row of a per-position batch, the row's targets dealt among them
        round-robin from a random offset; copies that would get no target are left out."""
        real = b.target_item >= FIRST_ID  # [B, L]
        n = real.sum(1)  # [B] targets per row
        offset = (torch.rand(n.shape, device=n.device) * n.clamp_min(1)).long()  # [B] in [0, n)
        rank = real.long().cumsum(1) - 1 + offset[:, None]  # [B, L] dealing order of each target
        copy = torch.arange(K, device=n.device)  # [K]
        used = copy[None, :] < n[:, None].clamp_max(K)  # [B, K] copies that get a target
        rows, ks = used.nonzero(as_tuple=True)  # [R], [R] row and copy number of each kept copy
        out = b.select(rows)
        mine = real[rows] & (rank[rows] % n[rows, None].clamp(1, K) == ks[:, None])  # [R, L]
        out.target_item = out.target_item.masked_fill(~mine, 0)
        return out

    def _mean_loss(self, h: Tensor, t: Tensor, W: Tensor) -> Tensor:
        """The configured loss, averaged over the ``N`` terms ``h [N, D]``, ``t [N]``."""
        if self.loss_kind == "ce":
            return full_softmax_ce(h, W, t, precision=self.loss_precision)
        if self.loss_kind == "sampled_softmax":
            return self._sampled_softmax(h, t, W)
        return self._bce(h, t, W)

    def calibrate(self, loader: Any) -> None:
        """``loss_norm="epoch"``: fix the run's divisor from the training loader, the mean number of
        target positions per batch (``batch_size`` x the rows' mean trained targets, ``row_terms``;
        for BERT4Rec's masked positions about a constant multiple of it, which Adam does not see)."""
        if self.loss_norm == "epoch":
            self.terms_per_batch = max(float(loader.row_terms().mean()) * loader.batch_size, 1.0)

    def loss(self, model: nn.Module, batch: Batch) -> Tensor:
        h, t, _, aux = self._terms(model, batch)
        loss = self._mean_loss(h, t, model.item_weights())
        if self.terms_per_batch is not None:  # the batch's sum over a run constant, not its mean
            loss = loss * (h.shape[0] / self.terms_per_batch)
        return loss if aux is None else loss + aux

    def group_losses(self, model: nn.Module, batch: Batch, n_groups: int) -> tuple[Tensor, Tensor, Tensor | None]:
        """Per activity group (``batch.group``), from ONE forward pass: ``(L_z [K], n_z [K], aux)``.

        ``L_z`` is the mean loss over group z's terms (target positions, after ``prepare_batch``), 0
        when it has none; ``n_z`` counts them. Long-tail strategies weight groups with these
        (:class:`~chronorec.longtail.aggregation.GroupAggregatedTask`): a term is a target position,
        not a batch row, since a row holds up to ``max_len`` of them.
        """
        h, t, group, aux = self._terms(model, batch)
        W = model.item_weights()  # [n, D]
        counts = torch.bincount(group, minlength=n_groups)  # [K]
        zero = h.sum() * 0.0  # keeps the graph for a group without terms
        means = [self._mean_loss(h[group == z], t[group == z], W) if int(counts[z]) else zero
                 for z in range(n_groups)]
        return torch.stack(means), counts, aux

    def _negatives(self, k: int, device: torch.device) -> Tensor:
        if self.sample_prob is None:
            return torch.randint(FIRST_ID, self.n_items, (k,), device=device)
        return torch.multinomial(self.sample_prob.to(device), k, replacement=True)

    def _sampled_softmax(self, h: Tensor, t: Tensor, W: Tensor) -> Tensor:
        neg = self._negatives(self.n_negatives, h.device)  # [k], shared by the batch
        s_pos = (h * W[t]).sum(-1)  # [N]
        s_neg = h @ W[neg].T  # [N, k]
        if self.sample_prob is not None:  # logQ correction; uniform sampling makes it a constant
            log_kq = torch.log(self.n_negatives * self.sample_prob.to(h.device))  # [n]
            s_pos = s_pos - log_kq[t]
            s_neg = s_neg - log_kq[neg][None, :]
        s_neg = s_neg.masked_fill(neg[None, :] == t[:, None], float("-inf"))  # accidental hits
        logits = torch.cat([s_pos[:, None], s_neg], dim=1)  # [N, 1 + k], the positive in column 0
        return F.cross_entropy(logits, torch.zeros_like(t))

    def _bce(self, h: Tensor, t: Tensor, W: Tensor) -> Tensor:
        neg = torch.randint(FIRST_ID, self.n_items, t.shape, device=h.device)  # [N], one per position
        s_pos = (h * W[t]).sum(-1)  # [N]
        s_neg = (h * W[neg]).sum(-1)  # [N]
        valid = (neg != t).to(s_neg.dtype)  # [N]
        return F.softplus(-s_pos).mean() + (F.softplus(s_neg) * valid).sum() / valid.sum().clamp_min(1.0)

    # ---- evaluation ---------------------------------------------------------------------------
    @torch.no_grad()
    def _rank_batches(self, model: nn.Module, batches: Iterable[Batch]) -> dict[str, Tensor]:
        was_training = model.training
        model.eval()
        cols: dict[str, list[Tensor]] = {"user": [], "item": [], "group": [], "rank": [], "rank_ex": []}
        buf: Tensor | None = None  # one [B, n] score buffer for the pass (no fresh 12 MB mapping per batch)
        # see chronorec.allocator: large blocks mapped, so the pass does not fragment the heap
        with mapped_large_blocks():
            try:
                W = model.item_weights()  # [n, D]
                for batch in batches:
                    if batch.per_position_targets:
                        raise ValueError("evaluation batches need one target per row (target_item [B])")
                    b = self._prepare(model, batch, training=False)
                    h = self._last_states(model(b).logits, b.lengths)  # [B, D]
                    if buf is None or buf.shape[0] < h.shape[0] or buf.dtype != h.dtype:
                        buf = torch.empty(h.shape[0], W.shape[0], dtype=h.dtype, device=h.device)
                    scores = torch.mm(h, W.T, out=buf[: h.shape[0]])  # [B, n]
                    scores[:, :FIRST_ID] = float("-inf")  # padding and UNK are never recommended
                    target = batch.target_item  # [B]
                    cols["rank"].append(ranks_from_scores(scores, target))
                    if self.exclude_seen:
                        seen = torch.zeros_like(scores, dtype=torch.bool).scatter_(1, batch.hist_item, True)  # [B, n]
                        cols["rank_ex"].append(ranks_from_scores(scores, target, exclude=seen))
                    cols["user"].append(batch.user)
                    cols["item"].append(target)
                    cols["group"].append(batch.group)
            finally:
                model.train(was_training)
        empty = torch.empty(0, dtype=torch.long)
        return {k: torch.cat(v).cpu() if v else empty for k, v in cols.items()}

    def _metrics(self, r: dict[str, Tensor], rows: Tensor | None) -> dict[str, float]:
        ranks = r["rank"] if rows is None else r["rank"][rows]  # [n_samples]
        out: dict[str, float] = ranking_metrics(ranks, self.ks)
        if self.exclude_seen:
            ranks_ex = r["rank_ex"] if rows is None else r["rank_ex"][rows]
            out.update(ranking_metrics(ranks_ex, self.ks, suffix=EXCLUDE_SUFFIX))
        out["n"] = int(ranks.numel())
        return out

    def evaluate(self, model: nn.Module, batches: Iterable[Batch]) -> dict:
        """``{"ndcg@10": .., "hit@10": .., "mrr@10": .., ..., "n": .., "groups": {name: {...}}}``.

        Groups with no sample in the split are left out of ``"groups"``.
        """
        r = self._rank_batches(model, batches)
        out: dict = self._metrics(r, None)
        groups: dict[str, dict[str, float]] = {}
        for g in torch.unique(r["group"]).tolist():
            name = self.group_names[g] if 0 <= g < len(self.group_names) else f"group{g}"
            groups[name] = self._metrics(r, r["group"] == g)
        out["groups"] = groups
        return out

    def predict(self, model: nn.Module, batches: Iterable[Batch]) -> pl.DataFrame:
        """One row per sample: internal ``user`` and target ``item`` ids, its ``group`` and ``rank``
        (plus ``rank_exclude_seen`` when that option is on)."""
        r = self._rank_batches(model, batches)
        data = {k: r[k].numpy() for k in ("user", "item", "group", "rank")}
        if self.exclude_seen:
            data["rank" + EXCLUDE_SUFFIX] = r["rank_ex"].numpy()
        return pl.DataFrame(data).with_columns(pl.all().cast(pl.Int64))
