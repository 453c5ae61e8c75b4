"""LrcSSM: registry entries (:mod:`.experiments`) and task builders (:mod:`.tasks`: UEA,
PPG-DaLiA). Chapters ``reproductions/20``-``25``."""
