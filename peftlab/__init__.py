"""peftlab: the small helper library of the course *PEFT from Scratch*.

It holds what several notebooks share and what is not itself an exercise: the hardware report,
offline loaders for the real MiniLM model and the shipped data sets, real model configurations
built on the ``meta`` device, a training loop with a progress bar, and the checks that test cells
use to speak to students. Exercise solutions never live here.
"""

__version__ = "0.1.0"
