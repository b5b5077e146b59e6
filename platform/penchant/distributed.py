"""Training one run on several processes with torch.distributed.

``penchant run PIPELINE --nproc N`` starts N processes on this machine (gloo on CPUs, NCCL
on GPUs, one GPU per process); ``torchrun --nnodes M --nproc-per-node N -m penchant.cli run
PIPELINE`` starts them on several machines. Every process loads the data and builds the
features itself: the stages before training are deterministic, so all processes agree on
users, items and batches without shipping matrices around. The torch loop
(:mod:`penchant.training`) then gives each process its share of every batch of users and
averages gradients with DistributedDataParallel. Only the leader (rank 0) records the run,
validates, writes checkpoints and files, and speaks to observers; the others stop after
training.

Outside a process group every function here answers for a single process, so the rest of
the host calls them unconditionally.
"""

from __future__ import annotations

import os
import socket
import sys
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from datetime import timedelta
from typing import Any, TypeVar

import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from torch.nn.parallel import DistributedDataParallel

from penchant.errors import PipelineError

T = TypeVar("T")


def active() -> bool:
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def rank() -> int:
    return dist.get_rank() if active() else 0


def world_size() -> int:
    return dist.get_world_size() if active() else 1


def is_leader() -> bool:
    return rank() == 0


def broadcast(value: T | None) -> T:
    """The leader's ``value`` on every process (what the others pass is ignored)."""
    if not active():
        return value  # type: ignore[return-value]
    box = [value]
    dist.broadcast_object_list(box, src=0)
    return box[0]  # type: ignore[return-value]


def mean(values: Mapping[str, float], device: torch.device) -> dict[str, float]:
    """Each value averaged over the processes (every process passes the same keys)."""
    if not active() or not values:
        return dict(values)
    keys = sorted(values)
    tensor = torch.tensor([float(values[k]) for k in keys], dtype=torch.float64,
                          device=device)
    dist.all_reduce(tensor)
    return dict(zip(keys, (tensor / world_size()).tolist(), strict=True))


def device_for(device: torch.device) -> torch.device:
    """A CUDA device without an index means this process's own GPU. Checked here, where
    the run's device is known, rather than at launch: a CPU run may have more processes
    than the machine has GPUs."""
    if not (active() and device.type == "cuda" and device.index is None):
        return device
    local = int(os.environ.get("LOCAL_RANK", 0))
    gpus = torch.cuda.device_count()
    if local >= gpus:
        raise PipelineError(f"process {local} of this machine has no GPU of its own: the "
                            f"machine has {gpus} GPU(s), one per process; start at most "
                            f"{gpus} process(es) here, or train with --device cpu")
    return torch.device("cuda", local)


def init_from_env() -> bool:
    """Join the process group that ``--nproc`` or torchrun described in the environment
    (``WORLD_SIZE``, ``RANK``, ``MASTER_ADDR``, ``MASTER_PORT``); False when there is
    none to join."""
    if int(os.environ.get("WORLD_SIZE", "1")) <= 1 or dist.is_initialized():
        return False
    # The group is joined before the pipeline says where the model trains, so it serves
    # both: gloo carries CPU tensors, NCCL CUDA ones.
    local = int(os.environ.get("LOCAL_RANK", 0))
    cuda = torch.cuda.is_available()
    if cuda and local < torch.cuda.device_count():
        torch.cuda.set_device(local)
    dist.init_process_group("cpu:gloo,cuda:nccl" if cuda else "gloo", init_method="env://",
                            timeout=timedelta(minutes=30))
    return True


def launch(nproc: int, main: Callable[[list[str]], int], argv: list[str]) -> int:
    """Run ``main(argv)`` in ``nproc`` processes on this machine, as one process group;
    returns the first failing exit code, or 0."""
    if nproc < 1:
        raise PipelineError(f"--nproc {nproc}: give 1 or more processes")
    with socket.socket() as probe:  # a free port for the group's rendezvous
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    try:
        mp.spawn(_worker, args=(nproc, port, main, argv), nprocs=nproc, join=True)
    except mp.ProcessExitedException as exc:
        return exc.exit_code or 1
    except mp.ProcessRaisedException:
        return 1
    return 0


def _worker(local_rank: int, nproc: int, port: int, main: Callable[[list[str]], int],
            argv: list[str]) -> None:
    os.environ.update(RANK=str(local_rank), LOCAL_RANK=str(local_rank),
                      WORLD_SIZE=str(nproc), MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    # The machine's cores shared out, rather than every process claiming all of them.
    torch.set_num_threads(max(1, (os.cpu_count() or 1) // nproc))
    try:
        code = main(argv)
    finally:
        if dist.is_initialized():
            dist.destroy_process_group()
    if code:
        sys.exit(code)


@contextmanager
def synced(module: torch.nn.Module, custom_step: bool) -> Iterator[torch.nn.Module | None]:
    """While training: what to run the module through so that gradients are averaged
    over the processes (None on one process).

    Models trained by the shared step get DistributedDataParallel, which averages
    gradients during the backward pass. A model with its own step (a GAN calling its
    generator and discriminator directly, never the module's ``forward``) gets the same
    average from a hook on each parameter, removed afterwards, so every optimiser steps
    on the averaged gradient however the model computes it.
    """
    if not active():
        yield None
        return
    if not custom_step:
        device = next(module.parameters()).device
        yield DistributedDataParallel(
            module, device_ids=[device.index] if device.type == "cuda" else None)
        return
    handles = []
    for parameter in module.parameters():
        dist.broadcast(parameter.data, src=0)  # start from the leader's weights, as DDP does
        if parameter.requires_grad:
            handles.append(parameter.register_hook(_averaged))
    try:
        yield module
    finally:
        for handle in handles:
            handle.remove()


def _averaged(gradient: torch.Tensor) -> torch.Tensor:
    gradient = gradient.clone()
    dist.all_reduce(gradient)
    return gradient / world_size()


@contextmanager
def training_through(model: Any, wrapped: torch.nn.Module | None) -> Iterator[None]:
    """Let ``model`` call its module through ``wrapped`` for one training step; the
    plain module is what it keeps (checkpoints, validation and scoring use it)."""
    if wrapped is None or wrapped is model.module:
        yield
        return
    plain, model.module = model.module, wrapped
    try:
        yield
    finally:
        model.module = plain
