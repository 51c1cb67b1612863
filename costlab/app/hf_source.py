"""Where an ``hf:PATH`` target's config is: found before transformers is asked, never guessed.

transformers' ``AutoConfig.from_pretrained`` guesses a model type from the *path's name* when the
config names none (``my-gpt2-run/`` becomes GPT-2, any path containing "empty" an MPT). costlab
never lets it: ``PATH`` must be

- a directory holding ``config.json``,
- a ``config.json`` file itself, or
- a hub name (``gpt2``, ``org/name``) whose snapshot is in the local Hugging Face cache
  (``$HF_HUB_CACHE``, else ``$HF_HOME/hub``, else ``~/.cache/huggingface/hub``; nothing is downloaded),

and that config must be a JSON object naming its ``model_type``. Its layer counts are held to
:data:`MAX_LAYERS` before any model is built (a config of 10^6 layers would build for hours).
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
from typing import Any

from ..core.errors import TargetError

#: The most layers any one layer count in a config may ask for (the largest published models have
#: a few hundred).
MAX_LAYERS = 10_000
#: The largest config.json read (real ones are a few kB).
MAX_CONFIG_BYTES = 10 * 2**20
_HUB_NAME = re.compile(r"^[A-Za-z0-9][\w.-]*(/[A-Za-z0-9][\w.-]*)?$")
_LAYER_FIELD = re.compile(r"(^|_)(n_?)?layers?$|^num_.*layers$|_layers$")


def hub_cache() -> str:
    """The local Hugging Face hub cache directory (as huggingface_hub finds it)."""
    if os.environ.get("HF_HUB_CACHE"):
        return os.environ["HF_HUB_CACHE"]
    home = os.environ.get("HF_HOME") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache"), "huggingface")
    return os.path.join(home, "hub")


def _cached_config(name: str) -> str | None:
    """The config.json of hub model ``name`` in the local cache (its ``main`` snapshot first), or None."""
    repo = os.path.join(hub_cache(), "models--" + name.replace("/", "--"))
    snapshots = os.path.join(repo, "snapshots")
    try:
        with open(os.path.join(repo, "refs", "main"), encoding="utf-8") as handle:
            revisions = [handle.read().strip()]
    except OSError:
        revisions = []
    try:
        revisions += sorted(os.listdir(snapshots))
    except OSError:
        return None
    for revision in revisions:
        candidate = os.path.join(snapshots, revision, "config.json")
        if revision and os.path.isfile(candidate):
            return candidate
    return None


def _check_layers(data: Any, where: str) -> None:
    """Every layer count in the config (sub-configs included) within :data:`MAX_LAYERS`."""
    if isinstance(data, dict):
        for key, value in data.items():
            if isinstance(value, int) and not isinstance(value, bool) and isinstance(key, str) \
                    and _LAYER_FIELD.search(key) and value > MAX_LAYERS:
                raise TargetError(f"{where}: {key} = {value} is more than {MAX_LAYERS} layers")
            _check_layers(value, where)
    elif isinstance(data, list):
        for value in data:
            _check_layers(value, where)


def resolve_hf_config(path: str) -> str:
    """The ``config.json`` file that ``hf:PATH`` names, checked (see the module docstring); else a
    one-line :class:`TargetError`. transformers' absence is reported first (as the bridge words it)."""
    where = f"hf:{path}"
    if importlib.util.find_spec("transformers") is None:
        raise TargetError("hf: targets need transformers (pip install costlab[hf])")
    if not path:
        raise TargetError("hf: names no config: give hf:DIRECTORY (holding config.json), hf:config.json "
                          "or hf:NAME of a model in the local Hugging Face cache")
    if os.path.isdir(path):
        config = os.path.join(path, "config.json")
        if not os.path.isfile(config):
            raise TargetError(f"{where}: the directory holds no config.json")
    elif os.path.exists(path) or os.path.islink(path):
        config = path
    else:
        cached = _cached_config(path) if _HUB_NAME.match(path) else None
        if cached is None:
            raise TargetError(f"{where}: no such directory or file, and no model of that name in the local "
                              f"Hugging Face cache ({hub_cache()}); nothing is downloaded")
        config = cached
    try:
        if os.path.getsize(config) > MAX_CONFIG_BYTES:
            raise TargetError(f"{where}: {config} is over {MAX_CONFIG_BYTES // 2**20} MiB; not a model config")
        with open(config, encoding="utf-8") as handle:
            data = json.load(handle)
    except TargetError:
        raise
    except (OSError, ValueError, RecursionError) as error:
        reason = error.strerror if isinstance(error, OSError) and error.strerror else str(error).splitlines()[0]
        raise TargetError(f"{where}: cannot read {config} as JSON ({reason})") from None
    if not isinstance(data, dict):
        raise TargetError(f"{where}: {config} is not a JSON object")
    kind = data.get("model_type")
    if not isinstance(kind, str) or not kind.strip():
        raise TargetError(f"{where}: {config} names no model_type (costlab never guesses it from the path)")
    _check_layers(data, where)
    return config
