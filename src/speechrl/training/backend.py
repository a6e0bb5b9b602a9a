"""Execution backends (registry ``BACKENDS``, chosen by ``train.backend``): the one seam between the
training loops (SFT, RL, the control) and how gradients are made, reduced and applied.

A loop calls only these methods, so the same loop runs as one process or as many DeepSpeed ranks:

    be = make_backend(cfg, model, OptimSpec(lr, weight_decay, grad_clip, schedule))  # wraps model + AdamW
    loss = ...forward through be.model...
    be.backward(loss)                  # any number of micro-batches
    gnorm = be.step()                  # clip + optimiser step + zero grads; the pre-clip global grad norm
    be.schedule_step()                 # advance the lr schedule (the loop decides what one step is)
    with be.gathered():                # full parameters, no ZeRO hooks: generate, adapter-disabled reference
        ...
    be.all_reduce(t) / be.all_gather_object(x) / be.rank / be.world / be.is_main / be.barrier()
    be.save_model(proc, out)           # rank 0 writes the full weights (save_pretrained folder)
    be.save_state(dir) / be.load_state(dir)   # weights + optimiser + lr schedule, to resume

Ranks come from the launcher (``torchrun`` / ``srun``: ``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``,
``MASTER_ADDR``, ``MASTER_PORT``); rank r uses ``cuda:LOCAL_RANK`` on GPUs, gloo on CPU.

Gradient averaging: DeepSpeed averages gradients over ranks, so a loss that is rank r's share of the
global objective (see ``speechrl.algos.aggregation``, global normalisers) is multiplied by ``world``
before ``backward`` (``be.loss_scale``), as verl multiplies by ``dp_size``. The local backend has
world 1 and scale 1.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from speechrl.registry import Registry

log = logging.getLogger("speechrl")

BACKENDS: Registry = Registry("execution backend")
REPO = Path(__file__).resolve().parents[3]


@dataclass(frozen=True)
class OptimSpec:
    """What a loop asks of its optimiser: AdamW with this lr / weight decay, the gradient-norm clip
    (0 = none) and the lr multiplier per schedule step (``torch.optim.lr_scheduler.LambdaLR``)."""

    lr: float
    weight_decay: float
    grad_clip: float
    schedule: Callable[[int], float] = lambda _step: 1.0


def world_from_env() -> tuple[int, int, int]:
    """(rank, world size, local rank) as set by torchrun / srun; (0, 1, 0) for a plain process."""
    return int(os.environ.get("RANK", 0)), int(os.environ.get("WORLD_SIZE", 1)), int(os.environ.get("LOCAL_RANK", 0))


def _adamw(model: torch.nn.Module, spec: OptimSpec) -> torch.optim.AdamW:
    params = [p for p in model.parameters() if p.requires_grad]
    return torch.optim.AdamW(params, lr=spec.lr, weight_decay=spec.weight_decay)


class LocalBackend:
    """One process, a torch AdamW; exactly the pre-backend behaviour of the loops."""

    name = "local"
    rank, world, is_main, loss_scale, dtype = 0, 1, True, 1.0, torch.float32

    def __init__(self, model: torch.nn.Module, spec: OptimSpec, device: str = "cpu") -> None:
        _, world, _ = world_from_env()
        if world > 1:
            raise ValueError(f"WORLD_SIZE={world}: this job was launched with {world} ranks but train.backend is "
                             "'local' (one process); set train.backend: deepspeed, or launch one process")
        self.model, self.spec, self.device = model, spec, device
        self.optimizer = _adamw(model, spec)
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(self.optimizer, spec.schedule)

    def backward(self, loss: torch.Tensor) -> None:
        (loss * self.loss_scale).backward()

    def step(self) -> float:
        params = [p for p in self.model.parameters() if p.requires_grad]
        clip = self.spec.grad_clip if self.spec.grad_clip > 0 else float("inf")
        norm = torch.nn.utils.clip_grad_norm_(params, clip)
        self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)
        return float(norm)

    def schedule_step(self) -> None:
        self.scheduler.step()

    @property
    def lr(self) -> float:
        return self.scheduler.get_last_lr()[0]

    def gathered(self) -> contextlib.AbstractContextManager[torch.nn.Module]:
        return contextlib.nullcontext(self.model)

    def all_reduce(self, t: torch.Tensor, op: str = "sum") -> torch.Tensor:
        return t

    def all_gather_object(self, obj: Any) -> list[Any]:
        return [obj]

    def barrier(self) -> None:
        pass

    def save_model(self, proc: Any, out: Path) -> None:
        from speechrl.models.build import save

        save(self.model, proc, out)

    def save_state(self, path: Path) -> None:
        """Weights, optimiser and lr-schedule state in the folder ``path`` (written atomically)."""
        from speechrl.io import atomic_dir

        with atomic_dir(Path(path)) as tmp:
            torch.save({"model": self.model.state_dict(), "optimizer": self.optimizer.state_dict(),
                        "scheduler": self.scheduler.state_dict()}, tmp / "state.pt")

    def load_state(self, path: Path) -> None:
        """Restore what :meth:`save_state` wrote; the next ``step`` continues as if never interrupted."""
        state = torch.load(Path(path) / "state.pt", map_location=self.device, weights_only=True)
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])


@BACKENDS.register("local")
def _local(cfg: Any, model: torch.nn.Module, spec: OptimSpec) -> LocalBackend:
    return LocalBackend(model, spec, str(model.device))


# ------------------------------------------------------------------------------------- DeepSpeed
def deepspeed_config(path: str | Path, precision: str, grad_clip: float) -> dict[str, Any]:
    """The user's DeepSpeed JSON (ZeRO stage, offload, buckets) completed with what the loop decides.

    Batch sizes are the loop's (micro-batch 1 and accumulation 1 as DeepSpeed counts them: the loop
    owns accumulation, ``managed_gradient_accumulation: false`` makes every ``step()`` the boundary,
    so a step may follow any number of backward calls); clipping is ``grad_clip`` (DeepSpeed's own
    default would be 1.0 whatever the config says); precision is ``train.precision``.
    """
    p = Path(path)
    if not p.is_absolute() and not p.is_file():  # relative to the repository (snakemake --directory runs elsewhere)
        p = REPO / p
    if not p.is_file():
        raise FileNotFoundError(f"train.deepspeed_config: {p} does not exist (choices under config/deepspeed/: "
                                f"{', '.join(sorted(x.name for x in (REPO / 'config/deepspeed').glob('*.json'))) or 'none here'})")
    try:
        cfg = json.loads(p.read_text())
    except json.JSONDecodeError as e:
        raise ValueError(f"train.deepspeed_config: {p} line {e.lineno}: not valid JSON ({e.msg})") from None
    cfg.update({
        "train_micro_batch_size_per_gpu": 1, "gradient_accumulation_steps": 1, "managed_gradient_accumulation": False,
        "gradient_clipping": float(grad_clip), "bf16": {"enabled": precision == "bf16"},
        "fp16": {"enabled": precision == "fp16", **({"initial_scale_power": 16} if precision == "fp16" else {})},
        "zero_allow_untested_optimizer": True, "zero_force_ds_cpu_optimizer": False,
        "steps_per_print": 10**9, "wall_clock_breakdown": False,
    })
    cfg.pop("train_batch_size", None)
    return cfg


class DeepSpeedBackend:
    """``deepspeed.initialize`` with ZeRO-2 / ZeRO-3 (optional CPU offload) over every launched rank.

    The optimiser is a torch AdamW handed to DeepSpeed (no fused-Adam build; on CPU, DeepSpeed's own
    Adam would first compile for ~70 s). The lr schedule is a LambdaLR on that optimiser, stepped by
    the loop, not by DeepSpeed. ``gathered()`` all-gathers ZeRO-3 partitions and lifts DeepSpeed's
    forward hooks (as TRL's ``unwrap_model_for_generation``), so ranks may call ``generate`` a
    different number of times; under ZeRO-2 the parameters are already whole.
    """

    name = "deepspeed"

    def __init__(self, model: torch.nn.Module, spec: OptimSpec, ds_path: str, precision: str, device: str) -> None:
        import deepspeed
        import torch.distributed as dist

        rank, world, local = world_from_env()
        if not device.startswith("cuda"):
            # DeepSpeed builds a shared-memory op on CPU for its inference all_reduce (30-140 s of C++
            # compilation on a fresh machine); training communicates through gloo and never uses it.
            deepspeed.ops.__compatible_ops__["deepspeed_shm_comm"] = False
        if not dist.is_initialized():
            deepspeed.init_distributed(dist_backend="nccl" if device.startswith("cuda") else "gloo", verbose=False)
        if device.startswith("cuda"):
            device = f"cuda:{local}"
            torch.cuda.set_device(local)
            model.to(device)
        self.rank, self.world, self.is_main, self.device = rank, world, rank == 0, device
        self.dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(precision, torch.float32)
        self.loss_scale = float(world)
        self.spec = spec
        cfg = deepspeed_config(ds_path, precision, spec.grad_clip)
        self.stage = int(cfg.get("zero_optimization", {}).get("stage", 0))
        opt = _adamw(model, spec)
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(opt, spec.schedule)
        self.engine, self.optimizer, _, _ = deepspeed.initialize(model=model, optimizer=opt, config=cfg)
        self.model = self.engine.module
        if self.dtype != torch.float32:  # DeepSpeed casts parameters only; BatchNorm statistics must follow (CPU kernels insist)
            for b in self.model.buffers():
                if b.is_floating_point():
                    b.data = b.data.to(self.dtype)

    def backward(self, loss: torch.Tensor) -> None:
        # The loops call the module, not engine.forward, which is where DeepSpeed marks a new micro-batch;
        # without this ZeRO-3 overwrites (instead of adding) the gradients of earlier micro-batches.
        clear = getattr(self.engine.optimizer, "clear_backward_seen_flag", None)
        if clear is not None:
            clear()
        self.engine.backward(loss * self.loss_scale, scale_wrt_gas=False)

    def step(self) -> float:
        self.engine.step()
        norm = self.engine.get_global_grad_norm()
        self.engine.zero_grad()
        self._average_buffers()
        return float(norm) if norm is not None else float("nan")

    def _average_buffers(self) -> None:
        """Running statistics (the conformer's BatchNorm) averaged over ranks after each step, so the
        saved model does not reflect rank 0's share of the data alone (as DDP's broadcast_buffers, but a
        mean). Not equal to one process's running average over the whole batch: an exact-parity
        comparison covers parameters, not these buffers."""
        import torch.distributed as dist

        for b in self.model.buffers():
            if b.is_floating_point() and b.numel():
                dist.all_reduce(b.data, op=dist.ReduceOp.SUM)
                b.data /= self.world

    def schedule_step(self) -> None:
        self.scheduler.step()

    @property
    def lr(self) -> float:
        return self.scheduler.get_last_lr()[0]

    @contextlib.contextmanager
    def gathered(self) -> Iterator[torch.nn.Module]:
        if self.stage < 3:
            yield self.model
            return
        import deepspeed

        offload = self.engine.optimizer.parameter_offload
        with deepspeed.zero.GatheredParameters(list(self.model.parameters())):
            for p in self.model.parameters():
                p.ds_active_sub_modules.clear()
            for h in offload.forward_hooks + offload.backward_hooks:
                h.remove()
            offload.forward_hooks, offload.backward_hooks = [], []
            try:
                yield self.model
            finally:
                offload._register_deepspeed_module(offload.module)

    def all_reduce(self, t: torch.Tensor, op: str = "sum") -> torch.Tensor:
        """Reduced copy of ``t`` on ``t``'s device (sent through this rank's device: NCCL takes no CPU tensors)."""
        import torch.distributed as dist

        ops = {"sum": dist.ReduceOp.SUM, "max": dist.ReduceOp.MAX, "min": dist.ReduceOp.MIN}
        out = t.to(self.device, copy=True)
        dist.all_reduce(out, op=ops[op])
        return out.to(t.device)

    def all_gather_object(self, obj: Any) -> list[Any]:
        import torch.distributed as dist

        out: list[Any] = [None] * self.world
        dist.all_gather_object(out, obj)
        return out

    def barrier(self) -> None:
        import torch.distributed as dist

        dist.barrier()

    def save_model(self, proc: Any, out: Path) -> None:
        from speechrl.models.build import save

        with self.gathered() as model:
            if self.is_main:
                save(model, proc, out)
        self.barrier()


    def save_state(self, path: Path) -> None:
        """DeepSpeed checkpoint (every rank's ZeRO partitions) + the lr schedule in the folder ``path``:
        written to ``path.tmp`` by all ranks, renamed into place by rank 0 once all have finished."""
        import shutil

        path = Path(path)
        tmp = path.with_name(path.name + ".tmp")
        if self.is_main and tmp.exists():
            shutil.rmtree(tmp)
        self.barrier()
        self.engine.save_checkpoint(str(tmp), tag="state", client_state={"scheduler": self.scheduler.state_dict()})
        self.barrier()
        if self.is_main:
            old = path.with_name(path.name + ".old")
            if path.exists():
                path.rename(old)
            tmp.rename(path)
            shutil.rmtree(old, ignore_errors=True)
        self.barrier()

    def load_state(self, path: Path) -> None:
        _, client = self.engine.load_checkpoint(str(path), tag="state", load_optimizer_states=True,
                                                load_lr_scheduler_states=False)
        self.scheduler.load_state_dict(client["scheduler"])


@BACKENDS.register("deepspeed")
def _deepspeed(cfg: Any, model: torch.nn.Module, spec: OptimSpec) -> DeepSpeedBackend:
    return DeepSpeedBackend(model, spec, cfg.train.deepspeed_config, cfg.train.precision, str(model.device))


def make_backend(cfg: Any, model: torch.nn.Module, spec: OptimSpec) -> LocalBackend | DeepSpeedBackend:
    """The backend ``cfg.train.backend`` names, around ``model`` (an unknown name lists the valid ones)."""
    return BACKENDS.get(cfg.train.backend)(cfg, model, spec)
