#!/bin/sh
# The benchmark's own environment (bench/.venv): the project plus what only the benchmark needs,
# FastMCP (the comparison), py-spy (profiles), and orjson and msgspec (json_codecs.py). Never a dependency of mcp-webtools itself.
#
#     sh bench/setup.sh                 # FastMCP 4.1.6, else the latest
#     FASTMCP_VERSION=4.2.0 sh bench/setup.sh
set -eu
here=$(cd "$(dirname "$0")" && pwd)
python=${PYTHON:-python3}
[ -x "$here/.venv/bin/python" ] || "$python" -m venv "$here/.venv"
pip="$here/.venv/bin/python -m pip --disable-pip-version-check -q"
$pip install --upgrade pip >/dev/null
version=${FASTMCP_VERSION:-4.1.6}
$pip install "fastmcp==$version" || $pip install fastmcp
$pip install psutil py-spy orjson msgspec
"$here/.venv/bin/python" -c "import fastmcp; print('fastmcp', fastmcp.__version__, 'in', '$here/.venv')"
