"""peftlab: the small helper library of the course *PEFT from Scratch*.

It holds what several notebooks share and what is not itself an exercise: the hardware report,
offline loaders for the real MiniLM model and the shipped data sets, real model configurations
built on the ``meta`` device, a training loop with a progress bar, and the checks that test cells
use to speak to students. Exercise solutions never live here.
"""

import os

# Before torch is imported (the notebooks and pages import peftlab first): PyTorch's OpenMP threads
# spin while they wait for work, and on a busy laptop or a shared JupyterHub that spinning steals the
# cores from the work itself (a capstone fine-tune measured 306 s instead of 30 s on 2 busy cores).
# The tokenizers' own thread pool is switched off for the same reason, and to silence its warning
# after a fork. A value the user set wins; `make` sets the same ones.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

__version__ = "0.1.0"
