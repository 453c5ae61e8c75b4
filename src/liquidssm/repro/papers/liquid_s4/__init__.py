"""Liquid-S4: registry entries (:mod:`.experiments`), task builders (:mod:`.tasks`) and the frames
only its chapters show (:mod:`.frames`: Table S1 beside the released configs, Table 4's parameter
counts, Figure 1's sweep). Chapters ``reproductions/10``-``19``."""
