"""A kernel started without `make` (a laptop's `jupyter lab`, a JupyterHub) gets the course's
thread settings from peftlab itself, before torch is imported."""

import os
import sys

from jupyter_client.manager import start_new_kernel

from autograder.course import ROOT


def _kernel_environment(code: str, environment: dict) -> str:
    saved = dict(os.environ)
    os.environ.clear()
    os.environ.update(environment)
    try:
        manager, client = start_new_kernel(kernel_name="python3", cwd=str(ROOT))
    finally:
        os.environ.clear()
        os.environ.update(saved)
    try:
        reply = client.execute_interactive(code, timeout=120, output_hook=_collect)
        assert reply["content"]["status"] == "ok", reply["content"]
        return "".join(_collect.texts)
    finally:
        client.stop_channels()
        manager.shutdown_kernel(now=True)


def _collect(message):
    if message["msg_type"] == "stream":
        _collect.texts.append(message["content"]["text"])


_collect.texts = []

NOTEBOOK_START = ("from peftlab.environment import setup_notebook\n"  # every notebook's first import
                  "import os, sys\n"
                  "print(os.environ.get('OMP_WAIT_POLICY'), os.environ.get('TOKENIZERS_PARALLELISM'),\n"
                  "      'torch' in sys.modules)\n")


def _plain_environment(**extra) -> dict:
    keep = {k: v for k, v in os.environ.items()
            if k not in ("OMP_WAIT_POLICY", "TOKENIZERS_PARALLELISM")}
    keep["PATH"] = os.path.dirname(sys.executable) + os.pathsep + keep.get("PATH", "")
    return {**keep, **extra}


def test_a_kernel_started_without_make_gets_the_thread_settings():
    _collect.texts = []
    printed = _kernel_environment(NOTEBOOK_START, _plain_environment())
    assert printed.split() == ["PASSIVE", "false", "True"], printed


def test_the_users_own_settings_win():
    _collect.texts = []
    printed = _kernel_environment(NOTEBOOK_START, _plain_environment(OMP_WAIT_POLICY="ACTIVE"))
    assert printed.split()[:2] == ["ACTIVE", "false"], printed


def test_peftlab_sets_them_before_torch_is_imported():
    import subprocess

    code = ("import sys, os; import peftlab; assert 'torch' not in sys.modules; "
            "print(os.environ['OMP_WAIT_POLICY'])")
    result = subprocess.run([sys.executable, "-c", code], env=_plain_environment(), cwd=ROOT,
                            capture_output=True, text=True, timeout=60)
    assert result.stdout.strip() == "PASSIVE", result.stderr
