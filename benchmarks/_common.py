"""Shared by the benchmark scripts: configs as a sweep would compose them, device handling, common flags."""
from __future__ import annotations

import argparse
from pathlib import Path

import torch
from omegaconf import OmegaConf

ROOT = Path(__file__).resolve().parents[1]
QUICKSTART = ("mlp:breast_cancer", "cnn:digits")


def conf_section(group: str, name: str) -> dict:
    """The option's parameters exactly as ``conf/<group>/<name>.yaml`` gives them (what a sweep would use)."""
    return dict(OmegaConf.to_container(OmegaConf.load(ROOT / "conf" / group / f"{name}.yaml"), resolve=True))


def create(registry, group: str, name: str):  # type: ignore[no-untyped-def]
    params = conf_section(group, name)
    return registry.create(params.pop("name"), params)


def sync(device: str) -> None:
    """Wait for queued GPU work so timings cover it."""
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def add_common_arguments(parser: argparse.ArgumentParser, out: Path) -> None:
    parser.add_argument("--device", default="cpu", help="cpu | cuda | cuda:N")
    parser.add_argument("--pairs", nargs="+", default=list(QUICKSTART), help="model:dataset pairs")
    parser.add_argument("--n-samples", type=int, default=32)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=None, help="torch intra-op threads (default: torch's)")
    parser.add_argument("--store", default=None, help="store directory for trained models (default: a temp dir)")
    parser.add_argument("--out", default=str(out))


def apply_device_and_threads(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    if args.device.startswith("cuda") and not torch.cuda.is_available():
        parser.error("--device cuda but no CUDA device is visible")
    if args.threads:
        torch.set_num_threads(args.threads)
