"""Process-group helpers: rank and world size from the environment (torchrun or SLURM), gradient
averaging, and agreement on one value across ranks. With one process every helper is a no-op.

The loop averages gradients itself instead of wrapping networks in DistributedDataParallel: a step
has several phases sharing one forward pass (D sees G's batch detached, G reuses it), which DDP's
one-forward-one-backward contract does not fit.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import timedelta

import torch
import torch.distributed as dist


@dataclass(frozen=True)
class ProcessInfo:
    rank: int
    world_size: int
    local_rank: int

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def process_info() -> ProcessInfo:
    """Rank, world size and local rank from torchrun's variables, else SLURM's (srun --ntasks=N)."""
    env = os.environ
    if "WORLD_SIZE" in env and "RANK" in env:
        return ProcessInfo(int(env["RANK"]), int(env["WORLD_SIZE"]), int(env.get("LOCAL_RANK", 0)))
    if int(env.get("SLURM_NTASKS", 1)) > 1 and "SLURM_PROCID" in env:
        return ProcessInfo(int(env["SLURM_PROCID"]), int(env["SLURM_NTASKS"]), int(env.get("SLURM_LOCALID", 0)))
    return ProcessInfo(0, 1, 0)


def init_process_group() -> ProcessInfo:
    """Join the process group once (gloo for CPU tensors, NCCL for CUDA ones when CUDA is present)."""
    info = process_info()
    if info.world_size > 1 and not dist.is_initialized():
        os.environ.setdefault("MASTER_ADDR", "127.0.0.1")
        os.environ.setdefault("MASTER_PORT", str(29500 + int(os.environ.get("SLURM_JOB_ID", 0)) % 1000))
        os.environ.setdefault("RANK", str(info.rank))
        os.environ.setdefault("WORLD_SIZE", str(info.world_size))
        backend = "cpu:gloo,cuda:nccl" if torch.cuda.is_available() else "gloo"
        dist.init_process_group(backend=backend, timeout=timedelta(minutes=30))
    return info


def is_distributed() -> bool:
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def barrier() -> None:
    if is_distributed():
        dist.barrier()


def broadcast_object(value):
    """Rank 0's `value` on every rank (e.g. the run directory all ranks must share)."""
    if not is_distributed():
        return value
    holder = [value]
    dist.broadcast_object_list(holder, src=0)
    return holder[0]


def gather_objects(value) -> list:
    """`[value of rank 0, value of rank 1, ...]` on every rank."""
    if not is_distributed():
        return [value]
    gathered = [None] * dist.get_world_size()
    dist.all_gather_object(gathered, value)
    return gathered


def average_gradients(parameters: list[torch.nn.Parameter]) -> None:
    """All-reduce the gradients of `parameters` in one flat buffer and divide by the world size."""
    if not is_distributed():
        return
    grads = [p.grad for p in parameters if p.grad is not None]
    if not grads:
        return
    flat = torch.cat([g.reshape(-1) for g in grads])
    dist.all_reduce(flat)
    flat /= dist.get_world_size()
    offset = 0
    for g in grads:
        g.copy_(flat[offset:offset + g.numel()].view_as(g))
        offset += g.numel()


def broadcast_state(module: torch.nn.Module) -> None:
    """Rank 0's parameters and buffers (BatchNorm statistics) on every rank, as DDP's broadcast_buffers."""
    if not is_distributed():
        return
    for tensor in list(module.parameters()) + list(module.buffers()):
        dist.broadcast(tensor.data, src=0)


def all_reduce_mean(values: torch.Tensor) -> torch.Tensor:
    if not is_distributed():
        return values
    values = values.clone()
    dist.all_reduce(values)
    return values / dist.get_world_size()


def replica_max_difference(module: torch.nn.Module) -> float:
    """Largest absolute difference between this module's parameters on any rank and rank 0's (0 = in sync)."""
    if not is_distributed():
        return 0.0
    flat = torch.cat([p.detach().reshape(-1).float() for p in module.parameters()])
    reference = flat.clone()
    dist.broadcast(reference, src=0)
    gap = (flat - reference).abs().max()
    dist.all_reduce(gap, op=dist.ReduceOp.MAX)
    return float(gap)


def shard_and_gather(rows: torch.Tensor, compute) -> torch.Tensor:
    """`compute(rows)` with the rows split across processes, every process getting the whole result,
    so evaluation generates each sample once and all ranks see the same samples as one process would."""
    if not is_distributed():
        return compute(rows)
    world, rank = dist.get_world_size(), dist.get_rank()
    per_rank = -(-len(rows) // world)
    mine = rows[rank * per_rank:(rank + 1) * per_rank]
    padding = per_rank - len(mine)   # the last ranks may hold fewer rows: pad to equal sizes for all_gather
    if padding:
        mine = torch.cat([mine, rows[:padding]])
    result = compute(mine).contiguous()
    parts = [torch.empty_like(result) for _ in range(world)]
    dist.all_gather(parts, result)
    return torch.cat(parts)[:len(rows)]
