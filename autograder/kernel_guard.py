"""Runs INSIDE the student's kernel (sent as text by ``integrity.GuardedExecute``; never imported).

At kernel start, before any student cell, ``install(name)`` records pristine copies of what test
cells rely on: the builtins, the check helpers of ``peftlab.checks``, torch's comparison functions
and tensor methods, Python's and IPython's exception and execution machinery. ``restore()`` puts
all of it back; the grader calls it silently before every graded test cell. ``pin(names)`` records
what a read-only (instructor) cell defined, so that a student cannot rebind it afterwards.
"""

import builtins
import sys


def install(handle_name):
    import types

    import torch
    import torch.nn
    import torch.nn.functional
    import torch.testing

    import peftlab.checks

    shell = get_ipython()  # noqa: F821  (defined in every IPython kernel)
    kernel = getattr(shell, "kernel", None)
    modules = [builtins, torch, torch.nn, torch.nn.functional, torch.testing, peftlab.checks,
               sys.modules["math"] if "math" in sys.modules else __import__("math")]
    module_dicts = {id(m): (m, dict(m.__dict__)) for m in modules}
    strict_modules = {id(builtins), id(peftlab.checks)}  # names added later are removed
    classes = [torch.Tensor, torch.nn.Module, torch.nn.Linear, torch.nn.Parameter, BaseException, Exception,
               AssertionError]
    classes += [c for c in type(shell).__mro__ if c is not object]
    if kernel is not None:
        classes += [c for c in type(kernel).__mro__ if c is not object]
        classes += [c for c in type(kernel.session).__mro__ if c is not object]
    class_dicts = []
    for cls in classes:
        try:
            class_dicts.append((cls, dict(cls.__dict__)))
        except TypeError:
            pass
    functions = [value for _, (module, snapshot) in module_dicts.items() if module is peftlab.checks
                 for value in snapshot.values() if isinstance(value, types.FunctionType)]
    function_parts = [(f, f.__code__, f.__defaults__, f.__kwdefaults__) for f in functions]
    instances = [shell, shell.InteractiveTB, shell.SyntaxTB, shell.displayhook, shell.display_pub, shell.events]
    if kernel is not None:
        instances += [kernel, kernel.session]
    instance_dicts = [(obj, dict(obj.__dict__)) for obj in instances]
    shell_lists = {name: list(getattr(shell, name)) for name in
                   ("input_transformers_cleanup", "input_transformers_post", "ast_transformers")}
    callbacks = {event: list(funcs) for event, funcs in shell.events.callbacks.items()}
    handlers = dict(kernel.shell_handlers) if kernel is not None else {}
    system = {name: getattr(sys, name) for name in ("excepthook", "displayhook", "stdout", "stderr")}
    pinned = {}
    pinned_modules = {}

    def restore_dict(target, snapshot, strict):
        current = target.__dict__
        for key, value in snapshot.items():
            if current.get(key, snapshot) is not value:
                try:
                    setattr(target, key, value)
                except (AttributeError, TypeError):
                    pass
        if strict:
            for key in [k for k in current if k not in snapshot]:
                try:
                    delattr(target, key)
                except (AttributeError, TypeError):
                    pass

    def restore():
        sys.settrace(None)
        sys.setprofile(None)
        for name, value in system.items():
            setattr(sys, name, value)
        for module, snapshot in module_dicts.values():
            restore_dict(module, snapshot, id(module) in strict_modules)
        for module, snapshot in pinned_modules.values():
            restore_dict(module, snapshot, False)
        for cls, snapshot in class_dicts:
            restore_dict(cls, snapshot, True)
        for obj, snapshot in instance_dicts:  # methods patched on the instance
            for key in [k for k in obj.__dict__ if k not in snapshot and callable(obj.__dict__[k])]:
                del obj.__dict__[key]
            for key, value in snapshot.items():
                if callable(value) and obj.__dict__.get(key) is not value:
                    obj.__dict__[key] = value
        for function, code, defaults, kwdefaults in function_parts:
            function.__code__, function.__defaults__, function.__kwdefaults__ = code, defaults, kwdefaults
        shell.custom_exceptions = ()
        for name, items in shell_lists.items():
            getattr(shell, name)[:] = items
        shell.events.callbacks.clear()
        shell.events.callbacks.update({event: list(funcs) for event, funcs in callbacks.items()})
        if kernel is not None:
            kernel.shell_handlers.clear()
            kernel.shell_handlers.update(handlers)
        namespace = shell.user_ns
        for name, value in module_dicts[id(builtins)][1].items():  # a global that hides a builtin
            if not name.startswith("__") and name in namespace and namespace[name] is not value:
                del namespace[name]
        for name, (value, parts) in pinned.items():
            namespace[name] = value
            if parts is not None:
                value.__code__, value.__defaults__, value.__kwdefaults__ = parts

    def pin(names):
        namespace = shell.user_ns
        for name in names:
            if name not in namespace:
                continue
            value = namespace[name]
            parts = (value.__code__, value.__defaults__, value.__kwdefaults__) if isinstance(value, types.FunctionType) else None
            pinned[name] = (value, parts)
            if isinstance(value, types.ModuleType) and id(value) not in module_dicts and id(value) not in pinned_modules:
                pinned_modules[id(value)] = (value, dict(value.__dict__))
            if isinstance(value, type):
                try:
                    class_dicts.append((value, dict(value.__dict__)))
                except TypeError:
                    pass

    guard = types.SimpleNamespace(restore=restore, pin=pin)
    shell.user_ns[handle_name] = guard
    shell.user_ns_hidden[handle_name] = guard
    return guard
