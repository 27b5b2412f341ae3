"""prunability: a Snakemake reproduction of Kuhn et al. (2021), "Robustness to
Pruning Predicts Generalization in Deep Neural Networks".

Library modules, one per stage of the workflow: ``data`` (prepare_data),
``train`` (train_model), ``measures`` (measure_<family>), ``table``
(collect_table), ``analysis`` (statistics, a module per idea), ``figures``
(figures, a module per report section); ``pruning`` holds the masks and the prunability search, ``models`` the
architectures, ``io`` atomic writes.
"""

__version__ = "0.1.0"
