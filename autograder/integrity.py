"""Grading that a submission cannot forge: a guarded execution of the notebook, and flags for review.

Test cells run in the student's own kernel, so a determined student can always subvert them; the
grader defends in depth and makes every attempt visible:

* ``GuardedExecute`` (nbgrader's Execute preprocessor, configured in ``nbgrader_config.py``):
  - before the first cell, it records pristine copies of what test cells rely on (see
    ``kernel_guard.py``); after each read-only cell it pins the names that cell defined;
  - before every graded test cell it silently restores all of it (builtins, the check helpers,
    torch's comparisons, IPython's and Python's exception machinery, the pinned names);
  - a test cell counts as passed only if it ran to its last line: the grader appends a statement
    that prints a secret drawn for this cell (removed from the saved outputs). A test cell whose
    error was suppressed prints no secret and gets an error ``GradingIntegrityError`` (0 points).
* ``flags(notebook)``: what an answer cell reaches for that an honest solution never needs (the
  kernel, the interpreter, the test machinery, the file system, the network). The grader writes them
  into the ``flags`` column of ``grades.csv`` so that no forged grade is awarded without review.
"""

from __future__ import annotations

import ast
import secrets
from pathlib import Path

import nbformat
from nbclient.util import ensure_async, run_sync
from nbformat.notebooknode import NotebookNode
from nbgrader.preprocessors import Execute
from traitlets import Bool

from .course import nbgrader_metadata

GUARD_SOURCE = (Path(__file__).resolve().parent / "kernel_guard.py").read_text()
INTEGRITY_ERROR = "GradingIntegrityError"
CHECK_NAMES = {"expect", "expect_equal", "expect_close", "expect_tensor_close", "expect_tensor_equal"}


class GuardedExecute(Execute):
    """nbgrader's Execute with the guard of ``kernel_guard.py`` around every graded test cell."""

    guard = Bool(True, help="restore the test machinery before each graded test cell").tag(config=True)

    def reset_execution_trackers(self) -> None:
        super().reset_execution_trackers()
        self._handle: str | None = None
        self._guard_problem = ""

    async def _silent(self, code: str) -> str:
        """Run ``code`` in the kernel without output or history; return '' or the error it raised."""
        msg_id = await ensure_async(self.kc.execute(code, silent=True, store_history=False, allow_stdin=False))
        reply = await self.async_wait_for_reply(msg_id)
        if reply is None:
            return "no reply from the kernel"
        content = reply["content"]
        return "" if content.get("status") == "ok" else f"{content.get('ename')}: {content.get('evalue')}"

    async def _install(self) -> None:
        handle = "_grader_" + secrets.token_hex(8)
        boot = ("def _grader_boot(source, handle):\n"
                "    namespace = {'get_ipython': get_ipython}\n"
                "    exec(compile(source, '<grader>', 'exec'), namespace)\n"
                "    namespace['install'](handle)\n"
                f"_grader_boot({GUARD_SOURCE!r}, {handle!r})\n"
                "del _grader_boot\n")
        problem = await self._silent(boot)
        self._handle = handle
        self._guard_problem = f"the grader could not prepare the kernel ({problem})" if problem else ""

    async def async_execute_cell(self, cell: NotebookNode, cell_index: int, execution_count: int | None = None,
                                 store_history: bool = True) -> NotebookNode:
        metadata = nbgrader_metadata(cell)
        if not self.guard or cell.cell_type != "code" or not cell.source.strip():
            return await super().async_execute_cell(cell, cell_index, execution_count, store_history)
        if self._handle is None:
            await self._install()
        if not (metadata.get("grade") and not metadata.get("solution")):
            cell = await super().async_execute_cell(cell, cell_index, execution_count, store_history)
            await self._pin(cell, metadata)
            return cell
        problem = self._guard_problem or await self._silent(f"{self._handle}.restore()")
        secret = secrets.token_hex(16)
        original = cell.source
        cell.source = f"{original}\nprint({secret!r})"
        try:
            cell = await super().async_execute_cell(cell, cell_index, execution_count, store_history)
        finally:
            cell.source = original
        completed = _remove_marker(cell, secret)
        errors = [output for output in cell.outputs if output.output_type == "error"]
        if problem:
            reason = f"the test machinery was tampered with before this test ({problem[:200]})"
            cell.outputs.insert(0, _integrity_error(reason))
        elif not completed and not errors:
            cell.outputs.insert(0, _integrity_error("this test did not run to its end, yet no error was shown: "
                                                    "the notebook interferes with error reporting"))
        else:  # nbgrader reads the first error or result: an error must come first
            cell.outputs = errors + [output for output in cell.outputs if output.output_type != "error"]
        await self._pin(cell, metadata)
        return cell

    execute_cell = run_sync(async_execute_cell)

    async def _pin(self, cell: NotebookNode, metadata: dict) -> None:
        """After a read-only cell: pin the names it imported or defined."""
        if metadata.get("locked") and not metadata.get("solution") and not self._guard_problem:
            names = sorted(_defined_names(cell.source))
            if names:
                problem = await self._silent(f"{self._handle}.pin({names!r})")
                if problem:
                    self._guard_problem = f"names of a read-only cell could not be kept ({problem})"


def _integrity_error(reason: str) -> NotebookNode:
    return nbformat.v4.new_output("error", ename=INTEGRITY_ERROR, evalue=reason,
                                  traceback=[f"{INTEGRITY_ERROR}: {reason}"])


def _remove_marker(cell: NotebookNode, secret: str) -> bool:
    """Remove the line ``secret`` from the cell's stdout; return whether it was there."""
    found = False
    kept = []
    for output in cell.outputs:
        if output.output_type == "stream" and output.name == "stdout" and secret in output.text:
            found = True
            output.text = "".join(line for line in output.text.splitlines(keepends=True) if line.strip() != secret)
            if not output.text:
                continue
        kept.append(output)
    cell.outputs = kept
    return found


def _defined_names(source: str) -> set[str]:
    """Names a cell binds at top level by import, def or class."""
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return set()
    names = set()
    for node in tree.body:
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            names |= {(alias.asname or alias.name).split(".")[0] for alias in node.names if alias.name != "*"}
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
    return names


# --- static flags -------------------------------------------------------------------------------

# module imported → why an answer cell should not need it
MODULES = {
    "builtins": "the interpreter's builtins", "gc": "the garbage collector (reaches any object)",
    "ctypes": "raw memory access", "inspect": "frames and source of the running code",
    "importlib": "the import machinery", "sys": "the interpreter", "traceback": "error reporting",
    "IPython": "the kernel", "ipykernel": "the kernel", "unittest": "test machinery", "pytest": "test machinery",
    "subprocess": "starting programs", "socket": "the network", "urllib": "the network", "requests": "the network",
    "http": "the network", "signal": "signals", "threading": "threads", "multiprocessing": "processes",
    "os": "the operating system (files, processes)", "shutil": "files", "pathlib": "files", "glob": "files",
    "pickle": "loading arbitrary objects", "marshal": "code objects", "types": "code objects",
    "nbformat": "notebooks", "nbgrader": "the grader", "autograder": "the grader", "sqlite3": "databases",
    "peftlab": "the course library (only its data loaders and models are for answers)",
}
# names used (called or read) → what they reach
NAMES = {
    "get_ipython": "the IPython kernel", "__builtins__": "the interpreter's builtins", "__import__": "the import machinery",
    "exec": "running generated code", "eval": "running generated code", "compile": "compiling generated code",
    "globals": "the notebook's global namespace", "open": "files on disk", "__file__": "installation paths",
    "breakpoint": "the debugger",
}
ATTRIBUTES = {
    "showtraceback": "IPython's error display", "_showtraceback": "IPython's error display",
    "set_custom_exc": "IPython's exception handling", "CustomTB": "IPython's exception handling",
    "custom_exceptions": "IPython's exception handling", "excepthook": "exception handling",
    "input_transformers_cleanup": "IPython's cell transformers", "input_transformers_post": "IPython's cell transformers",
    "ast_transformers": "IPython's cell transformers", "events": "IPython's event hooks", "run_cell": "cell execution",
    "settrace": "tracing", "setprofile": "tracing", "_getframe": "frames of the running code", "f_back": "frames",
    "f_globals": "frames", "f_locals": "frames", "tb_frame": "frames", "meta_path": "the import machinery",
    "path_hooks": "the import machinery", "modules": "loaded modules", "__code__": "function code",
    "__globals__": "function globals", "__subclasses__": "class internals", "__class__": "class internals",
    "__dict__": "object internals", "__file__": "installation paths", "__path__": "installation paths",
    "shell_handlers": "the kernel's message handlers", "do_execute": "the kernel", "session": "the kernel's messages",
    "_exit": "ending the process", "exit": "ending the process", "kill": "processes", "fork": "processes",
    "system": "starting programs", "popen": "starting programs", "read_text": "files", "read_bytes": "files",
    "write_text": "files", "write_bytes": "files", "listdir": "files", "walk": "files", "getsource": "source code",
}
DUNDERS = {"__eq__", "__ne__", "__lt__", "__le__", "__gt__", "__ge__", "__bool__", "__hash__", "__float__",
           "__int__", "__index__", "__abs__", "__instancecheck__", "__subclasscheck__", "__getattribute__",
           "__torch_function__", "__array__", "__len__", "__format__", "__repr__", "__str__"}
PROTECTED_NAMES = CHECK_NAMES | {"AssertionError", "Exception", "BaseException", "isinstance", "type", "print",
                                 "abs", "all", "any", "len", "bool", "float", "int", "tuple", "sum", "max", "min",
                                 "torch", "nn", "math", "copy", "get_ipython"}


def flags(notebook: nbformat.NotebookNode) -> list[str]:
    """Human-readable flags for the answer cells of ``notebook`` that reach beyond their task.

    Each flag names the answer cell (its grade id), the line and what it reaches for. An honest
    solution of any chapter raises none; a flag is a reason to look, not proof of cheating.
    """
    imported_modules = set()
    for cell in notebook.cells:  # names bound to modules anywhere in the notebook
        if cell.get("cell_type") == "code":
            imported_modules |= _module_names(cell.source)
    found: list[str] = []
    for cell in notebook.cells:
        metadata = nbgrader_metadata(cell)
        if cell.get("cell_type") != "code" or not metadata.get("solution"):
            continue
        where = metadata.get("grade_id", "?")
        for line, what in _cell_flags(cell.source, imported_modules):
            flag = f"answer cell {where}, line {line}: {what}"
            if flag not in found:
                found.append(flag)
    return found


def _module_names(source: str) -> set[str]:
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return set()
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names |= {(alias.asname or alias.name).split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            names |= {alias.asname or alias.name for alias in node.names
                      if alias.name[:1].islower() and alias.name not in CHECK_NAMES}
    return names


def _cell_flags(source: str, modules: set[str]) -> list[tuple[int, str]]:
    """(line, description) of every suspicious construct in one answer cell's code."""
    try:
        tree = ast.parse(_without_magics(source))
    except SyntaxError:
        return []  # the cell fails when it runs; nothing it does can help
    found = []
    for node in ast.walk(tree):
        line = getattr(node, "lineno", 0)
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            for name in ([a.name for a in node.names] if isinstance(node, ast.Import) else [node.module or ""]):
                root = name.split(".")[0]
                if root in MODULES and not (root == "peftlab" and name in ("peftlab.data", "peftlab.models")):
                    found.append((line, f"imports {name} ({MODULES[root]})"))
            if isinstance(node, ast.ImportFrom):
                for alias in node.names:
                    if (alias.asname or alias.name) in PROTECTED_NAMES:
                        found.append((line, f"rebinds {alias.asname or alias.name} by an import"))
        elif isinstance(node, ast.Name):
            if node.id in NAMES and isinstance(node.ctx, ast.Load):
                found.append((line, f"uses {node.id} ({NAMES[node.id]})"))
            if node.id in PROTECTED_NAMES and isinstance(node.ctx, (ast.Store, ast.Del)):
                found.append((line, f"redefines {node.id}, which the tests rely on"))
        elif (isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in ("setattr", "delattr")
              and node.args and _root_name(node.args[0]) in modules):
            found.append((line, f"monkeypatches the library module {_root_name(node.args[0])} with {node.func.id}"))
        elif isinstance(node, ast.Attribute):
            if node.attr in ATTRIBUTES:
                found.append((line, f"reaches .{node.attr} ({ATTRIBUTES[node.attr]})"))
            if isinstance(node.ctx, (ast.Store, ast.Del)):
                root = _root_name(node)
                if node.attr in DUNDERS:
                    found.append((line, f"sets {node.attr} on an existing class (changes how results compare)"))
                elif root in modules:
                    found.append((line, f"monkeypatches {ast.unparse(node)} (an attribute of the library module {root})"))
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            if node.name in PROTECTED_NAMES:
                found.append((line, f"redefines {node.name}, which the tests rely on"))
            if isinstance(node, ast.ClassDef):
                dunders = sorted({item.name for item in node.body if isinstance(item, ast.FunctionDef)
                                  and item.name in DUNDERS} | {t.id for item in node.body if isinstance(item, ast.Assign)
                                                               for t in item.targets if isinstance(t, ast.Name) and t.id in DUNDERS})
                if dunders:
                    found.append((line, f"class {node.name} defines {', '.join(dunders)} (changes how its results compare)"))
        elif isinstance(node, (ast.Global, ast.Nonlocal)):
            protected = sorted(set(node.names) & PROTECTED_NAMES)
            if protected:
                found.append((line, f"declares {', '.join(protected)} global (to redefine it)"))
    for line in source.splitlines():
        stripped = line.strip()
        if stripped.startswith(("%", "!")):
            found.append((0, f"runs an IPython magic or shell command: {stripped[:60]!r}"))
    return sorted(set(found))


def _without_magics(source: str) -> str:
    return "\n".join("" if line.strip().startswith(("%", "!")) else line for line in source.splitlines())


def _root_name(node: ast.AST) -> str | None:
    while isinstance(node, (ast.Attribute, ast.Subscript, ast.Call)):
        node = node.value if not isinstance(node, ast.Call) else node.func
    return node.id if isinstance(node, ast.Name) else None


def runtime_flags(autograded: nbformat.NotebookNode) -> list[str]:
    """What the guard found while grading: test cells whose result it had to overrule."""
    found = []
    for cell in autograded.cells:
        for output in cell.get("outputs", []):
            if output.get("output_type") == "error" and output.get("ename") == INTEGRITY_ERROR:
                found.append(f"test cell {nbgrader_metadata(cell).get('grade_id', '?')}: {output.get('evalue', '')}")
    return found
