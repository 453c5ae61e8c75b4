"""The two papers as data: per paper its registry entries, task builders and paper-only frames.

:mod:`~liquidssm.repro.papers.liquid_s4` (Hasani et al., ICLR 2023) and
:mod:`~liquidssm.repro.papers.lrcssm` (Farsang et al., NeurIPS 2025). The stage modules of
:mod:`liquidssm.repro` collect them (:mod:`~liquidssm.repro.experiments`,
:mod:`~liquidssm.repro.tasks`); the engine (:mod:`~liquidssm.repro.train`) imports none of them.
"""
