"""Model files: versioned JSON holding settings, the tie spec and parameters."""
from __future__ import annotations

import json
import os

from ._validation import atomic_write_text

#: Version of the model-file format written by this hmmtie.
FORMAT_VERSION = 1
_FORMAT_NAME = "hmmtie-model"


def model_to_json(model) -> str:
    from . import __version__

    doc = {"format": _FORMAT_NAME, "version": FORMAT_VERSION, "hmmtie": __version__}
    doc.update(model.to_dict())
    return json.dumps(doc, indent=1)


def save_model(model, path) -> None:
    """Write ``model`` to ``path`` (temporary file renamed on success)."""
    atomic_write_text(path, model_to_json(model) + "\n")


def _model_classes():
    from .hmm import CategoricalHMM, GaussianHMM

    classes = {"CategoricalHMM": CategoricalHMM, "GaussianHMM": GaussianHMM}
    try:
        from .pair import PairHMM
    except ImportError:  # pragma: no cover - pair module always present once built
        pass
    else:
        classes["PairHMM"] = PairHMM
    return classes


def model_from_dict(doc: dict, source: str = "model"):
    """Rebuild a model from a parsed model document."""
    from . import __version__

    if not isinstance(doc, dict) or doc.get("format") != _FORMAT_NAME:
        raise ValueError(f"{source}: not an hmmtie model file (no \"format\": \"{_FORMAT_NAME}\")")
    version = doc.get("version")
    if not isinstance(version, int) or isinstance(version, bool):
        raise ValueError(f"{source}: model file has no integer format version")
    if version < 1:
        raise ValueError(f"{source}: model file format version {version} is not one hmmtie writes "
                         f"(1 to {FORMAT_VERSION})")
    if version > FORMAT_VERSION:
        raise ValueError(
            f"{source}: model file format version {version} is newer than this hmmtie "
            f"({__version__}) reads (<= {FORMAT_VERSION}); upgrade hmmtie"
        )
    kind = doc.get("model")
    classes = _model_classes()
    if not isinstance(kind, str) or kind not in classes:
        raise ValueError(f"{source}: unknown model type {kind!r} (known: {', '.join(classes)})")
    try:
        return classes[kind].from_dict(doc)
    except (KeyError, TypeError) as exc:
        raise ValueError(f"{source}: malformed model file ({type(exc).__name__}: {exc})") from None
    except ValueError as exc:
        raise ValueError(f"{source}: {exc}") from None


def load(path):
    """Load a model saved with ``model.save(path)``.

    Returns a :class:`~hmmtie.CategoricalHMM`, :class:`~hmmtie.GaussianHMM`
    or :class:`~hmmtie.PairHMM`.  A file written by a newer hmmtie gives a
    clear error.
    """
    path = os.fspath(path)
    try:
        with open(path, encoding="utf-8") as fh:
            text = fh.read()
    except FileNotFoundError:
        raise ValueError(f"{path}: model file not found") from None
    except OSError as exc:
        raise ValueError(f"{path}: cannot read model file ({exc.strerror})") from None
    except UnicodeDecodeError as exc:
        raise ValueError(f"{path}: not a UTF-8 text model file (byte {exc.start})") from None
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValueError(f"{path}: not valid JSON (line {exc.lineno}, column {exc.colno}: {exc.msg})") from None
    return model_from_dict(doc, source=path)
