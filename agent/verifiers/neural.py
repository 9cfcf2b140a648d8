"""What the neural verifier backends share: device and dtype options, one-line load errors.

Importing this module imports torch (the ``[models]`` extra).
"""

from __future__ import annotations

import torch

from physics_iq.registry import BackendOptionError

_DTYPES = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}


def resolve_device(device: str, owner: str) -> torch.device:
    """``"auto"`` (CUDA when there is one, else CPU), ``"cpu"``, ``"cuda"``, ``"cuda:N"`` or ``"mps"``.

    Raises:
        BackendOptionError: an unknown device, or one this machine does not have.

    >>> resolve_device("cpu", "x")
    device(type='cpu')
    """
    text = str(device).strip().lower()
    if text == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        resolved = torch.device(text)
    except RuntimeError:
        resolved = None
    if resolved is None or resolved.type not in ("cpu", "cuda", "mps"):
        raise BackendOptionError(
            f"{owner}: device must be 'auto', 'cpu', 'cuda', 'cuda:N' or 'mps', got {device!r}"
        )
    if resolved.type == "cuda":
        if not torch.cuda.is_available():
            raise BackendOptionError(f"{owner}: device {device!r} asked for, but CUDA is not available here")
        if resolved.index is not None and resolved.index >= torch.cuda.device_count():
            raise BackendOptionError(
                f"{owner}: device {device!r} asked for, but there are {torch.cuda.device_count()} CUDA device(s)"
            )
    if resolved.type == "mps" and not torch.backends.mps.is_available():
        raise BackendOptionError(f"{owner}: device {device!r} asked for, but MPS is not available here")
    return resolved


def resolve_dtype(dtype: str, device: torch.device, owner: str) -> torch.dtype:
    """``"auto"`` (bfloat16 on CUDA, float32 elsewhere), ``"float32"``, ``"float16"`` or ``"bfloat16"``.

    >>> resolve_dtype("auto", torch.device("cpu"), "x")
    torch.float32
    """
    if dtype == "auto":
        return torch.bfloat16 if device.type == "cuda" else torch.float32
    if dtype not in _DTYPES:
        raise BackendOptionError(
            f"{owner}: dtype must be 'auto' or one of {', '.join(_DTYPES)}, got {dtype!r}"
        )
    return _DTYPES[dtype]


def first_line(exc: BaseException) -> str:
    """The first non-empty line of an exception's message (library errors can run to pages).

    >>> first_line(ValueError("no config here\\nsee the docs"))
    'no config here'
    """
    for line in str(exc).splitlines():
        if line.strip():
            return line.strip()
    return type(exc).__name__
