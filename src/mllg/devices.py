"""Where a stage computes: the torch device a GPU request resolves to.

A workflow job asks for GPUs through its config key (``train.gpu``, ``simulate.gpu``,
also the job's ``resources: gpu``, or a site's ``resources: gres``:
:func:`requested_gpus`). :func:`select_device` turns that request into the device the job
uses, before anything is written:

* ``gpu = 0``: the CPU;
* ``gpu >= 1`` and torch sees a CUDA device: ``cuda`` (the first visible device; a
  scheduler sets ``CUDA_VISIBLE_DEVICES`` to the job's own);
* ``gpu >= 1`` and no CUDA device: :class:`DeviceError`, one sentence naming the key, so
  that a job never computes silently on one CPU core in a GPU allocation.
"""

from __future__ import annotations

import logging

__all__ = ["DeviceError", "describe_device", "requested_gpus", "select_device"]

log = logging.getLogger(__name__)


class DeviceError(RuntimeError):
    """A GPU was requested where torch sees no CUDA device."""


def requested_gpus(gpu: int | str | None = 0, gres: str | None = None) -> int:
    """GPUs a job asked for, in either request form of a SLURM site.

    Parameters
    ----------
    gpu : int, str or None
        The job's ``gpu`` resource (the plugin's ``--gpus=N``).
    gres : str or None
        The job's ``gres`` resource (``--gres``), e.g. ``"gpu:1"``, ``"gpu:a100:2"`` or
        ``"gpu:1,nvme:1"``.

    Returns
    -------
    int
        The larger of the two requests (0 when neither names a GPU).
    """
    n = int(gpu or 0)
    for part in str(gres or "").split(","):
        fields = part.strip().split(":")
        if fields[0] == "gpu" and len(fields) >= 2 and fields[-1].isdigit():
            n = max(n, int(fields[-1]))
    return n


def select_device(gpu: int, key: str) -> str:
    """Torch device of a job that requests ``gpu`` GPUs through the config key ``key``.

    Parameters
    ----------
    gpu : int
        Number of GPUs requested (``>= 0``).
    key : str
        The config key of the request, named in the message (``"train.gpu"``).

    Returns
    -------
    str
        ``"cpu"`` or ``"cuda"``.

    Raises
    ------
    DeviceError
        ``gpu >= 1`` and ``torch.cuda.is_available()`` is false.
    """
    if int(gpu) < 1:
        return "cpu"
    import torch

    if not torch.cuda.is_available():
        raise DeviceError(
            f"{key} = {int(gpu)} asks for a GPU, but torch sees no CUDA device here "
            f"(torch {torch.__version__}, CUDA build {torch.version.cuda}); set {key}: 0 "
            "to run on the CPU, or run the job where a CUDA device is visible."
        )
    return "cuda"


def describe_device(device: str) -> str:
    """One line naming the device, for the job's log (``cuda: NVIDIA H200`` or ``cpu``)."""
    import torch

    if str(device).startswith("cuda"):
        return f"cuda: {torch.cuda.get_device_name(torch.device(device))}"
    return f"cpu ({torch.get_num_threads()} torch threads)"
