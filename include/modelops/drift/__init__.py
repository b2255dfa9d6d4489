"""Drift of live traffic against the training baseline, one module per concern.

``streaming`` folds live data into a bounded profile; ``detect`` compares it with the baseline
(``compare``, ``drift_dataframe``); each statistical method is its own module (``ks``,
``wasserstein``, ``chi_square``, ``jensen_shannon``, ``psi``) registered in ``stattest``;
``multiple_testing`` corrects p-values across features. Nothing is imported here: callers name
the module they use, so importing the package stays free.
"""
