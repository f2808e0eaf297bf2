"""The checks of one composed job: run options, training parameters, devices, W&B settings, and that its dataset
and model can be built (names resolved against the registries); the users' files, checked without torch."""
from __future__ import annotations

import dataclasses
import re
from functools import lru_cache

from omegaconf import DictConfig, ListConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from xaibench.config.preflight.hydra_settings import check_name_lengths
from xaibench.config.preflight.override_errors import _first_line
from xaibench.config.verdicts import Verdicts
from xaibench.engine.cell import CellSpec
from xaibench.errors import UserError


def _check_user_files(configs: list[DictConfig]) -> None:
    """Missing files, absent columns and too many samples, found without importing torch (``datachecks``)."""
    from xaibench.config.datachecks import check_user_files

    seen = set()
    for cfg in configs:
        try:
            dataset = OmegaConf.to_container(cfg.dataset, resolve=True)
            model = OmegaConf.to_container(cfg.model, resolve=True)
            n_samples = cfg.get("n_samples", 32)
        except (OmegaConfBaseException, AttributeError):
            continue  # validate_config reports malformed sections in full
        marker = repr((dataset, model, n_samples))
        if marker not in seen and isinstance(dataset, dict) and isinstance(model, dict) and isinstance(n_samples, int):
            seen.add(marker)
            check_user_files(dataset, model, n_samples)


def validate_config(cfg: DictConfig, *, check_device: bool = True, verdicts: Verdicts | None = None,
                    built: set | None = None, reuse_builds: bool = False) -> CellSpec:
    """Resolve one job config against the registries; check that its data and model can be built.

    ``verdicts``: the cells validated before under this code (``xaibench.config.verdicts``); a known cell skips the
    registry, dataset and model checks (they import torch), the checks of its run options and devices still run.
    ``built``: the (dataset, model, n_samples) whose build checks passed (added to); with ``reuse_builds`` a job
    whose triple is there skips building them again for its own seed (~17 ms a job; a 10k-job sweep over seeds).
    Every other check (names, types, training parameters, seed range, devices) still runs on the job.
    """
    from xaibench.engine.device import resolve_device

    try:
        cell = CellSpec.from_config(cfg)
    except (OmegaConfBaseException, KeyError) as error:
        raise UserError(_invalid_config(error)) from None
    _check_run_options(cfg)
    if not cell.metrics:
        raise UserError("the metric suite is empty; choose one with metrics=<suite> (e.g. metrics=default)")
    resolve_device(cell.device, check_available=check_device)
    _check_devices(cfg.get("devices"), check_device)
    if verdicts is not None and verdicts.known(cell):
        return cell
    from xaibench.engine.runner import ResolvedCell

    resolved = ResolvedCell.resolve(cell)
    _check_training(resolved.model)
    triple = (resolved.dataset, resolved.model, cell.n_samples)
    if reuse_builds and built is not None and triple in built:
        return cell  # not remembered in verdicts: its own seed's build was not checked
    dataset = _built_dataset(resolved.dataset, cell.seed)
    n_test = len(dataset.test)
    if cell.n_samples > n_test:
        raise UserError(
            f"n_samples={cell.n_samples} exceeds the {n_test} test samples of dataset {cell.dataset_name}; "
            f"use n_samples<={n_test}"
        )
    _check_model_builds(resolved.model, resolved.dataset, cell.seed)
    if built is not None:
        built.add(triple)
    if verdicts is not None:
        verdicts.add(cell)
    return cell


def _invalid_config(error: Exception) -> str:
    """``invalid config: <key>: <OmegaConf's reason>``: the key is named (``seed=${nope}`` said only "Interpolation
    key 'nope' not found"), with what an interpolation may name."""
    key = getattr(error, "full_key", None)
    where = f"{key}: " if key else ""
    interpolation = "nterpolation" in f"{type(error).__name__} {error}"
    hint = ("; an interpolation names a key of the config (${seed}, ${model.name}) or an environment variable "
            "(${oc.env:NAME,default})") if interpolation else ""
    return f"invalid config: {where}{_first_line(error)}{hint}"


def _check_training(model) -> None:
    """Training parameters must make a trained model: ``epochs=-1`` would score an untrained one as ``ok``."""
    fields = {f.name: f.default for f in dataclasses.fields(model)}
    for name in ("epochs", "batch_size", "lr", "weight_decay", "min_accuracy"):
        if name not in fields:
            continue
        value = getattr(model, name)
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise UserError(f"model.{name} must be a number, got {value!r}")
        # epochs=0 is valid only where the model's own default is 0 (pretrained adapters: use the weights as-is)
        smallest = {"epochs": 0 if fields["epochs"] == 0 else 1, "batch_size": 1}.get(name)
        if name in ("epochs", "batch_size") and (value != int(value) or value < smallest):
            raise UserError(f"model.{name} must be an integer >= {smallest}, got {value!r}")
        if name == "lr" and not value > 0:
            raise UserError(f"model.lr must be positive, got {value!r}")
        if name == "weight_decay" and not value >= 0:
            raise UserError(f"model.weight_decay must be >= 0, got {value!r}")
        if name == "min_accuracy" and not 0 <= value <= 1:
            raise UserError(f"model.min_accuracy must be in [0, 1], got {value!r}")
    _check_layer_sizes(model, fields)


def _check_layer_sizes(model, defaults: dict) -> None:
    """Layer widths (``hidden``, ``channels``: tuples of ints) must be >= 1: a 0-wide layer trained a constant
    model that was scored as ``ok``, and ``channels=[0, 4]`` failed every cell at training time."""
    for name, default in defaults.items():
        if not (isinstance(default, tuple) and default and all(type(v) is int for v in default)):
            continue
        value = getattr(model, name)
        if not all(isinstance(v, int) and not isinstance(v, bool) and v >= 1 for v in value):
            raise UserError(f"model.{name} must be a list of integers >= 1 (layer widths), got {list(value)!r}")


def _check_devices(devices, check_available: bool) -> None:
    """``devices`` (one job per device on a box): null, ``all`` or a list of devices that exist here."""
    if devices is None:
        return
    from xaibench.engine.device import resolve_device
    from xaibench.engine.device_slots import expand_devices

    listed = OmegaConf.to_container(devices) if isinstance(devices, (DictConfig, ListConfig)) else devices
    if not isinstance(listed, (str, list)):
        raise UserError(f"devices must be a list of devices (e.g. [cuda:0, cuda:1]) or 'all', got {listed!r}")
    for device in expand_devices(listed):
        resolve_device(device, check_available=check_available)


def _check_run_options(cfg: DictConfig) -> None:
    threads = cfg.get("threads", 1)
    if isinstance(threads, bool) or not isinstance(threads, int) or threads < 1:
        raise UserError(f"threads must be a positive integer, got {threads!r}")
    for flag in ("strict", "progress", "verbose"):  # verbose=abc ran, quietly
        if not isinstance(cfg.get(flag, False), bool):
            raise UserError(f"{flag} must be true or false, got {cfg.get(flag)!r}")
    sweep_id = str(cfg.get("sweep_id", ""))
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]*", sweep_id):
        raise UserError(f"sweep_id must be a plain name (letters, digits, '.', '_', '-'), got {sweep_id!r}")
    for key in ("results_dir", "store_dir"):
        _check_folder_option(key, cfg.get(key))
    check_name_lengths(str(cfg.get("store_dir")), "store_dir")  # Path.exists raised ENAMETOOLONG: a traceback
    check_name_lengths(str(cfg.get("results_dir")), "results_dir")
    check_name_lengths(sweep_id, "sweep_id")  # exit 1 after results/runs was made
    _check_logger(cfg.get("logger") or {})


def _check_folder_option(key: str, value) -> None:
    """``results_dir`` / ``store_dir``: a folder path. Empty (``results_dir=$OUT`` with OUT unset) wrote the sweep
    into the working folder; null, a number or a list ended in a TypeError traceback after files were written."""
    if isinstance(value, str) and value.strip():
        return
    example = {"results_dir": "results/runs", "store_dir": "results/store"}[key]
    if value is None or (isinstance(value, str)):
        what = "null" if value is None else "empty (an unset shell variable?)"
        raise UserError(f"{key} is {what}; give a folder, e.g. {key}={example} ({key}=. for this folder)")
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        raise UserError(f"{key} must be a folder path, got the number {value!r}; quote a folder name made of "
                        f"digits: \"{key}='{value}'\"")
    raise UserError(f"{key} must be a folder path, got {value!r}; e.g. {key}={example}")


WANDB_MODES = ("offline", "online", "disabled")  # conf/logger/wandb.yaml's


def _check_logger(logger) -> None:
    """W&B's settings, which W&B itself checked only when the sweep's results were logged, after every cell ran
    (``logger.mode=bogus``: a 4-line pydantic error as a warning, exit 0)."""
    if logger.get("name") != "wandb":
        return
    if logger.get("mode") not in WANDB_MODES:
        raise UserError(f"logger.mode must be one of {', '.join(WANDB_MODES)}, got {logger.get('mode')!r}")
    if not isinstance(logger.get("log_cached", False), bool):
        raise UserError(f"logger.log_cached must be true or false, got {logger.get('log_cached')!r}")
    for key, optional in (("project", False), ("entity", True)):
        value = logger.get(key)
        if not (isinstance(value, str) and value.strip()) and not (optional and value is None):
            raise UserError(f"logger.{key} must be a W&B {key} name, got {value!r}")


@lru_cache(maxsize=64)
def _built_dataset(spec, seed: int):
    from xaibench.engine.datasets import build_dataset

    try:
        return build_dataset(spec, seed)
    except UserError:
        raise
    except Exception as error:  # noqa: BLE001 - a spec that cannot build is a config problem, reported in one line
        raise UserError(f"dataset {spec.name} cannot be built with these parameters: "
                        f"{type(error).__name__}: {_first_line(error)}") from None


@lru_cache(maxsize=64)
def _check_model_builds(model_spec, dataset_spec, seed: int) -> None:
    """Build (not train) the model for the dataset, so impossible shapes fail before the sweep starts."""
    if dataset_spec.modality not in model_spec.modalities:
        return  # not_applicable, recorded as rows
    try:
        model_spec.build(_built_dataset(dataset_spec, seed))
    except UserError:
        raise
    except Exception as error:  # noqa: BLE001
        raise UserError(f"model {model_spec.name} cannot be built for dataset {dataset_spec.name}: "
                        f"{type(error).__name__}: {_first_line(error)}") from None
