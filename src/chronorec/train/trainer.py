"""The training loop: epochs over a seeded permutation, periodic evaluation, early selection, exact resume.

One :class:`Trainer` drives any model through a :class:`~chronorec.train.task.Task`; it knows nothing
of labels or rankings. Per step it does forward + loss (the task's), backward, global-norm clipping
and an optimizer step; the loss is accumulated on the device and read back only when logged.

Evaluation runs every ``eval_every`` epochs or steps on the validation split (rank 0, inference mode,
big batches). The task's ``select_metric`` (higher is better) picks ``checkpoints/best.pt``;
``patience`` evaluations without improvement stop the run; with ``train.lr_decay`` fewer of them
(``lr_decay_patience`` + 1) cut the learning rate first. At the end the best weights are scored on
the test split and ``metrics.json`` is written. With ``train.ema_decay`` an exponential moving
average of the weights (updated after every step) is what is evaluated, selected and kept in best.pt.

Starting, resuming and launching under ``torchrun`` (run folder, PIN's phases) live in
:mod:`chronorec.train.launch`.

Exact resume: ``checkpoints/last.pt`` is written every ``checkpoint_every`` steps and at every
evaluation with the data position (epoch, next batch of that epoch's permutation), optimizer state
(the current rates), the plateau schedule's state, selection state and every rank's RNG states. The
loader's permutation depends only on (seed, epoch), so :func:`chronorec.train.launch.resume` replays
the remaining batches in the same order with the same random streams and finishes with the same
metrics as an uninterrupted run (same threads, same world size).
"""

from __future__ import annotations

import math
import os
import sys
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from time import perf_counter
from typing import Any

import torch
from tqdm.auto import tqdm

from chronorec.allocator import keep_heap
from chronorec.errors import ChronorecError, warn
from chronorec.longtail import PluginModel
from chronorec.train import build
from chronorec.train.checkpoint import (
    capture_rng,
    load_checkpoint,
    load_weights,
    restore_rng,
    save_checkpoint,
    seed_everything,
)
from chronorec.train.config import RunConfig, default_threads
from chronorec.train.ddp import (
    DistInfo,
    all_gather,
    all_min,
    barrier,
    broadcast,
    wrap_model,
)
from chronorec.train.runs import (
    CONFIG,
    ENV,
    METRICS,
    METRICS_LOG,
    MetricsLog,
    checkpoint_path,
    environment,
    predict_in_order,
    write_json,
)


@dataclass
class TrainState:
    """Where a run stands; saved in every checkpoint (plain numbers and dicts)."""

    epoch: int = 0  # epoch to continue with (0-based)
    batch_in_epoch: int = 0  # next batch of that epoch's permutation
    global_step: int = 0
    best_metric: float = float("-inf")
    best_epoch: float = -1.0  # epochs completed when the best was evaluated (fractional for step evals)
    best_step: int = -1
    best_valid: dict = field(default_factory=dict)
    patience_counter: int = 0
    stopped: bool = False
    metrics_lines: int = 0
    last_eval_step: int = -1
    loss_sum: float = 0.0  # training loss since the last evaluation (rank 0's)
    loss_count: int = 0
    samples_seen: int = 0  # over all ranks
    train_seconds: float = 0.0  # time in training steps (data + forward + backward + update)
    elapsed: float = 0.0  # wall time of the run so far, evaluations included

    @classmethod
    def from_checkpoint(cls, ckpt: dict[str, Any]) -> TrainState:
        return cls(**{f.name: ckpt[f.name] for f in fields(cls) if f.name in ckpt})


def configure_torch(threads: int, deterministic: bool) -> None:
    """Process-wide torch (and glibc allocator) settings of a training process (the trainer and
    ``chronorec bench train``).

    Deterministic mode also makes torch fill every ``torch.empty`` with NaN, a debugging aid against
    reads of uninitialised memory; chronorec writes what it allocates before reading it, so the fill
    is switched off: it rewrote the full-softmax loss's 9-18 MB logits buffer every step (GRU4Rec on
    amazon-beauty, bf16 loss: 2.9% less CPU per sample, 4 of 4 alternating rounds; DIN unchanged)."""
    torch.set_num_threads(threads)
    keep_heap()  # glibc: training's large blocks stay on the heap (chronorec.allocator)
    # process-wide: set both ways. torch.use_deterministic_algorithms also sets inductor's config flag,
    # importing torch._dynamo to do so (71 MB, 1.1 s; chronorec.train.optim); without a compiler
    # loaded, the flag that eager kernels read is all there is to set.
    if "torch._inductor.config" in sys.modules or not hasattr(torch._C, "_set_deterministic_algorithms"):
        torch.use_deterministic_algorithms(deterministic, warn_only=True)
    else:
        torch._C._set_deterministic_algorithms(deterministic, warn_only=True)
    torch.utils.deterministic.fill_uninitialized_memory = False


def _show_progress() -> bool:
    return sys.stderr.isatty() and os.environ.get("CI", "").lower() not in ("true", "1")


def _fmt(metrics: dict[str, Any]) -> str:
    return " ".join(f"{k}={v:.4f}" for k, v in metrics.items() if isinstance(v, float))


class Trainer:
    """Trains one run in ``run_dir`` (fresh, or continued from ``checkpoints/last.pt``)."""

    def __init__(
        self, config: RunConfig, run_dir: Path, info: DistInfo, *, resume: bool = False,
        command: list[str] | None = None, verbose: bool = True,
    ) -> None:
        self.config, self.run_dir, self.info, self.verbose = config, run_dir, info, verbose
        tc = config.train
        self.threads = tc.threads or default_threads(info.local_world_size)
        configure_torch(self.threads, tc.deterministic)
        seed_everything(tc.seed)
        self.dataset = build.open_dataset(config.data)
        self.task = build.make_training_task(config, self.dataset)
        self.raw_model = build.make_run_model(config, self.dataset.schema).to(info.device)
        last = checkpoint_path(run_dir, "last")
        if isinstance(self.raw_model, PluginModel):  # PIN stage two
            lt = config.longtail
            if lt.init_from and not (resume and last.is_file()):
                load_weights(self.raw_model.base, load_checkpoint(Path(lt.init_from)), Path(lt.init_from),
                             f"the backbone model {config.model!r}")
                self.raw_model.reset_plugins()
            self.raw_model.configure_stage_two(lt.finetune_backbone, lt.backbone_lr_scale)
        self.ema = build.make_weight_average(self.raw_model, tc)  # None unless train.ema_decay
        self.optimizer = build.make_optimizer(self.raw_model, tc)
        self.lr_schedule = build.make_lr_schedule(self.optimizer, tc)  # None: a constant rate
        if info.rank > 0:
            torch.manual_seed(tc.seed + info.rank)  # own dropout stream; DDP syncs the initial weights
        self.state = TrainState()
        self.log = MetricsLog(run_dir / METRICS_LOG)
        if resume and last.is_file():
            self._restore(load_checkpoint(last))
        elif info.is_main:
            self.log.truncate(0)
            config.save(run_dir / CONFIG)
            write_json(run_dir / ENV, environment(tc.seed, self.threads, info.world_size, str(info.device), command))
        # next-item training windows follow the model's own max_len unless train.max_len says otherwise
        self.train_loader = build.make_train_loader(config, self.dataset, info.rank, info.world_size)
        build.calibrate_task(self.task, self.train_loader)
        self.model = self.raw_model
        if info.distributed:
            unused = tc.find_unused_parameters
            if unused is None:
                unused = any(all_gather(self._has_unused_parameters(), info))
            self.model = wrap_model(self.raw_model, info, unused)
        self._loss_acc = torch.zeros((), dtype=torch.float64, device=info.device)
        self._clock0 = perf_counter()
        self._elapsed0 = self.state.elapsed

    # ----------------------------------------------------------------- state
    def _restore(self, ckpt: dict[str, Any]) -> None:
        load_weights(self.raw_model, ckpt, checkpoint_path(self.run_dir, "last"), f"model {self.config.model!r}")
        self.optimizer.load_state_dict(ckpt["optimizer"])  # the rates as last decayed
        if self.lr_schedule is not None and ckpt.get("lr_schedule") is not None:
            self.lr_schedule.load_state_dict(ckpt["lr_schedule"])
        if self.ema is not None:
            if "ema" not in ckpt:
                raise ChronorecError(f"{checkpoint_path(self.run_dir, 'last')} has no weight average "
                                     "(train.ema_decay is set); resume with the run's own config.json")
            self.ema.load_state_dict(ckpt["ema"])
        self.state = TrainState.from_checkpoint(ckpt)
        rngs = ckpt.get("rng") or []
        if len(rngs) == self.info.world_size:
            restore_rng(rngs[self.info.rank])
        else:
            warn(f"checkpoint has RNG states of {len(rngs)} processes, this job has {self.info.world_size}; "
                 "random streams are reseeded, so the resumed run is not bit-identical")
            seed_everything(self.config.train.seed + self.state.global_step + self.info.rank)
        if self.info.is_main:
            self.log.truncate(self.state.metrics_lines)

    def _has_unused_parameters(self) -> bool:
        """One forward/backward on the first batch: does any trainable parameter get no gradient?

        DDP needs to know (``find_unused_parameters``); the RNG states are put back afterwards so the
        probe leaves the run's random streams, and hence exact resume, untouched.
        """
        rng = capture_rng()
        buffers = {k: b.clone() for k, b in self.raw_model.named_buffers()}  # e.g. BatchNorm statistics
        batch = next(iter(self.train_loader.iter_epoch(self.state.epoch)), None)
        if batch is None:
            return False
        if self.info.device.type != "cpu":
            batch = batch.to(self.info.device)
        self.task.loss(self.raw_model, batch).backward()
        unused = any(p.requires_grad and p.grad is None for p in self.raw_model.parameters())
        self.optimizer.zero_grad(set_to_none=True)
        with torch.no_grad():
            for k, b in self.raw_model.named_buffers():
                b.copy_(buffers[k])
        restore_rng(rng)
        return unused

    def _sync_loss(self) -> None:
        self.state.loss_sum += float(self._loss_acc.item())
        self._loss_acc.zero_()

    def _save(self, best: bool) -> None:
        """Write last.pt (and best.pt); every rank takes part because RNG states are gathered."""
        self._sync_loss()
        self.state.elapsed = self._elapsed0 + perf_counter() - self._clock0
        rngs = all_gather(capture_rng(), self.info)
        if not self.info.is_main:
            return
        ckpt = {
            "model": self.raw_model.state_dict(), "optimizer": self.optimizer.state_dict(),
            **asdict(self.state), "rng": rngs, "config": self.config.model_dump(mode="json"),
            "lr_schedule": self.lr_schedule.state_dict() if self.lr_schedule is not None else None,
        }
        if best:  # the weights that were evaluated: the average when there is one
            save_checkpoint(checkpoint_path(self.run_dir, "best"),
                            ckpt if self.ema is None else {**ckpt, "model": self.ema.module.state_dict()})
        if self.ema is not None:  # last.pt resumes the average too (best.pt has it as its "model")
            ckpt["ema"] = self.ema.state_dict()
        save_checkpoint(checkpoint_path(self.run_dir, "last"), ckpt)

    # ------------------------------------------------------------- training
    def _step(self, batch: Any) -> None:
        if self.info.device.type != "cpu":
            batch = batch.to(self.info.device, non_blocking=True)
        loss = self.task.loss(self.model, batch)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if self.config.train.grad_clip is not None:
            torch.nn.utils.clip_grad_norm_(self.raw_model.parameters(), self.config.train.grad_clip)
        self.optimizer.step()
        if self.ema is not None:
            self.ema.update_parameters(self.raw_model)
        self._loss_acc += loss.detach()
        self.state.loss_count += 1
        self.state.samples_seen += len(batch) * self.info.world_size

    def _eval_loader(self, split: str) -> Any:
        return build.make_eval_loader(self.dataset, split, self.config.train, self.task)

    def _eval_batches(self, split: str) -> Any:
        return self._eval_loader(split).iter_epoch(0)

    def _validate(self, n_batches: int) -> None:
        """Evaluate on valid (rank 0), update selection state on every rank, checkpoint."""
        st, tc = self.state, self.config.train
        self._sync_loss()
        train_loss = st.loss_sum / st.loss_count if st.loss_count else float("nan")
        st.loss_sum, st.loss_count = 0.0, 0
        if not math.isfinite(train_loss) and st.global_step > 0:
            raise ChronorecError(f"training loss is {train_loss} at step {st.global_step}; lower train.lr "
                                 "or check the data")
        epoch_pos = st.epoch + (st.batch_in_epoch / n_batches if n_batches else 0.0)
        epoch_pos = int(epoch_pos) if float(epoch_pos).is_integer() else round(epoch_pos, 4)
        improved, value = False, float("nan")
        lr = self.optimizer.param_groups[0]["lr"]  # the rate the steps since the last evaluation used
        if self.info.is_main:
            t0 = perf_counter()
            model = self.raw_model if self.ema is None else self.ema.module
            metrics = self.task.evaluate(model, self._eval_batches("valid"))
            value = float(metrics[self.task.select_metric])
            improved = st.best_step < 0 or (not math.isnan(value) and value > st.best_metric)
            if improved:
                st.best_metric, st.best_epoch, st.best_step = value, epoch_pos, st.global_step
                st.best_valid, st.patience_counter = metrics, 0
            else:
                st.patience_counter += 1
            st.stopped = st.patience_counter >= tc.patience
            elapsed = self._elapsed0 + perf_counter() - self._clock0
            self.log.append({"epoch": epoch_pos, "step": st.global_step, "split": "valid", "metrics": metrics,
                             "train_loss": train_loss, "lr": lr, "elapsed": round(elapsed, 3)})
            st.metrics_lines += 1
            if self.verbose:
                mark = " *" if improved else ""
                tqdm.write(f"epoch {epoch_pos} step {st.global_step} loss={train_loss:.4f} valid "
                           f"{_fmt(metrics)} ({perf_counter() - t0:.1f}s){mark}")
        shared = broadcast(
            {k: getattr(st, k) for k in ("best_metric", "best_epoch", "best_step", "best_valid",
                                          "patience_counter", "stopped", "metrics_lines")}
            | {"improved": improved, "value": value},
            self.info,
        )
        improved, value = shared.pop("improved"), shared.pop("value")
        for k, v in shared.items():
            setattr(st, k, v)
        st.last_eval_step = st.global_step
        if self.lr_schedule is not None:
            self.lr_schedule.step(value)  # every rank, on rank 0's value
            if self.info.is_main and self.verbose and self.optimizer.param_groups[0]["lr"] != lr:
                tqdm.write(f"learning rate {lr:.3g} -> {self.optimizer.param_groups[0]['lr']:.3g}")
        self._save(best=improved)

    def _run_epoch(self, n_batches: int) -> None:
        """Train batches ``batch_in_epoch .. n_batches-1`` of the current epoch (step evals, checkpoints)."""
        st, tc = self.state, self.config.train
        bar = tqdm(total=n_batches, initial=st.batch_in_epoch, desc=f"epoch {st.epoch + 1}/{tc.epochs}",
                   disable=not (self.info.is_main and self.verbose and _show_progress()),
                   leave=False, dynamic_ncols=True)
        t0 = perf_counter()
        for batch in self.train_loader.iter_epoch(st.epoch, start_batch=st.batch_in_epoch):
            self._step(batch)
            st.batch_in_epoch += 1
            st.global_step += 1
            bar.update(1)
            if st.global_step % tc.log_every == 0:
                self._sync_loss()
                bar.set_postfix(loss=f"{st.loss_sum / max(st.loss_count, 1):.4f}", refresh=False)
            eval_now = tc.eval_unit == "step" and st.global_step % tc.eval_every == 0
            if eval_now or (tc.checkpoint_every > 0 and st.global_step % tc.checkpoint_every == 0):
                st.train_seconds += perf_counter() - t0
                self._validate(n_batches) if eval_now else self._save(best=False)
                t0 = perf_counter()
                if st.stopped:
                    break
            if st.batch_in_epoch >= n_batches:
                break
        st.train_seconds += perf_counter() - t0
        bar.close()

    def fit(self) -> dict[str, Any] | None:
        """Train to the end (or early stop), then score the best weights on test. Returns metrics on rank 0."""
        st, tc = self.state, self.config.train
        self.raw_model.train()
        while not st.stopped and st.epoch < tc.epochs:
            n_batches = all_min(len(self.train_loader), self.info)
            if n_batches == 0:
                raise ChronorecError("the training split yields no batches; lower train.batch_size")
            if st.batch_in_epoch < n_batches:
                self._run_epoch(n_batches)
                if st.stopped:
                    break
            st.epoch, st.batch_in_epoch = st.epoch + 1, 0
            if tc.eval_unit == "epoch" and (st.epoch % tc.eval_every == 0 or st.epoch == tc.epochs):
                self._validate(n_batches)
            else:
                self._save(best=False)
        if st.last_eval_step != st.global_step:  # step evaluations out of phase with the last step
            self._validate(0)
        if not st.stopped:
            st.stopped = True
            self._save(best=False)
        return self._finish()

    def _finish(self) -> dict[str, Any] | None:
        st = self.state
        result = None
        if self.info.is_main:
            best = checkpoint_path(self.run_dir, "best")
            if best.is_file():
                load_weights(self.raw_model, load_checkpoint(best), best, f"model {self.config.model!r}")
            t0 = perf_counter()
            test = self.task.evaluate(self.raw_model, self._eval_batches("test"))
            self.log.append({"epoch": st.best_epoch, "step": st.best_step, "split": "test", "metrics": test,
                             "elapsed": round(self._elapsed0 + perf_counter() - self._clock0, 3)})
            if self.verbose:
                tqdm.write(f"test (best at epoch {st.best_epoch}) {_fmt(test)} ({perf_counter() - t0:.1f}s)")
            if self.config.train.save_predictions:
                (self.run_dir / "predictions").mkdir(exist_ok=True)
                preds = predict_in_order(self.task, self.raw_model, self._eval_loader("test"))
                preds.write_parquet(self.run_dir / "predictions" / "test.parquet")
            result = {
                "valid": st.best_valid, "test": test, "select_metric": self.task.select_metric,
                "best_epoch": st.best_epoch, "best_step": st.best_step, "epochs": st.epoch,
                "steps": st.global_step, "train_seconds": round(st.train_seconds, 3),
                "samples_per_second": round(st.samples_seen / st.train_seconds, 1) if st.train_seconds else None,
                "world_size": self.info.world_size, "threads": self.threads,
            }
            write_json(self.run_dir / METRICS, result)
        barrier(self.info)
        return result
