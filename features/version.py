"""``FEATURE_VERSION``: the version of the code that computes a feature's value.

It is a hash of everything that can change a value: the feature catalogue, the point-in-time rules with
their lapse periods, the contract's types and code lists, the loader's casts, the decision ledger's
overlay, the builder itself and the what-if path's own computation of one history's values. The
modules are hashed as parsed code (``ast``), without docstrings, so editing a comment or a docstring
keeps the version and any change to code or data in them gives a new one: a model trained on one version
refuses features of another (``Scorer.check_compatible``), and an edit can never keep the old version by
accident.
"""

from __future__ import annotations

import ast
import hashlib
from pathlib import Path

from features import __version__
from features.catalogue import catalogue_fingerprint

# The modules whose code decides a feature's value (relative to this package): the batch build on both
# engines, the decision ledger laid over every build, and the what-if path (one posted history's values
# and the columns they are scored from), which the tests hold equal to the batch build.
FEATURE_MODULES: tuple[str, ...] = (
    "schema.py",
    "dataset.py",
    "catalogue.py",
    "pointintime.py",
    "sql.py",
    "build.py",
    "spark.py",
    "ledger.py",
    "single.py",
    "columns.py",
)


def _code_of(path: Path) -> str:
    """The module's syntax tree without docstrings, as text: comments and formatting do not count."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    for node in ast.walk(tree):
        body = getattr(node, "body", None)
        if isinstance(body, list):
            kept = [s for s in body if not (isinstance(s, ast.Expr) and isinstance(s.value, ast.Constant))]
            node.body = kept or [ast.Pass()]
    return ast.dump(tree, include_attributes=False)


def code_fingerprint(directory: Path = Path(__file__).parent, modules: tuple[str, ...] = FEATURE_MODULES) -> str:
    """A short hash of the feature code in ``directory`` (see the module docstring)."""
    digest = hashlib.sha256()
    for name in modules:
        digest.update(name.encode())
        digest.update(_code_of(directory / name).encode())
    return digest.hexdigest()[:8]


FEATURE_VERSION = f"{__version__}+{catalogue_fingerprint()}.{code_fingerprint()}"
