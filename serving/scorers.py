"""The scorers in service: the champion loaded once at start, and older versions loaded when a rescore
needs the model that produced a row.

Without a champion the service runs degraded: ``reason`` says why (a domain error's words without any
path in them, else only the kind of failure; the model's URI and the full text go to the log), and
``require_champion`` raises
``Unavailable`` (503) for the routes that score.
"""

from __future__ import annotations

import json
import logging
import re
import threading
from pathlib import Path

from features.build import FEATURE_VERSION
from features.errors import IPCreditError, Unavailable
from models.gate import gate_caveat
from models.scorer import STATE_FILE, Scorer
from serving.settings import Settings

log = logging.getLogger(__name__)


class Scorers:
    """The champion scorer loaded once at start, and other versions loaded when a rescore needs them."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.champion: Scorer | None = None
        self.reason: str | None = "model not loaded yet"
        self._versions: dict[str, Scorer] = {}
        self._caveats: dict[str, str | None] = {}
        self._lock = threading.Lock()

    def load_champion(self) -> None:
        """Load the champion (``Settings.serving_model_uri``); on any failure keep the reason, degraded."""
        uri = self.settings.serving_model_uri
        try:
            self.champion = _prepare(load_scorer(uri, self.settings.tracking_uri))
        except Exception as exc:  # any failure to load means "degraded", with the reason shown
            self.champion = None
            # Said to anyone (/health is public): what went wrong, never a server path.
            self.reason = f"no model could be loaded ({_public(exc, uri)})"
            log.warning("serving degraded: no model could be loaded from %s: %s", uri, _short(exc))
            return
        self.reason = None
        self._versions[str(self.champion.model_version)] = self.champion
        with self._lock:
            self._caveats.clear()  # a promotion by hand changes what a version's caveat says

    @property
    def model_version(self) -> str | None:
        return None if self.champion is None else str(self.champion.model_version)

    @property
    def caveat(self) -> str | None:
        """What the champion's scores should be read with when it failed its promotion gate, or None."""
        return None if self.champion is None else gate_caveat(self.champion.metadata, self.champion.model_version)

    def known_caveat(self, model_version: str) -> tuple[bool, str | None]:
        """``(True, caveat_of(model_version))`` when that needs no registry call, else ``(False, None)``: for
        the routes on the event loop, which ask ``caveat_of`` in a thread only the first time."""
        if self.champion is not None and str(self.champion.model_version) == model_version:
            return True, self.caveat
        with self._lock:
            if model_version in self._caveats:
                return True, self._caveats[model_version]
        return False, None

    def caveat_of(self, model_version: str) -> str | None:
        """What rows scored by ``model_version`` should be read with when that version failed its promotion
        gate, or None: the champion's from its loaded metadata, another registered version's from its
        registry tags (read once, when the service serves from the registry; not loading the model). A version
        the registry cannot answer for has none: a page is not refused for want of a caveat, the log says why."""
        known, caveat = self.known_caveat(model_version)
        if known:
            return caveat
        with self._lock:
            loaded = self._versions.get(model_version)
        caveat = None
        if loaded is not None:
            caveat = gate_caveat(loaded.metadata, model_version)
        elif model_version.isdigit() and self.settings.serving_model_uri.startswith("models:/"):
            from models.registry import version_gate  # MLflow: imported only when it is used

            try:
                caveat = gate_caveat(version_gate(model_version, self.settings.tracking_uri), model_version)
            except Exception as exc:
                log.warning("model version %s: its gate tags cannot be read: %s", model_version, _short(exc))
        with self._lock:
            self._caveats[model_version] = caveat
        return caveat

    def require_champion(self) -> Scorer:
        """The champion; ``Unavailable`` when none is loaded."""
        if self.champion is None:
            raise Unavailable(f"scoring is unavailable: {self.reason}")
        return self.champion

    def version(self, model_version: str) -> Scorer:
        """The scorer for a registered version (to rescore with the model that produced a row)."""
        with self._lock:
            if model_version in self._versions:
                return self._versions[model_version]
        uri = f"models:/{self.settings.model_name}/{model_version}"
        try:
            scorer = _prepare(load_scorer(uri, self.settings.tracking_uri))
        except Exception as exc:
            log.warning("model version %s cannot be loaded from %s: %s", model_version, uri, _short(exc))
            raise Unavailable(f"model version {model_version} cannot be loaded ({_public(exc, uri)})") from exc
        with self._lock:
            self._versions[model_version] = scorer
        return scorer


def load_scorer(uri: str, tracking_uri: str) -> Scorer:
    """A registered model (``models:/…``, ``runs:/…``) through the registry, or a scorer directory
    written by ``Scorer.save`` (a path or ``file://`` URI: serving without an MLflow server)."""
    local = Path(uri.removeprefix("file://")) if not uri.startswith(("models:/", "runs:/")) else None
    if local is not None and (local / STATE_FILE).is_file():
        state = json.loads((local / STATE_FILE).read_text(encoding="utf-8"))
        version = str(state.get("metadata", {}).get("model_version") or f"local:{local.name}")
        return Scorer.load(local, model_version=version)
    from models.registry import load_scorer as load_registered  # MLflow: imported only when it is used

    return load_registered(uri, tracking_uri)


def _prepare(scorer: Scorer) -> Scorer:
    """The scorer, checked against the feature code the service runs (a model trained on other features
    would score the wrong columns: ``ModelError``, so the service says so instead) and with its caches
    built now rather than in the first request."""
    scorer.check_compatible(FEATURE_VERSION)
    return scorer.prepare()


# Anything that looks like an absolute file path (not the path part of a URI such as models:/ipcredit).
_PATH = re.compile(r"(?<![\w:/])/[^\s'\"(),;]+")


def _public(exc: BaseException, uri: str) -> str:
    """What may be said about a loading failure to anyone: the words of a domain error (ours, without
    any path in them), or only the kind of any other error (a library's message may quote files)."""
    if not isinstance(exc, IPCreditError):
        return exc.__class__.__name__
    return _PATH.sub("<path>", _short(exc).replace(uri, "<model>"))


def _short(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return f"{exc.__class__.__name__}: {text}"[:300]
