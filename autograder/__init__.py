"""The course's grading pipeline around nbgrader: release, grade, feedback, public edition, leak scan."""
