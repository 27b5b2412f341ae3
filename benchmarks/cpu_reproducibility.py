"""What makes a CPU training run bit-identical across x86 machines, and what it costs.

Trains one small model with the package's loop (``train_model``, one thread as the
jobs run) in a fresh Python process per configuration, because the kernel caps are
environment variables read once at start-up:

- ``default``: nothing capped (torch, oneDNN and MKL use the widest ISA they find);
- ``onednn-avx2`` / ``onednn-sse41``: ``ONEDNN_MAX_CPU_ISA`` caps oneDNN (the
  convolutions);
- ``aten-avx2`` / ``aten-default``: ``ATEN_CPU_CAPABILITY`` caps torch's own kernels
  (elementwise, reductions, BatchNorm, the optimizer step);
- ``mkl-avx2`` / ``mkl-cbwr``: ``MKL_ENABLE_INSTRUCTIONS=AVX2`` caps MKL (matrix
  products, and the 1x1 convolutions of a batch under 16 images on one thread, which
  torch runs as per-image MKL products); ``MKL_CBWR=COMPATIBLE`` asks MKL for its
  reproducible code path (the one ``MKL_CBWR`` branch its documentation promises on
  CPUs other than Intel's);
- ``cap-avx2``: oneDNN and torch both capped at AVX2, the candidate setting that
  should make an AVX-512 machine compute what an AVX2-only one does; ``cap-avx2+mkl``
  and ``cap-avx2+cbwr``: the same with MKL capped or in its compatible mode;
- ``threads-2``: nothing capped, two threads instead of one;
- ``default-again``: the control, which must equal ``default`` bit for bit.

Each configuration is trained ``--repeats`` times, the rounds interleaved (every
configuration once, then again), so a machine that slows down slows all of them; each
run times ``train_model`` alone (not the start-up), in wall time and in the process's
CPU time (the steadier of the two on a shared machine). A probe per configuration
trains one epoch with ``ONEDNN_VERBOSE`` and ``MKL_VERBOSE`` on and reports the ISA of
the convolution kernels oneDNN ran, oneDNN's ISA cap, and MKL's calls with their CNR
mode, so the table shows that a cap took effect and not only that the bits moved.

    python benchmarks/cpu_reproducibility.py [--workload digits|cifar|both] [--repeats 3] [--epochs N]

Printed: per workload and configuration, the SHA-256 of the final weights (first 12
hex digits), whether they equal the default's bit for bit, the largest absolute
weight difference from the default, the final training loss, the median wall and CPU
training times and their ratios to the default's (> 1: slower), and which
configurations gave the same bits.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

AVX2 = {"ONEDNN_MAX_CPU_ISA": "AVX2", "ATEN_CPU_CAPABILITY": "avx2"}
CONFIGS = {
    "default": ({}, 1),
    "default-again": ({}, 1),
    "threads-2": ({}, 2),
    "onednn-avx2": ({"ONEDNN_MAX_CPU_ISA": "AVX2"}, 1),
    "onednn-sse41": ({"ONEDNN_MAX_CPU_ISA": "SSE41"}, 1),
    "aten-avx2": ({"ATEN_CPU_CAPABILITY": "avx2"}, 1),
    "aten-default": ({"ATEN_CPU_CAPABILITY": "default"}, 1),
    "mkl-avx2": ({"MKL_ENABLE_INSTRUCTIONS": "AVX2"}, 1),
    "mkl-cbwr": ({"MKL_CBWR": "COMPATIBLE"}, 1),
    "cap-avx2": (AVX2, 1),
    "cap-avx2+mkl": ({**AVX2, "MKL_ENABLE_INSTRUCTIONS": "AVX2"}, 1),
    "cap-avx2+cbwr": ({**AVX2, "MKL_CBWR": "COMPATIBLE"}, 1),
}
# variables that would otherwise leak in from the caller's environment
CONTROLLED = ("ONEDNN_MAX_CPU_ISA", "DNNL_MAX_CPU_ISA", "ATEN_CPU_CAPABILITY", "MKL_ENABLE_INSTRUCTIONS", "MKL_CBWR",
              "ONEDNN_VERBOSE", "MKL_VERBOSE", "OMP_NUM_THREADS", "MKL_NUM_THREADS")

# The default study's smallest cell (config.yaml: NiN depth 2, width 1, base width 16,
# BatchNorm, SGD momentum) on the digits, and a CIFAR-shaped NiN as in the CPU
# CIFAR-10 preset (32 channels, batch 64) on seeded random 3x32x32 images.
WORKLOADS = {
    "digits": dict(hp=dict(depth=2, width=1, batchnorm=True, dropout=0.0, optimizer="momentum", lr=0.1, batch_size=32,
                           weight_decay=0.0, augment=False, seed=0),
                   model=dict(arch="nin", base_width=16, head_relu=False), epochs=3),
    "cifar": dict(hp=dict(depth=2, width=1.0, batchnorm=True, dropout=0.0, optimizer="momentum", lr=0.05, batch_size=64,
                          weight_decay=0.0, augment=False, seed=0),
                  model=dict(arch="nin", base_width=32, head_relu=False), epochs=2, n_train=512, n_test=128),
}


# --------------------------------------------------------------------------- in the child


def _split(workload: str) -> dict:
    import torch

    from prunability.data import build_split, channel_stats

    if workload == "digits":
        return build_split(dict(source="digits", test_fraction=0.3, split_seed=0, max_train=None, max_test=None,
                                local_dir=None, label_noise=0.0, label_noise_seed=0))
    spec = WORKLOADS[workload]
    g = torch.Generator().manual_seed(0)
    x = torch.randint(0, 256, (spec["n_train"] + spec["n_test"], 3, 32, 32), generator=g, dtype=torch.uint8)
    y = torch.randint(0, 10, (len(x),), generator=g)
    mean, std = channel_stats(x[: spec["n_train"]])
    return dict(x_train=x[: spec["n_train"]], y_train=y[: spec["n_train"]], x_test=x[spec["n_train"]:],
                y_test=y[spec["n_train"]:], mean=mean, std=std, classes=[str(c) for c in range(10)], source="random")


def _train_config(epochs: int) -> dict:
    return dict(ce_target=0.01, max_epochs=epochs, stopping="budget", eval_batch_size=512, checkpoint_every=10**6,
                checkpoint_min_interval_s=10**6, augment_pad=4, augment_flip=False, deterministic=True,
                fp32_precision="ieee", device="cpu")


def child(spec: dict) -> None:
    import torch

    from prunability.platform import describe
    from prunability.train import train_model

    torch.set_num_threads(spec["threads"])
    workload = WORKLOADS[spec["workload"]]
    split = _split(spec["workload"])
    epochs = 1 if spec["probe"] else spec["epochs"]
    with tempfile.TemporaryDirectory() as folder:
        start, cpu_start = time.perf_counter(), time.process_time()
        result = train_model(workload["hp"], workload["model"], _train_config(epochs), split, Path(folder) / "c.pt",
                             log=lambda line: None)
        seconds, cpu_seconds = time.perf_counter() - start, time.process_time() - cpu_start
    if not spec["probe"]:
        torch.save(result.final_state, spec["out"])
    platform = describe("cpu")
    sys.stdout.flush()
    print("RESULT " + json.dumps({"seconds": seconds, "cpu_seconds": cpu_seconds, "train_loss": result.summary["train_loss"],
                                  "cpu_capability": platform["cpu_capability"], "threads": platform["torch_threads"]}))


# --------------------------------------------------------------------------- in the parent


def run_child(workload: str, name: str, epochs: int, out: Path | None, probe: bool = False) -> tuple[dict, str]:
    env_caps, threads = CONFIGS[name]
    env = {k: v for k, v in os.environ.items() if k not in CONTROLLED}
    env.update(env_caps)
    if probe:
        env.update(ONEDNN_VERBOSE="1", MKL_VERBOSE="1")
    spec = dict(workload=workload, epochs=epochs, threads=threads, out=str(out) if out else None, probe=probe)
    done = subprocess.run([sys.executable, __file__, "--child", json.dumps(spec)], capture_output=True, text=True, env=env)
    if done.returncode != 0:
        raise RuntimeError(f"{workload}/{name} failed:\n{done.stderr[-3000:]}")
    line = next(line for line in done.stdout.splitlines() if line.startswith("RESULT "))
    return json.loads(line[len("RESULT "):]), done.stdout


def kernels_used(verbose: str) -> str:
    """The ISAs of the convolution kernels oneDNN ran and its ISA cap, and MKL's calls
    with their CNR mode, from a run with ONEDNN_VERBOSE and MKL_VERBOSE on. (MKL names
    its code path only on Intel CPUs, so on others the mode is all it tells.)"""
    isas = set()
    for line in verbose.splitlines():
        if line.startswith(("onednn_verbose", "dnnl_verbose")) and ",exec," in line:
            fields = line.split(",")
            # onednn_verbose,v1,primitive,exec,cpu,<kind>,<implementation>,...
            i = fields.index("exec")
            if fields[i + 2] in ("convolution", "inner_product", "matmul"):
                isas.update(impl.split(":")[-1] for impl in fields[i + 3].split("+"))
    cap = re.search(r"^(?:onednn|dnnl)_verbose,(?:v1,)?info,cpu,isa:(.*)$", verbose, re.MULTILINE)
    cap = cap.group(1).replace("Intel ", "").strip() if cap else "?"
    calls = re.findall(r"^MKL_VERBOSE (?!oneMKL|Intel).*?CNR:(\S+)", verbose, re.MULTILINE)
    mkl = f"MKL {len(calls)} calls" + (f" (CNR {'/'.join(sorted(set(calls)))})" if calls else "")
    return f"oneDNN convs {'+'.join(sorted(isas)) or 'none'} (cap: {cap}); {mkl}"


def weights(path: Path):
    import torch

    return torch.load(path, weights_only=True)


def digest(state: dict) -> str:
    h = hashlib.sha256()
    for key in sorted(state):
        h.update(key.encode())
        h.update(state[key].contiguous().numpy().tobytes())
    return h.hexdigest()[:12]


def max_difference(a: dict, b: dict) -> float:
    return max(float((a[k].double() - b[k].double()).abs().max()) for k in a if a[k].is_floating_point())


def benchmark(workload: str, names: list[str], repeats: int, epochs: int, folder: Path) -> None:
    wall = {name: [] for name in names}
    cpu = {name: [] for name in names}
    first, digests = {}, {name: set() for name in names}
    for repeat in range(repeats):
        for name in names:
            out = folder / f"{workload}-{name}-{repeat}.pt"
            result, _ = run_child(workload, name, epochs, out)
            wall[name].append(result["seconds"])
            cpu[name].append(result["cpu_seconds"])
            first.setdefault(name, result)
            digests[name].add(digest(weights(out)))
        print(f"  round {repeat + 1}/{repeats}: " + ", ".join(f"{n} {wall[n][-1]:.2f}s" for n in names), flush=True)
    kernels = {name: kernels_used(run_child(workload, name, epochs, None, probe=True)[1]) for name in names}
    base = weights(folder / f"{workload}-default-0.pt")
    base_wall, base_cpu = statistics.median(wall["default"]), statistics.median(cpu["default"])
    print(f"\n{workload}: {epochs} epochs, medians of {repeats} interleaved runs per configuration; "
          "ratio = time / default's time")
    header = (f"{'configuration':<14} {'thr':>3} {'aten':<8} {'weights':<12} {'=default':<8} {'max |dw|':>9} "
              f"{'train CE':>10} {'wall s':>7} {'ratio':>6} {'cpu s':>7} {'ratio':>6}  kernels (probe epoch)")
    print(header)
    print("-" * len(header))
    groups: dict[str, list[str]] = {}
    for name in names:
        threads = CONFIGS[name][1]
        state = weights(folder / f"{workload}-{name}-0.pt")
        groups.setdefault(digest(state), []).append(name)
        stable = "" if len(digests[name]) == 1 else f"  ({len(digests[name])} different weights over the repeats!)"
        w, c = statistics.median(wall[name]), statistics.median(cpu[name])
        print(f"{name:<14} {threads:>3} {first[name]['cpu_capability']:<8} {digest(state):<12} "
              f"{'yes' if digest(state) == digest(base) else 'no':<8} {max_difference(state, base):>9.2e} "
              f"{first[name]['train_loss']:>10.6f} {w:>7.2f} {w / base_wall:>6.2f} {c:>7.2f} {c / base_cpu:>6.2f}  "
              f"{kernels[name]}{stable}")
    print("same bits: " + "; ".join(" = ".join(g) for g in groups.values()))
    for name in names:
        env = " ".join(f"{k}={v}" for k, v in CONFIGS[name][0].items())
        print(f"  {name}: {env or '(no cap)'}, {CONFIGS[name][1]} thread(s)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workload", choices=["digits", "cifar", "both"], default="both")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=None, help="training epochs (default: 3 digits, 2 cifar)")
    parser.add_argument("--configs", default=",".join(CONFIGS), help="comma-separated subset of " + ",".join(CONFIGS))
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(json.loads(args.child))
        return
    from prunability.platform import describe

    names = [n for n in args.configs.split(",") if n]
    if "default" not in names:
        names.insert(0, "default")
    here = describe()
    print(f"{here['cpu_model']} ({here['logical_cpus']} logical CPUs; {' '.join(f for f in here['cpu_flags'] if f.startswith(('avx', 'amx', 'fma')))}), "
          f"{here['os']} {here['kernel']}, Python {here['python']}, torch {here['torch']} (CPU capability "
          f"{here['cpu_capability']}), oneDNN {here['onednn_version']}, MKL {here['mkl_version']}; load average "
          f"{os.getloadavg()[0]:.1f}")
    workloads = ["digits", "cifar"] if args.workload == "both" else [args.workload]
    with tempfile.TemporaryDirectory() as folder:
        for workload in workloads:
            epochs = args.epochs or WORKLOADS[workload]["epochs"]
            benchmark(workload, names, args.repeats, epochs, Path(folder))
            print()


if __name__ == "__main__":
    main()
