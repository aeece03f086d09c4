"""Analyses of prepared data and trained runs, and the report that shows them.

The TIN paper's semantic-temporal correlation analysis (Zhou et al., WWW'24 Companion, §2, §4.3,
App. A.2-A.3):

* :mod:`~chronorec.analysis.ctc` — ground truth: binary mutual information per (target category,
  history category, position), Eq. (1), by one bincount over combined keys;
* :mod:`~chronorec.analysis.learned` — a model's learned correlation exp(z) * ||r||, Eq. (4)-(5)
  and Table 2, from ``CTRModel.explain``;
* :mod:`~chronorec.analysis.agreement` — Pearson r per target category and the Fig. 6 bins;
* :mod:`~chronorec.analysis.correlation` — the whole analysis with its files and figures
  (:mod:`~chronorec.analysis.plots`, :mod:`~chronorec.analysis.extras`);
* :mod:`~chronorec.analysis.report` — ``chronorec report``: one self-contained HTML page.

Analyses read only prepared folders (:mod:`~chronorec.analysis.prepared`) and run folders
(:mod:`~chronorec.analysis.runs`).
"""
