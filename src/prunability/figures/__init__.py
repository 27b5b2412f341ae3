"""Figures of the report (seaborn on the Agg backend), each from the tidy tables; they
only draw. One module per report section:

- ``answer``: the answer's statistics (claims, tau intervals, granulated psi, CMI,
  prediction MI, tolerance sensitivity);
- ``measures``: the measures against the generalization gap and network size;
- ``pruning_curves``: the pruning curves of a spread of models and of every model;
- ``training``: training curves, the gap along each axis, measure costs;
- ``double_descent``, ``prune_potential``, ``stability``: the three optional studies;
- ``style``: the helpers and constants they share.

The statistics they draw are computed elsewhere (``prunability.analysis``; the prune
potential's frame and summary in ``analysis.prune_potential``).
"""

import matplotlib

matplotlib.use("Agg")
