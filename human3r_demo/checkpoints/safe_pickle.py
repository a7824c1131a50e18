"""Reading a ``.pth`` without running anything from it.

A training checkpoint is a pickle: loading one with ``torch.load(weights_only=False)`` can run
arbitrary code. Here the pickle's globals are first listed with ``pickletools`` (nothing is
unpickled); anything that is neither a tensor nor a known configuration class (OmegaConf, argparse)
is refused before loading. Then ``torch.load(weights_only=True)`` reads it with inert stand-ins for
the configuration classes, so the pickled ``args`` become plain data and nothing is imported or
executed. The error messages never suggest ``weights_only=False``.
"""

from __future__ import annotations

import _compat_pickle
import pickle
import pickletools
import re
import zipfile
from pathlib import Path
from typing import Any

import torch

from .errors import CheckpointError

__all__ = ["PickleRefused", "load_data_pickle", "model_string", "plain", "safe_torch_load"]

class _ConfigStandIn:
    """Inert stand-in for a pickled configuration object: it records its state and runs nothing."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.__dict__["_args"] = args

    def __setstate__(self, state: Any) -> None:
        self.__dict__["_state"] = state

    def __setitem__(self, key: Any, value: Any) -> None:  # SETITEMS on a dict subclass
        self.__dict__.setdefault("_items", {})[key] = value


# configuration classes a training checkpoint's ``args`` may reference (besides omegaconf.*)
_CONFIG_GLOBALS = {
    "argparse.Namespace",
    "typing.Any",
    "builtins.dict",
    "builtins.list",
    "builtins.tuple",
    "builtins.set",
    "builtins.int",
    "builtins.float",
    "builtins.str",
    "builtins.bool",
    "collections.defaultdict",
    "pathlib.PosixPath",
    "pathlib.WindowsPath",
    "pathlib.Path",
}
# what torch itself needs to rebuild tensors (allowed by weights_only=True already)
_TORCH_GLOBAL = re.compile(r"^(torch\.|collections\.OrderedDict$|_codecs\.encode$|numpy\.core\.multiarray\._reconstruct$)")


def _pickled_globals(path: Path) -> set[str]:
    """The ``module.name`` globals a torch checkpoint references, read with ``pickletools`` (nothing is unpickled).

    A zip-format file holds one pickle (``data.pkl``); the legacy format is a sequence of pickles (magic
    number, protocol, system info, the object, the storage keys) followed by raw storage bytes.
    """
    if zipfile.is_zipfile(path):
        with zipfile.ZipFile(path) as archive:
            pickles = [n for n in archive.namelist() if n.endswith("data.pkl")]
            if not pickles:
                raise CheckpointError(f"{path.name} is a zip file but not a PyTorch checkpoint (no data.pkl)")
            return _globals_of([archive.read(pickles[0])])
    with open(path, "rb") as stream:
        return _globals_of([stream] * 5)  # genops stops at each pickle's STOP; the next call reads on


def _globals_of(pickles: list) -> set[str]:
    found: set[str] = set()
    for data in pickles:
        found |= _globals_of_one(data)
    return found


def _globals_of_one(data) -> set[str]:
    found, strings, memo = set(), [], {}
    for op, arg, _ in pickletools.genops(data):
        if op.name == "GLOBAL":
            module, name = arg.split(" ", 1)
            # protocol-2 pickles use Python 2 names (__builtin__.long); map them as pickle does
            module, name = _compat_pickle.NAME_MAPPING.get((module, name), (module, name))
            found.add(f"{_compat_pickle.IMPORT_MAPPING.get(module, module)}.{name}")
        elif op.name in ("SHORT_BINUNICODE", "BINUNICODE", "UNICODE", "BINUNICODE8"):
            strings.append(arg)
        elif op.name in ("MEMOIZE", "BINPUT", "LONG_BINPUT", "PUT") and strings:
            memo[arg if op.name != "MEMOIZE" else len(memo)] = strings[-1]
        elif op.name in ("BINGET", "LONG_BINGET", "GET") and arg in memo:
            strings.append(memo[arg])
        elif op.name == "STACK_GLOBAL" and len(strings) >= 2:
            found.add(f"{strings[-2]}.{strings[-1]}")
    return found


def safe_torch_load(path: Path) -> Any:
    """``torch.load(weights_only=True)`` with stand-ins for configuration classes; refuses the rest."""
    with open(path, "rb") as stream:
        zipped = stream.read(4) == b"PK\x03\x04"
    if zipped and not zipfile.is_zipfile(path):  # the directory at the end of the archive is missing
        raise CheckpointError(f"{path.name} is truncated or damaged (an incomplete zip archive); download it again")
    try:
        globals_ = _pickled_globals(path)
    except (zipfile.BadZipFile, EOFError, ValueError) as err:
        reason = "not a PyTorch checkpoint, or damaged" if not zipfile.is_zipfile(path) else "damaged"
        raise CheckpointError(f"{path.name} is {reason} ({err}); download it again") from None
    forbidden = sorted(
        g for g in globals_ if not (_TORCH_GLOBAL.match(g) or g in _CONFIG_GLOBALS or g.startswith("omegaconf."))
    )
    if forbidden:
        raise CheckpointError(
            f"refusing to load {path.name}: it references {', '.join(forbidden[:5])}, which is neither a tensor "
            f"nor a known configuration class. Nothing from the file was executed. If you trust its origin, "
            f"convert it to safetensors on a machine where that code is installed."
        )
    stand_ins = [(type(g.rsplit(".", 1)[1], (_ConfigStandIn,), {}), g) for g in globals_ if not _TORCH_GLOBAL.match(g)]
    for name in _CONFIG_GLOBALS:
        if name not in globals_:
            stand_ins.append((type(name.rsplit(".", 1)[1], (_ConfigStandIn,), {}), name))
    try:
        with torch.serialization.safe_globals(stand_ins):
            return torch.load(path, map_location="cpu", weights_only=True, mmap=zipfile.is_zipfile(path))
    except Exception as err:  # torch raises several types for damaged or foreign files
        text = str(err)
        unsupported = re.search(r"Unsupported global: GLOBAL ([\w.]+)", text)
        if unsupported:
            raise CheckpointError(
                f"refusing to load {path.name}: it references {unsupported.group(1)}, which is neither a tensor nor "
                f"a known configuration class. Nothing from the file was executed."
            ) from None
        if "central directory" in text or "zip archive" in text or isinstance(err, (EOFError, zipfile.BadZipFile)):
            raise CheckpointError(f"{path.name} is truncated or damaged; download it again") from None
        # torch's own message goes on to suggest weights_only=False, i.e. running the file's code: not repeated here
        first = text.splitlines()[0] if text else ""
        if "weights_only" in first or "Weights only load failed" in first:
            first = "it holds objects that are not tensors"
        raise CheckpointError(f"{path.name} is not a readable PyTorch checkpoint ({first}); nothing from it was executed") from None


class PickleRefused(ValueError):
    """A data pickle that references something besides plain data and numpy arrays; nothing from it ran."""


def _data_globals() -> dict[str, Any]:
    """What a data pickle (dataset annotations, body models) may reference: containers, numpy arrays and
    scipy's sparse matrices. Each is a constructor of inert data; none can reach ``getattr``, an import
    or a shell, so no combination of them runs code."""
    import numpy as np
    from numpy._core import multiarray, numeric

    allowed: dict[str, Any] = {
        "numpy.ndarray": np.ndarray,
        "numpy.dtype": np.dtype,
        "numpy.core.multiarray._reconstruct": multiarray._reconstruct,
        "numpy._core.multiarray._reconstruct": multiarray._reconstruct,
        "numpy.core.multiarray.scalar": multiarray.scalar,
        "numpy._core.multiarray.scalar": multiarray.scalar,
        "numpy.core.numeric._frombuffer": numeric._frombuffer,  # protocol 5
        "numpy._core.numeric._frombuffer": numeric._frombuffer,
        "_codecs.encode": __import__("_codecs").encode,  # how protocol-2 pickles carry bytes
        "collections.OrderedDict": __import__("collections").OrderedDict,
        "builtins.object": object,  # copyreg._reconstructor's base for plain classes
        "copyreg._reconstructor": __import__("copyreg")._reconstructor,
    }
    for name in ("dict", "list", "tuple", "set", "frozenset", "int", "float", "complex", "str", "bytes", "bytearray", "bool", "slice"):
        allowed[f"builtins.{name}"] = getattr(__import__("builtins"), name)
    for short, kind in (("csc", "csc_matrix"), ("csr", "csr_matrix"), ("coo", "coo_matrix")):
        import scipy.sparse

        allowed[f"scipy.sparse.{short}.{kind}"] = getattr(scipy.sparse, kind)  # scipy < 1.8 module names
        allowed[f"scipy.sparse._{short}.{kind}"] = getattr(scipy.sparse, kind)
    return allowed


class _DataUnpickler(pickle.Unpickler):
    def __init__(self, stream, allowed: dict[str, Any]) -> None:
        super().__init__(stream, encoding="latin1")  # Python 2 pickles (3DPW, SMPL) carry arrays as latin-1 str
        self.allowed = allowed

    def find_class(self, module: str, name: str) -> Any:
        module, name = _compat_pickle.NAME_MAPPING.get((module, name), (module, name))
        module = _compat_pickle.IMPORT_MAPPING.get(module, module)
        found = self.allowed.get(f"{module}.{name}")
        if found is None:
            raise PickleRefused(f"{module}.{name}")
        # copyreg._reconstructor(cls, base, state) instantiates cls: only the allowed classes can reach it
        return found


def load_data_pickle(path: str | Path) -> Any:
    """Unpickle a data file (annotations, a body model) that may hold only containers, numbers, strings,
    numpy arrays and scipy sparse matrices; anything else is refused before it is called.

    Raises:
        PickleRefused: one line naming the file and the refused reference (nothing from it ran), or saying
            the file is not a readable pickle.
    """
    path = Path(path)
    try:
        with open(path, "rb") as stream:
            return _DataUnpickler(stream, _data_globals()).load()
    except PickleRefused as err:
        hint = " (an SMPL .pkl with chumpy objects: convert it to .npz with SMPL's own tools first)" if "chumpy" in str(err) else ""
        raise PickleRefused(f"refusing {path}: it references {err}, which is not plain data; nothing from the file "
                            f"was executed{hint}") from None
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError, IndexError, KeyError,
            UnicodeDecodeError, MemoryError) as err:
        raise PickleRefused(f"{path} is not a readable data pickle ({type(err).__name__}: {err}); nothing from it was executed") from None


def plain(obj: Any) -> Any:
    """Turn stand-ins (OmegaConf nodes, Namespace) into plain dicts, lists and values."""
    if isinstance(obj, _ConfigStandIn):
        state = obj.__dict__.get("_state")
        if isinstance(state, dict):
            if "_content" in state:
                return plain(state["_content"])
            if "_val" in state:
                return plain(state["_val"])
            return {k: plain(v) for k, v in state.items() if not k.startswith("_")}
        if obj.__dict__.get("_items"):
            return {k: plain(v) for k, v in obj.__dict__["_items"].items()}
        return None
    if isinstance(obj, dict):
        return {k: plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [plain(v) for v in obj]
    return obj


def model_string(args: Any) -> str | None:
    """The ``args.model`` constructor string of a training checkpoint's pickled configuration."""
    config = plain(args)
    if isinstance(config, dict) and isinstance(config.get("model"), str):
        return config["model"]
    return None
