"""Statistics of complexity measures against generalization, one module per idea.

``ranking``: Kendall's tau_a and tau_b, Jiang et al.'s granulated Kendall psi_i and
Psi, the summary tables of every measure and target, and the tolerance sensitivity
of prunability; ``bootstrap``: the one resampling of models every interval uses
(counts, weighted tau, percentile intervals) and the intervals of tau_a and Psi;
``information``: mutual information between two measures' predictions and
conditional mutual information; ``replicates``: tau and Psi within each seed
replicate, their spread and the seed oracle; ``completeness``: the grid cells the
statistics lack and the partial-grid flags; ``prune_potential``: the prune potential
per model and distribution and its summary. ``rows`` holds the column names and the
row filter (``usable``) they all share, ``_checks`` their input checks.
"""
