"""Several jobs per GPU, and the right GPU per job.

Snakemake gives a local job no device id (snakemake#281): with ``--resources gpu=4``
on a 4-GPU workstation, every job would otherwise train on ``cuda`` = GPU 0. Here a
job holds a *slot*, one of ``jobs_per_gpu`` per visible GPU, for its whole life:

* a slot is a lock file ``gpu-<id>.slot-<k>.lock`` in a lock directory, locked with
  ``flock``. The kernel drops the lock when the holding process ends in any way
  (exit, exception, SIGKILL, OOM kill), so a killed job can never leave a slot taken.
* choosing happens under one more lock (``choose.lock``, held for milliseconds), so
  concurrent jobs see each other's choices: a job takes a free slot on the GPU with
  the fewest jobs (the lowest id on a tie). The first N jobs thus land on N distinct
  GPUs, and GPUs fill up evenly to ``jobs_per_gpu`` jobs each.
* when every slot is taken the job waits, with a line naming the holders every
  ``PROGRESS_EVERY_S`` seconds. A slot is only ever held by a live process that is
  working, so waiting ends; set ``PRUNABILITY_GPU_SLOT_TIMEOUT_S`` to fail instead.
* the job then uses ``cuda:<index>`` (and makes it the current device, so a bare
  ``cuda`` means the same GPU). Setting CUDA_VISIBLE_DEVICES instead would only work
  before CUDA is initialised, and counting the GPUs (``torch.cuda.device_count()``)
  or ``resolve_device("auto")`` may already have initialised it; changes after
  that are silently ignored. An index works at any time.

The GPUs are the entries of CUDA_VISIBLE_DEVICES when it is set (a cluster
allocation, or a user's choice), else ``0 .. torch.cuda.device_count() - 1``. Lock
files are named after those ids, so two runs given different CUDA_VISIBLE_DEVICES on
one machine still agree on which physical GPU a lock stands for.

The lock directory must be on the machine's own disk: a cluster job that sees its GPU
as "0" must not queue behind a job on another node that also sees "0", and flock on
NFS is emulated with other locks. It is ``$PRUNABILITY_GPU_SLOTS_DIR`` if set, else
``<tmp>/prunability-gpu-slots-<uid>/``, with a subfolder per SLURM job inside a SLURM
allocation (that allocation's GPUs belong to it alone). Every run of one user on
one machine therefore shares the slots: two studies started side by side do not
put two jobs on one GPU.

On the CPU (device ``cpu``, or ``auto`` without CUDA) nothing is locked and the
configured device is returned unchanged. This module imports torch only there, so
the slot logic runs (and is tested) without it.
"""

from __future__ import annotations

import errno
import fcntl
import os
import re
import socket
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Mapping

LOCK_DIR_ENV = "PRUNABILITY_GPU_SLOTS_DIR"
TIMEOUT_ENV = "PRUNABILITY_GPU_SLOT_TIMEOUT_S"
PROGRESS_EVERY_S = 60.0
POLL_S = 1.0  # between two looks at the slots while all are taken; a look costs microseconds


class GpuSlotTimeout(RuntimeError):
    """Every slot stayed taken for longer than the timeout."""


@dataclass
class GpuSlot:
    """One held slot. The lock lasts while ``lock_fd`` is open: keep this object
    referenced for the job's life (a garbage-collected slot is released)."""

    index: int  # position among the visible GPUs: the job uses cuda:<index>
    gpu_id: str  # the GPU's id in CUDA_VISIBLE_DEVICES (or its index); names the lock file
    slot: int
    path: Path
    lock_fd: int | None = field(repr=False)
    waited_s: float = 0.0

    @property
    def device(self) -> str:
        return f"cuda:{self.index}"

    def release(self) -> None:
        if self.lock_fd is not None:
            os.close(self.lock_fd)  # closing the only descriptor drops the flock
            self.lock_fd = None

    def __del__(self) -> None:
        self.release()

    def __enter__(self) -> "GpuSlot":
        return self

    def __exit__(self, *exc) -> None:
        self.release()


def visible_gpus(device_count: int, environ: Mapping[str, str] = os.environ) -> list[str]:
    """The ids of the GPUs this process can use, in the order of their cuda:<index>."""
    listed = environ.get("CUDA_VISIBLE_DEVICES")
    if listed is None:
        return [str(i) for i in range(device_count)]
    ids = [entry.strip() for entry in listed.split(",") if entry.strip()]
    # CUDA stops at the first invalid entry, so torch may count fewer GPUs than listed.
    return ids[:device_count]


def default_lock_dir(environ: Mapping[str, str] = os.environ) -> Path:
    if environ.get(LOCK_DIR_ENV):
        return Path(environ[LOCK_DIR_ENV])
    machine_wide = Path(tempfile.gettempdir()) / f"prunability-gpu-slots-{os.getuid()}"
    slurm_job = environ.get("SLURM_JOB_ID")
    return machine_wide / f"slurm-job-{slurm_job}" if slurm_job else machine_wide


def timeout_from_env(environ: Mapping[str, str] = os.environ) -> float | None:
    """Seconds to wait for a slot (None: without limit)."""
    text = environ.get(TIMEOUT_ENV, "").strip()
    if not text:
        return None
    try:
        seconds = float(text)
    except ValueError:
        raise ValueError(f"{TIMEOUT_ENV}={text!r}: expected seconds (a number), or unset to wait without limit") from None
    if seconds < 0:
        raise ValueError(f"{TIMEOUT_ENV}={text!r}: expected seconds >= 0")
    return seconds


def slot_path(lock_dir: Path, gpu_id: str, slot: int) -> Path:
    # ids may be UUIDs (GPU-8a3c..., MIG-...); keep file names plain
    safe_id = re.sub(r"[^A-Za-z0-9._-]", "_", gpu_id)
    return lock_dir / f"gpu-{safe_id}.slot-{slot}.lock"


def _try_lock(path: Path) -> int | None:
    """An open descriptor holding ``path``'s flock, or None if another holder has it.

    flock, not fcntl/lockf: a flock belongs to the open file description, so it
    survives other descriptors of the same file being closed, and two descriptors in
    one process conflict like two processes do (which the tests rely on)."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as exc:
        os.close(fd)
        if exc.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
            return None
        raise
    return fd


def _holder(path: Path) -> str:
    """Who holds a slot, as its holder wrote it into the lock file."""
    try:
        return path.read_text().strip() or "?"
    except OSError:
        return "?"


def _take_least_loaded(gpus: list[str], jobs_per_gpu: int, lock_dir: Path) -> GpuSlot | None:
    """Under choose.lock: a free slot on the GPU with the fewest taken, or None."""
    with open(lock_dir / "choose.lock", "a") as choose:
        fcntl.flock(choose, fcntl.LOCK_EX)  # released when the file closes
        free: dict[tuple[int, int], int] = {}  # (gpu index, slot) -> descriptor holding it for now
        try:
            for index, gpu_id in enumerate(gpus):
                for slot in range(jobs_per_gpu):
                    fd = _try_lock(slot_path(lock_dir, gpu_id, slot))
                    if fd is not None:
                        free[index, slot] = fd
            if not free:
                return None
            free_per_gpu = {index: sum(1 for i, _ in free if i == index) for index, _ in free}
            # most free slots = fewest jobs (each GPU has jobs_per_gpu); then lowest index and slot
            index, slot = min(free, key=lambda key: (-free_per_gpu[key[0]], key))
            fd = free.pop((index, slot))
            return GpuSlot(index, gpus[index], slot, slot_path(lock_dir, gpus[index], slot), fd)
        finally:
            for fd in free.values():
                os.close(fd)


def acquire_slot(
    gpus: list[str],
    jobs_per_gpu: int,
    lock_dir: str | os.PathLike,
    owner: str,
    timeout_s: float | None = None,
    poll_s: float = POLL_S,
    progress_every_s: float = PROGRESS_EVERY_S,
    log: Callable[[str], None] = print,
) -> GpuSlot:
    """Hold one of ``jobs_per_gpu`` slots of one of ``gpus`` (ids), waiting while all
    are taken; GpuSlotTimeout after ``timeout_s`` seconds (None: no limit). ``owner``
    (e.g. the job's log file) is written into the lock file for the waiting lines."""
    if not gpus:
        raise ValueError("no GPU to hold a slot on")
    if jobs_per_gpu < 1:
        raise ValueError(f"jobs_per_gpu must be >= 1, got {jobs_per_gpu}")
    lock_dir = Path(lock_dir)
    lock_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    started = time.monotonic()
    next_progress = started  # the first wait is reported at once
    while True:
        held = _take_least_loaded(gpus, jobs_per_gpu, lock_dir)
        waited = time.monotonic() - started
        if held is not None:
            held.waited_s = waited
            os.ftruncate(held.lock_fd, 0)
            os.write(held.lock_fd, f"pid {os.getpid()} on {socket.gethostname()}: {owner}\n".encode())
            return held
        if timeout_s is not None and waited >= timeout_s:
            raise GpuSlotTimeout(
                f"no free GPU slot after {waited:.0f} s (timeout {timeout_s:g} s, {TIMEOUT_ENV}): "
                f"{_describe_holders(gpus, jobs_per_gpu, lock_dir)}. Free a GPU, raise resources.jobs_per_gpu, "
                f"or unset {TIMEOUT_ENV} to wait without limit."
            )
        if time.monotonic() >= next_progress:
            log(f"waiting for a GPU slot ({waited:.0f} s so far; all {len(gpus) * jobs_per_gpu} taken: "
                f"{_describe_holders(gpus, jobs_per_gpu, lock_dir)})")
            next_progress += progress_every_s
        time.sleep(poll_s)


def _describe_holders(gpus: list[str], jobs_per_gpu: int, lock_dir: Path) -> str:
    return "; ".join(
        f"GPU {gpu_id} slot {slot}: {_holder(slot_path(lock_dir, gpu_id, slot))}"
        for gpu_id in gpus
        for slot in range(jobs_per_gpu)
    )


def device_for_job(
    device: str,
    jobs_per_gpu: int,
    owner: str,
    lock_dir: str | os.PathLike | None = None,
    log: Callable[[str], None] = print,
) -> tuple[str, GpuSlot | None]:
    """The device a training or measure job should use, and the slot it holds there.

    ``device`` is the configuration's (auto, cpu, cuda). On the CPU it comes back
    unchanged with no slot, so a CPU run is exactly as before. With CUDA, a slot is
    held (see the module docstring) and ``cuda:<index>`` comes back. Keep the slot
    referenced until the job ends."""
    if device == "cpu":
        return device, None
    import torch

    if not torch.cuda.is_available():
        # auto: the CPU; cuda: resolve_device's error, naming the cause and the CPU override
        return device, None
    lock_dir = Path(lock_dir) if lock_dir is not None else default_lock_dir()
    gpus = visible_gpus(torch.cuda.device_count())
    held = acquire_slot(gpus, jobs_per_gpu, lock_dir, owner, timeout_s=timeout_from_env(), log=log)
    torch.cuda.set_device(held.index)
    log(f"GPU slot: {held.device} (GPU {held.gpu_id}, slot {held.slot + 1} of {jobs_per_gpu}; "
        f"waited {held.waited_s:.0f} s; lock {held.path})")
    return held.device, held
