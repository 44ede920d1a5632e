"""The agent is a small client: importing it loads no server, web stack or database."""

from __future__ import annotations

import subprocess
import sys

FORBIDDEN = (
    "nevertrust.web",
    "nevertrust.server",
    "nevertrust.store",
    "nevertrust.app",
    "nevertrust.identity",
    "nevertrust.gateway",
    "sqlalchemy",
    "fastapi",
    "starlette",
    "uvicorn",
    "redis",
)


def test_importing_the_agent_and_its_command_loads_nothing_of_the_server() -> None:
    code = (
        "import sys, nevertrust.agent, nevertrust.agent.posture.linux, "
        "nevertrust.agent.posture.macos, nevertrust.agent.posture.windows\n"
        "import importlib.util\n"
        "spec = importlib.util.spec_from_file_location('agent_cli', "
        "nevertrust.agent.__file__.replace('agent/__init__.py', 'cli/agent.py'))\n"
        "mod = importlib.util.module_from_spec(spec); spec.loader.exec_module(mod)\n"
        "print('\\n'.join(sorted(sys.modules)))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    loaded = set(done.stdout.split())
    assert {"nevertrust.agent.service", "typer", "httpx", "jwt"} <= loaded
    heavy = sorted(m for m in loaded if m.split(".")[0] in FORBIDDEN or m.startswith(FORBIDDEN))
    assert heavy == []
