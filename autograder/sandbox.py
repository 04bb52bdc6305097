"""Run a student's kernel in a bubblewrap sandbox, with per-student limits.

nbgrader itself runs outside (it owns the gradebook); only the Jupyter kernel that executes the
student's cells starts inside ``bwrap``. The sandbox sees, read-only: the OS (``/usr``), the Python
installation and the course's virtual environment, ``peftlab/`` and ``data/`` (at their paths in the
repository, where the editable install points), and nothing else of the repository: no ``solutions/``,
no ``autograder/``, no grading output (gradebook, source notebooks, other students). It writes only
into a private, empty folder (its home, cwd and ``/tmp``), has no network (the kernel talks to
nbgrader over unix sockets in that folder), and its own process tree: when nbgrader stops the kernel
or dies, every process the student started dies with it.

Limits, set inside the sandbox before the kernel starts: address space (``memory_limit_gib``),
processes and threads (``max_processes``, counted for this sandbox only), file size, no core dumps.
When grading runs as root the kernel drops to an unprivileged user id of its own.

Installed from the OS packages: ``apt-get install bubblewrap`` (Debian/Ubuntu), ``dnf install
bubblewrap`` (Fedora). ``available()`` says whether it works here.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from jupyter_client.manager import AsyncKernelManager
from traitlets import Bool, Float, Integer

from .course import ROOT

BWRAP = "bwrap"
# What the kernel may see of the repository (read-only): the course library and its data.
REPOSITORY_PATHS = ("peftlab", "data")
# Environment variables the kernel keeps; everything else is dropped.
KEPT_VARIABLES = ("LANG", "LC_ALL", "HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "HF_DATASETS_OFFLINE",
                  "PYTHONWARNINGS", "OMP_NUM_THREADS", "MKL_NUM_THREADS", "TOKENIZERS_PARALLELISM",
                  "JPY_SESSION_NAME", "NBGRADER_EXECUTION", "OMP_WAIT_POLICY", "TORCHDYNAMO_DISABLE")
UNPRIVILEGED_UID_BASE = 200_000  # root grading: each kernel runs as UNPRIVILEGED_UID_BASE + its grader's pid

# Runs inside the sandbox as the kernel's first process: set the limits, drop root, start the kernel.
LAUNCHER = """
import os, resource, sys
memory, processes, uid = (int(value) for value in sys.argv[1:4])
resource.setrlimit(resource.RLIMIT_AS, (memory, memory))
resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
resource.setrlimit(resource.RLIMIT_FSIZE, (2**30, 2**30))
if uid and os.getuid() == 0:
    os.setgroups([])
    os.setresgid(uid, uid, uid)
    os.setresuid(uid, uid, uid)
resource.setrlimit(resource.RLIMIT_NPROC, (processes, processes))
os.execv(sys.argv[4], sys.argv[4:])
"""


def available() -> tuple[bool, str]:
    """Whether bubblewrap can start a sandbox here, and if not, why (for the instructor)."""
    if shutil.which(BWRAP) is None:
        return False, "bubblewrap (bwrap) is not installed: apt-get install bubblewrap"
    try:
        result = subprocess.run([BWRAP, *_system_binds(), "--unshare-all", "--die-with-parent", "--", "/bin/true"],
                                capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired) as error:
        return False, f"bwrap does not start: {error}"
    if result.returncode != 0:
        return False, f"bwrap cannot create a sandbox here: {result.stderr.strip()[:300]}"
    return True, ""


def _system_binds() -> list[str]:
    """The OS, read-only: /usr and the top-level links or folders that point into it, a few /etc files."""
    args = ["--ro-bind", "/usr", "/usr"]
    for name in ("bin", "sbin", "lib", "lib32", "lib64"):
        path = Path("/") / name
        if path.is_symlink():
            args += ["--symlink", os.readlink(path), str(path)]
        elif path.is_dir():
            args += ["--ro-bind", str(path), str(path)]
    for name in ("ld.so.cache", "localtime", "passwd", "group", "nsswitch.conf"):
        if (Path("/etc") / name).exists():
            args += ["--ro-bind", f"/etc/{name}", f"/etc/{name}"]
    return args


def _python_binds() -> list[str]:
    """The Python installation and the virtual environment (read-only), wherever they lie."""
    paths = {Path(sys.base_prefix).resolve(), Path(sys.prefix).resolve()}
    args = []
    for path in sorted(paths):
        if not str(path).startswith("/usr/"):
            args += ["--ro-bind", str(path), str(path)]
    if Path(sys.prefix).resolve() != Path(sys.prefix):  # a venv reached through a link
        args += ["--symlink", str(Path(sys.prefix).resolve()), sys.prefix]
    return args


def _parent_folders(binds: list[str]) -> list[str]:
    """Create the folders above each bind target, traversable (bwrap would make them 0700 for root only)."""
    targets = [Path(binds[i + 2]) for i in range(len(binds)) if binds[i] in ("--ro-bind", "--symlink")]
    # Not / (it exists), not /tmp itself (a fresh tmpfs that must stay 1777), nothing in /usr (bound whole);
    # but folders below /tmp are made: a course cloned to /tmp/<name> must be reachable by the kernel's user.
    parents = sorted({parent for target in targets for parent in target.parents
                      if parent not in (Path("/"), Path("/tmp")) and not str(parent).startswith("/usr")})
    return [argument for parent in parents for argument in ("--perms", "0755", "--dir", str(parent))]


def sandbox_command(command: list[str], private: Path, memory_bytes: int, max_processes: int, uid: int) -> list[str]:
    """``command`` wrapped in bwrap (see the module docstring for what it can reach)."""
    as_root = os.getuid() == 0
    args = [BWRAP, "--die-with-parent", "--new-session", "--unshare-pid", "--unshare-net", "--unshare-ipc",
            "--unshare-uts", "--unshare-cgroup-try", "--hostname", "sandbox"]
    if as_root:  # no user namespace: bwrap keeps the right to switch to the kernel's own user id
        args += ["--cap-add", "CAP_SETUID", "--cap-add", "CAP_SETGID"]
    else:  # ordinary users need a user namespace; processes are then counted per sandbox
        args += ["--unshare-user"]
    args += _system_binds() + ["--proc", "/proc", "--dev", "/dev", "--tmpfs", "/dev/shm", "--perms", "1777", "--tmpfs", "/tmp"]
    binds = _python_binds() + [argument for name in REPOSITORY_PATHS if (ROOT / name).exists()
                               for argument in ("--ro-bind", str(ROOT / name), str(ROOT / name))]
    args += _parent_folders(binds) + binds
    args += ["--bind", str(private), str(private), "--chdir", str(private), "--clearenv"]
    environment = {name: os.environ[name] for name in KEPT_VARIABLES if name in os.environ}
    environment.update(HOME=str(private), TMPDIR=str(private), PYTHONNOUSERSITE="1", MPLCONFIGDIR=str(private / ".mpl"),
                       PATH=os.pathsep.join([str(Path(sys.executable).parent), "/usr/local/bin", "/usr/bin", "/bin"]))
    for name, value in sorted(environment.items()):
        args += ["--setenv", name, value]
    launcher = [sys.executable, "-c", LAUNCHER, str(memory_bytes), str(max_processes), str(uid if as_root else 0)]
    return args + ["--", *launcher, *command]


class SandboxedKernelManager(AsyncKernelManager):
    """A kernel manager whose kernel runs in bubblewrap, reached over unix sockets in a private folder.

    Configure it like any nbgrader setting, e.g. ``--SandboxedKernelManager.memory_limit_gib=4``.
    With ``isolate = False`` (``make grade ... UNSANDBOXED=1``) the limits still apply but the
    kernel sees the whole machine as the instructor does.
    """

    memory_limit_gib = Float(6.0, help="address-space limit of one student's kernel, GiB").tag(config=True)
    max_processes = Integer(256, help="processes and threads one student's kernel may hold").tag(config=True)
    isolate = Bool(True, help="run the kernel in bubblewrap (False: limits only, no isolation)").tag(config=True)

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        # a short path: unix socket names are limited to ~107 bytes
        self.private = Path(tempfile.mkdtemp(prefix="kernel-"))
        self.transport = "ipc"
        self.ip = str(self.private / "ipc")
        self.connection_file = str(self.private / "connection.json")
        self.uid = UNPRIVILEGED_UID_BASE + os.getpid()

    def write_connection_file(self, **kwargs) -> None:
        super().write_connection_file(**kwargs)
        if os.getuid() == 0:  # the kernel runs as its own user: it must read this and write here
            for path in (self.private, Path(self.connection_file)):
                os.chown(path, self.uid, self.uid)

    def format_kernel_cmd(self, extra_arguments: list[str] | None = None) -> list[str]:
        command = super().format_kernel_cmd(extra_arguments)
        memory = int(self.memory_limit_gib * 2**30)
        if not self.isolate:
            launcher = [sys.executable, "-c", LAUNCHER, str(memory), str(self.max_processes), "0"]
            return [*launcher, *command]
        return sandbox_command(command, self.private, memory, self.max_processes, self.uid)

    async def _async_interrupt_kernel(self) -> None:
        """Interrupt by a message: a signal to bwrap would not reach the kernel in its own session."""
        if not self.isolate:
            return await super()._async_interrupt_kernel()
        self._connect_control_socket()
        self.session.send(self._control_socket, self.session.msg("interrupt_request", content={}))

    interrupt_kernel = _async_interrupt_kernel

    async def _async_cleanup_resources(self, restart: bool = False) -> None:
        await super()._async_cleanup_resources(restart=restart)
        if not restart:
            shutil.rmtree(self.private, ignore_errors=True)
