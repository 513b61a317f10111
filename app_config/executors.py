"""The ``executor_class`` key: an import path that names an executor class.

Checked without importing anything: the path's shape (modules, then a class name, capitalized as
classes are), and, where the top-level package is installed in this environment, that the module
file exists and defines or imports that name. Importing the executor would import Airflow (seconds,
and Airflow creates ``$AIRFLOW_HOME`` on import) at every synthesis; the environment that runs
``cdk synth`` need not have Airflow at all (requirements.txt). That both executors this project
names are ``BaseExecutor`` subclasses is tested with Airflow installed
(``tests/config/test_bad_input.py``).
"""

from __future__ import annotations

import ast
import importlib.util
import re
from functools import lru_cache
from pathlib import Path

_PATH_RE = re.compile(r"^(?P<module>[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*)\.(?P<cls>[A-Z][A-Za-z0-9_]*)$")
EXAMPLE = "airflow_ecs_fargate.executor.EcsFargateExecutor"


def _find(name: str, locations: list[str]) -> tuple[Path | None, list[str]] | None:
    """Where submodule ``name`` lives in ``locations``: (its source file, its own locations)."""
    for location in locations:
        package, module = Path(location, name), Path(location, name + ".py")
        if (package / "__init__.py").is_file():
            return package / "__init__.py", [str(package)]
        if module.is_file():
            return module, []
    namespace = [str(Path(loc, name)) for loc in locations if Path(loc, name).is_dir()]
    return (None, namespace) if namespace else None


@lru_cache(maxsize=32)
def _module_source(module: str) -> str | None:
    """The source of ``module``, found on the path without executing any package; None when its
    top-level package is not installed here, "" when there is no source to read.

    :raises LookupError: when the top-level package is installed but ``module`` is not in it.
    """
    top, *rest = module.split(".")
    spec = importlib.util.find_spec(top)
    if spec is None:
        return None
    origin = Path(spec.origin) if spec.origin else None
    locations = list(spec.submodule_search_locations or [])
    for depth, name in enumerate(rest, 1):
        found = _find(name, locations)
        if found is None:
            raise LookupError(".".join([top, *rest[:depth]]))
        origin, locations = found
    if origin is None or origin.suffix != ".py":
        return ""
    return origin.read_text(encoding="utf-8")


def _defines(source: str, name: str) -> bool:
    for node in ast.parse(source).body:
        if isinstance(node, ast.ClassDef) and node.name == name:
            return True
        if isinstance(node, (ast.Import, ast.ImportFrom)) and any((a.asname or a.name) == name for a in node.names):
            return True
        if isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id == name for t in node.targets):
            return True
    return False


@lru_cache(maxsize=32)
def executor_class_error(path: str) -> str | None:
    """Describe why ``path`` cannot name an executor class, or return None.

    :param path: e.g. ``airflow_ecs_fargate.executor.EcsFargateExecutor``.
    :returns: a sentence with the key and the fix, or None.
    """
    match = _PATH_RE.match(path)
    if not match:
        return (f"executor_class={path!r}: give the executor's import path, e.g. {EXAMPLE} (modules, then the "
                "executor's class name)")
    module, cls = match["module"], match["cls"]
    try:
        source = _module_source(module)
    except LookupError as err:
        return f"executor_class={path!r}: there is no module {err} here; check the spelling, e.g. {EXAMPLE}"
    if source and not _defines(source, cls):
        return f"executor_class={path!r}: module {module} has no {cls}; check the class name, e.g. {EXAMPLE}"
    return None
