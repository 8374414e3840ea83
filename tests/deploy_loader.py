"""deploy/validate.py loaded as a module, for the deploy tests (it is a script, not a package)."""

import importlib.util
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def load_validate():
    spec = importlib.util.spec_from_file_location("deploy_validate", REPO / "deploy" / "validate.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module
