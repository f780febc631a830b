"""The public surface, `mcp_webtools.__all__`: exactly these names, each importable, nothing
private in it, and `import mcp_webtools` loading none of the server until a name is used."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from support import REPO

import mcp_webtools
from mcp_webtools import errors

PUBLIC = [
    "__version__",
    # running the server
    "open_webtools",
    "load_toolset",
    "serve_stdio",
    "serve_http",
    "ServerOptions",
    "build_http_app",
    "HttpSettings",
    # its parts
    "WebTools",
    "Toolset",
    "ToolDefinition",
    "load_definitions",
    "LoadResult",
    "ConfigProblem",
    "EgressPolicy",
    # the errors, as errors.py lists them
    *errors.__all__,
]


def test_the_public_names_are_exactly_these():
    assert mcp_webtools.__all__ == PUBLIC
    assert len(set(PUBLIC)) == len(PUBLIC)


def test_each_name_is_importable_and_is_the_defining_modules_own():
    namespace: dict[str, object] = {}
    exec("from mcp_webtools import *", namespace)
    assert set(namespace) - {"__builtins__"} == set(PUBLIC)
    for name in PUBLIC[1:]:
        value = getattr(mcp_webtools, name)
        home = sys.modules[value.__module__]
        assert getattr(home, name) is value and name in home.__all__, name
    assert mcp_webtools.__version__ == "0.1.0"


def test_nothing_private_is_public():
    for name in PUBLIC[1:]:
        module = getattr(mcp_webtools, name).__module__
        assert not name.startswith("_"), name
        assert module.startswith("mcp_webtools.") and not any(part.startswith("_") for part in module.split(".")), name


def test_an_unknown_name_is_an_attribute_error_and_dir_lists_the_public_ones():
    with pytest.raises(AttributeError, match="module 'mcp_webtools' has no attribute 'open_webtool'"):
        mcp_webtools.open_webtool  # noqa: B018
    assert set(PUBLIC) <= set(dir(mcp_webtools))


@pytest.mark.e2e
def test_importing_the_package_loads_only_the_errors_until_a_name_is_used():
    """`import mcp_webtools` must stay cheap: the version and the errors, none of the server's imports."""
    script = (
        "import json, sys\n"
        "before = set(sys.modules)\n"
        "import mcp_webtools\n"
        "imported = sorted(set(sys.modules) - before)\n"
        "mcp_webtools.WebToolsError, mcp_webtools.ConfigErrors\n"
        "errors_used = sorted(set(sys.modules) - before)\n"
        "mcp_webtools.ToolDefinition\n"
        "print(json.dumps([imported, errors_used, 'pydantic' in sys.modules, 'mcp' in sys.modules]))\n"
    )
    out = subprocess.run([sys.executable, "-c", script], cwd=REPO, capture_output=True, text=True, check=True).stdout
    imported, errors_used, pydantic, mcp = json.loads(out)
    assert imported == errors_used == ["mcp_webtools", "mcp_webtools.errors"]
    assert (pydantic, mcp) == (True, False)  # a name's own module loads on first use, and no more than it needs
