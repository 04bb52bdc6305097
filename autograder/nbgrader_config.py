# nbgrader settings shared by every command of the course (release, autograde, feedback).
# autograder/course.py copies it into each scratch course folder (nbgrader reads ./nbgrader_config.py)
# and passes the course root on the command line; the repository is on PYTHONPATH for the
# preprocessors named below.

c = get_config()  # noqa: F821  (provided by traitlets when it loads this file)

c.CourseDirectory.course_id = "peft-from-scratch"
c.CourseDirectory.source_directory = "source"
c.CourseDirectory.release_directory = "release"

# The stub that replaces each solution region in the student edition.
c.ClearSolutions.code_stub = {"python": "# YOUR CODE HERE\nraise NotImplementedError()"}
c.ClearSolutions.text_stub = "YOUR ANSWER HERE"

# Cells that train a model take longer than nbgrader's default 30 s; a notebook must still finish.
c.Execute.timeout = 300
c.Execute.interrupt_on_timeout = True

# Feedback shows scores and messages, never the hidden tests (their source or their tracebacks).
c.GenerateFeedback.preprocessors = [
    "nbgrader.preprocessors.GetGrades",
    "nbgrader.preprocessors.ClearHiddenTests",
    "autograder.feedback.ShortenTestTracebacks",
    "nbconvert.preprocessors.CSSHTMLHeaderPreprocessor",
]

# --- Integrity (autograder/sandbox.py, autograder/integrity.py) ---------------------------------
# Each student's kernel runs in bubblewrap with per-student limits; the grader restores the test
# machinery before every graded test cell and accepts a pass only from a test that ran to its end.
# `python -m autograder.grade --no-sandbox` passes --SandboxedKernelManager.isolate=False.
c.Autograde.autograde_preprocessors = [
    "autograder.integrity.GuardedExecute",
    "nbgrader.preprocessors.IgnorePattern",
    "nbconvert.preprocessors.ClearMetadataPreprocessor",
    "nbgrader.preprocessors.LimitOutput",
    "nbgrader.preprocessors.SaveAutoGrades",
    "nbgrader.preprocessors.AssignLatePenalties",
    "nbgrader.preprocessors.CheckCellMetadata",
]
c.GuardedExecute.kernel_manager_class = "autograder.sandbox.SandboxedKernelManager"
c.SandboxedKernelManager.memory_limit_gib = 6.0
c.SandboxedKernelManager.max_processes = 256
# Outputs may trail the reply on a loaded machine; nbclient's 4 s default then fails the whole student.
c.Execute.iopub_timeout = 30
