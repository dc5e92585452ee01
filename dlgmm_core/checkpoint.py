"""The one checkpoint format: a model rebuilt from its file alone.

A checkpoint is a ``torch.save`` of a plain dict::

    {"format": "dlgmm-checkpoint", "version": 1,
     "kind": "<model kind>", "config": {...the fields of the model's config...},
     "state_dict": {name: tensor (CPU)},
     "metadata": {...},          # free-form, e.g. training summary
     "extra": {...} or None}     # free-form, e.g. optimizer/RNG/epoch state

Everything in it (including ``metadata`` and ``extra``) must be loadable with
``torch.load(weights_only=True)``: dicts, lists, tuples, sets, str, int, float,
bool, None, bytes, tensors, torch.Size/dtype/device. NumPy arrays and scalars
are *not* (store them as tensors or lists); :func:`save_checkpoint` checks this
and raises ``TypeError`` naming the offending entry, so a checkpoint that was
written can always be read back. Writes are atomic (temp file + rename).

The model is rebuilt as ``Model(Config(**config))`` through the registry
(:func:`dlgmm_core.registry.make_config`), its config checked on the way; a
config field added later with a default (``encoder_activation``) reads the
files written before it.
"""
from __future__ import annotations

import collections
import os
from pathlib import Path
from typing import Any, Mapping

import torch
from torch import nn

from .errors import DlgmmError
from .fields import as_dict
from .io import atomic_path

FORMAT = "dlgmm-checkpoint"
VERSION = 1

_SAFE_LEAVES = (str, int, float, bool, complex, bytes, type(None), torch.Tensor, torch.Size, torch.dtype,
                torch.device)


def _check_safe(obj: Any, where: str) -> None:
    """Raise TypeError if ``obj`` holds anything ``torch.load(weights_only=True)`` refuses."""
    if isinstance(obj, _SAFE_LEAVES):
        return
    if isinstance(obj, (dict, collections.OrderedDict)):
        for key, value in obj.items():
            _check_safe(key, f"{where} key {key!r}")
            _check_safe(value, f"{where}[{key!r}]")
        return
    if isinstance(obj, (list, tuple, set, frozenset)):
        for index, value in enumerate(obj):
            _check_safe(value, f"{where}[{index}]")
        return
    raise TypeError(f"save_checkpoint: {where} is a {type(obj).__module__}.{type(obj).__qualname__}, which "
                    f"torch.load(weights_only=True) cannot read; store tensors, lists or plain numbers instead")


def save_checkpoint(path: str | os.PathLike, model: nn.Module, *, state_dict: Mapping[str, torch.Tensor] | None = None,
                    extra: dict | None = None, metadata: dict | None = None) -> None:
    """Write ``model`` (kind, config, weights) plus ``metadata`` and ``extra`` to ``path``, atomically.

    ``state_dict``: weights to store instead of the model's current ones (e.g.
    the best epoch's, kept aside during training); they must fit the model
    (same names and shapes, else ``ValueError``). The file then holds what
    ``model`` would store with those weights loaded, which stays untouched.
    """
    for name in ("kind", "config"):
        if not hasattr(model, name):
            raise TypeError(f"save_checkpoint: the model has no {name!r}; build it from its config "
                            f"(dlgmm_core.registry.build)")
    if state_dict is None:
        state_dict = model.state_dict()
    else:
        problem = _state_dict_problem(model.state_dict(), state_dict)
        if problem:
            raise ValueError(f"save_checkpoint: state_dict does not fit the {model.kind} model ({problem})")
    payload = {
        "format": FORMAT,
        "version": VERSION,
        "kind": model.kind,
        "config": as_dict(model.config),
        "state_dict": {name: value.detach().cpu().clone() for name, value in state_dict.items()},
        "metadata": dict(metadata or {}),
        "extra": extra,
    }
    _check_safe(payload["config"], "config")
    _check_safe(payload["metadata"], "metadata")
    _check_safe(extra, "extra")
    # Through a file handle: torch.save names the archive after a path, and the
    # temporary name is random, so the same content would give different bytes
    # (and a new DVC hash) on every save.
    with atomic_path(path) as tmp, open(tmp, "wb") as handle:
        torch.save(payload, handle)


def _state_dict_problem(expected: dict[str, torch.Tensor], found: dict[str, Any]) -> str | None:
    """A one-line description of how ``found`` differs from ``expected`` (keys, shapes), or None."""
    missing = [k for k in expected if k not in found]
    unexpected = [k for k in found if k not in expected]
    shapes = [f"{k}: {tuple(found[k].shape)} in the file vs {tuple(v.shape)} for the config"
              for k, v in expected.items()
              if k in found and (not isinstance(found[k], torch.Tensor) or found[k].shape != v.shape)]
    parts = []
    if missing:
        parts.append(f"missing {', '.join(missing[:5])}{' ...' if len(missing) > 5 else ''}")
    if unexpected:
        parts.append(f"unexpected {', '.join(unexpected[:5])}{' ...' if len(unexpected) > 5 else ''}")
    if shapes:
        parts.append(f"shape mismatch {'; '.join(shapes[:3])}{' ...' if len(shapes) > 3 else ''}")
    return "; ".join(parts) or None


def load_checkpoint(path: str | os.PathLike, map_location: Any = "cpu", expect_kind: str | None = None,
                    expect_input_dim: int | None = None, with_extra: bool = False):
    """Rebuild the model stored in ``path`` (in eval mode); with ``with_extra`` return ``(model, extra)``.

    The model's ``checkpoint_metadata`` attribute holds the stored metadata.
    Every problem -- missing file, unreadable/corrupt/truncated file, another
    format, a kind or input_dim other than expected, a config that does not
    build, weights that do not fit the config or are not finite -- raises one :class:`DlgmmError`
    naming the file.
    """
    from . import registry  # late import: the models import torch.distributions code

    path = Path(path)
    if not path.is_file():
        raise DlgmmError(f"{path}: checkpoint not found")
    try:
        payload = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as err:  # torch raises many types for corrupt/truncated/pickled-object files
        raise DlgmmError(f"{path}: not a readable dlgmm checkpoint (corrupt or truncated?): "
                         f"{type(err).__name__}: {str(err).splitlines()[0] if str(err) else ''}") from None
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise DlgmmError(f"{path}: not a dlgmm checkpoint (no {FORMAT!r} format tag)")
    if payload.get("version") != VERSION:
        raise DlgmmError(f"{path}: checkpoint version {payload.get('version')!r} is not supported "
                         f"(this code reads version {VERSION})")
    for key in ("kind", "config", "state_dict"):
        if key not in payload:
            raise DlgmmError(f"{path}: checkpoint lacks its {key!r} entry")
    kind, config, state = payload["kind"], payload["config"], payload["state_dict"]
    if expect_kind is not None and kind != expect_kind:
        raise DlgmmError(f"{path}: holds a {kind!r} model, expected {expect_kind!r}")
    if not isinstance(config, dict):
        raise DlgmmError(f"{path}: checkpoint config is not a dict")
    if expect_input_dim is not None and config.get("input_dim") != expect_input_dim:
        raise DlgmmError(f"{path}: model input_dim is {config.get('input_dim')!r}, expected {expect_input_dim} "
                         f"(a model of another data set?)")
    try:
        model = registry.build(registry.make_config(kind, config, where="the stored config"))
    except DlgmmError as err:
        raise DlgmmError(f"{path}: stored config does not build a model: {err}") from None
    if not isinstance(state, dict):
        raise DlgmmError(f"{path}: checkpoint state_dict is not a dict")
    problem = _state_dict_problem(model.state_dict(), state)
    if problem:
        raise DlgmmError(f"{path}: weights do not match the stored {kind} config ({problem})")
    non_finite = [name for name, t in state.items() if t.is_floating_point() and not bool(torch.isfinite(t).all())]
    if non_finite:  # else the first sample fails deep in torch (a NaN scale) or every number comes out NaN
        raise DlgmmError(f"{path}: weights hold NaN or infinite values ({', '.join(non_finite[:3])}"
                         f"{', ...' if len(non_finite) > 3 else ''}); train the model again")
    model.load_state_dict(state)
    if isinstance(map_location, (str, torch.device)):
        model.to(map_location)
    model.eval()
    model.checkpoint_metadata = payload.get("metadata") or {}
    return (model, payload.get("extra")) if with_extra else model
