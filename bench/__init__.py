"""Instructors' benchmarks of the course's methods (not exported by ``make public``)."""
