"""Registry of the datasets: release layout, official archives, checksums, fixture writers.

Used by ``liquidssm data status|download|prepare|fixtures`` (:mod:`liquidssm.data.cli`) and by
the loaders' error messages; chapter reproductions/01_lra_synthetic_data.

Checksums: we record a published checksum only where we know it for certain (CIFAR-10's MD5 from
its web page). Every other archive has ``None`` and is reported as "unverified" -- fill in the
SHA-256 after a trusted download (``liquidssm data prepare`` prints it).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from liquidssm.data import aan, bidmc, cifar, imdb, listops, pathfinder, speech_commands, uea
from liquidssm.data._common import Archive, data_root

LRA = Archive(
    url="https://storage.googleapis.com/long-range-arena/lra_release.gz",
    filename="lra_release.gz",
    note="gzipped tar (about 7.7 GB) holding listops-1000/, tsv_data/ and pathfinder{32,64,128,256}/",
)


@dataclass(frozen=True)
class DatasetSpec:
    """One dataset: where it lives under the data root and how to obtain it."""

    name: str
    subdir: str
    layout: str
    required: tuple[str, ...]
    archives: tuple[Archive, ...]
    marker: str  # file or directory name located inside the unpacked archive(s)
    target: str  # where the marker's parent (or the marker dir itself) goes, relative to root
    move: str = "dir"  # "dir": move the marker directory; "parent": its parent's contents; "files"
    fixture: Callable[..., Path] | None = None
    papers: str = ""
    extra: dict = field(default_factory=dict)

    def missing(self, root: str | os.PathLike[str] | None = None) -> list[Path]:
        base = data_root(root)
        return [base / r for r in self.required if not (base / r).exists()]


def _spec(**kw: object) -> DatasetSpec:
    return DatasetSpec(**kw)  # type: ignore[arg-type]


DATASETS: dict[str, DatasetSpec] = {s.name: s for s in [
    _spec(name="listops", subdir="listops", papers="Liquid-S4 Table 1 (ListOps)",
          layout="  listops/basic_{train,val,test}.tsv   (TSV, header Source<TAB>Target)",
          required=tuple(f"listops/basic_{s}.tsv" for s in ("train", "val", "test")),
          archives=(LRA,), marker="basic_train.tsv", target="listops", move="parent",
          fixture=listops.write_fixture),
    _spec(name="imdb", subdir="imdb", papers="Liquid-S4 Table 1 (IMDB / Text)",
          layout="  imdb/aclImdb/{train,test}/{pos,neg}/<id>_<rating>.txt",
          required=tuple(f"imdb/aclImdb/{s}/{p}" for s in ("train", "test") for p in ("pos", "neg")),
          archives=(Archive("https://ai.stanford.edu/~amaas/data/sentiment/aclImdb_v1.tar.gz",
                            "aclImdb_v1.tar.gz"),),
          marker="aclImdb", target="imdb/aclImdb", fixture=imdb.write_fixture),
    _spec(name="aan", subdir="aan", papers="Liquid-S4 Table 1 (AAN / Retrieval)",
          layout="  aan/new_aan_pairs.{train,eval,test}.tsv   (no header; label id1 id2 text1 text2)",
          required=tuple(f"aan/new_aan_pairs.{s}.tsv" for s in ("train", "eval", "test")),
          archives=(LRA,), marker="new_aan_pairs.train.tsv", target="aan", move="parent",
          fixture=aan.write_fixture),
    _spec(name="cifar10", subdir=cifar.SUBDIR, papers="Liquid-S4 Table 1 (Image) and Table 3 (sCIFAR)",
          layout="  cifar/cifar-10-batches-bin/{data_batch_1..5,test_batch}.bin   (3073-byte records)",
          required=tuple(f"{cifar.SUBDIR}/{f}" for f in cifar.TRAIN_FILES + cifar.TEST_FILES),
          archives=(Archive("https://www.cs.toronto.edu/~kriz/cifar-10-binary.tar.gz",
                            "cifar-10-binary.tar.gz", md5="c32a1d4ab5d03f1284b67883e8d87530",
                            note="MD5 published on the CIFAR-10 page"),),
          marker="cifar-10-batches-bin", target=cifar.SUBDIR, fixture=cifar.write_fixture),
    _spec(name="pathfinder32", subdir="pathfinder/pathfinder32", papers="Liquid-S4 Table 1 (Pathfinder)",
          layout="  pathfinder/pathfinder32/curv_contour_length_14/imgs/<k>/sample_<i>.png\n"
                 "  pathfinder/pathfinder32/curv_contour_length_14/metadata/<k>.npy   (text)",
          required=("pathfinder/pathfinder32/curv_contour_length_14/metadata",
                    "pathfinder/pathfinder32/curv_contour_length_14/imgs"),
          archives=(LRA,), marker="pathfinder32", target="pathfinder/pathfinder32",
          fixture=lambda root, **kw: pathfinder.write_fixture(root, resolution=32, **kw)),
    _spec(name="pathx", subdir="pathfinder/pathfinder128", papers="Liquid-S4 Table 1 (Path-X)",
          layout="  pathfinder/pathfinder128/curv_contour_length_14/imgs/<k>/sample_<i>.png\n"
                 "  pathfinder/pathfinder128/curv_contour_length_14/metadata/<k>.npy   (text)",
          required=("pathfinder/pathfinder128/curv_contour_length_14/metadata",
                    "pathfinder/pathfinder128/curv_contour_length_14/imgs"),
          archives=(LRA,), marker="pathfinder128", target="pathfinder/pathfinder128",
          fixture=lambda root, **kw: pathfinder.write_fixture(root, resolution=128, **kw)),
    _spec(name="speech_commands", subdir="speech_commands",
          papers="Liquid-S4 Table 4 (SC35) and Table S2 (SC10)",
          layout="  speech_commands/<word>/<speaker>_nohash_<n>.wav   (35 words, 16 kHz PCM)\n"
                 "  speech_commands/{validation_list,testing_list}.txt",
          required=("speech_commands/validation_list.txt", "speech_commands/testing_list.txt",
                    *(f"speech_commands/{w}" for w in speech_commands.ALL_CLASSES)),
          archives=(Archive("http://download.tensorflow.org/data/speech_commands_v0.02.tar.gz",
                            "speech_commands_v0.02.tar.gz", note="tar without a top directory"),),
          marker="validation_list.txt", target="speech_commands", move="parent",
          fixture=speech_commands.write_fixture),
    _spec(name="bidmc", subdir="bidmc", papers="Liquid-S4 Table 2",
          layout="  bidmc/BIDMC32{HR,RR,SpO2}_{TRAIN,TEST}.ts   (Monash TSER .ts text files)",
          required=tuple(f"bidmc/BIDMC32{t}_{s}.ts" for t in bidmc.TARGETS for s in ("TRAIN", "TEST")),
          archives=tuple(Archive(f"https://zenodo.org/records/{rec}/files/BIDMC32{t}.zip",
                                 f"BIDMC32{t}.zip", note="Zenodo record; URL pattern unverified")
                         for t, rec in (("HR", 4001456), ("RR", 4001463), ("SpO2", 4001464))),
          marker="BIDMC32HR_TRAIN.ts", target="bidmc", move="files", fixture=bidmc.write_fixture),
    _spec(name="uea", subdir=uea.SUBDIR, papers="LrcSSM Tables 1, 2, 8-11",
          layout="  uea/Multivariate_ts/<Name>/<Name>_{TRAIN,TEST}.ts   for Name in "
                 + ", ".join(uea.DATASETS.values()),
          required=tuple(f"{uea.SUBDIR}/{n}/{n}_{s}.ts" for n in uea.DATASETS.values()
                         for s in ("TRAIN", "TEST")),
          archives=(Archive("https://www.timeseriesclassification.com/aeon-toolkit/Archives/"
                            "Multivariate2018_ts.zip", "Multivariate2018_ts.zip",
                            note="UEA archive; URL unverified"),),
          marker="Multivariate_ts", target=uea.SUBDIR, fixture=uea.write_fixture),
    _spec(name="lrcssm_splits", subdir="lrcssm_splits",
          papers="LrcSSM Table 1 (the paper's exact splits)",
          layout="  lrcssm_splits/<Dataset>/<seed>/{X,y}_{train,val,test}.pkl   (pickled jax.Array)\n"
                 "  copied from experiments/lrc_ssm/ of github.com/MoniFarsang/LrcSSM "
                 "(no MotorImagery there)",
          required=tuple(f"lrcssm_splits/{d}/{s}/X_train.pkl"
                         for d in ("Heartbeat", "SelfRegulationSCP1", "SelfRegulationSCP2",
                                   "EthanolConcentration", "Eigenworms") for s in uea.SEEDS),
          archives=(), marker="Eigenworms", target="lrcssm_splits", move="parent",
          fixture=lambda root, **kw: uea.write_lrcssm_split_fixture(root, **kw)),
]}


def ensure_fixtures(names: list[str] | tuple[str, ...] | None = None,
                    root: str | os.PathLike[str] | None = None) -> Path:
    """Write the tiny fixture datasets ``names`` (all by default) under ``root`` and return it.

    For smoke profiles of the reproduction chapters: ``root`` defaults to a fresh temporary
    directory; datasets already present there are left alone. Pass the result as ``root=`` to
    the loaders (or set ``LIQUIDSSM_DATA``).
    """
    import tempfile

    out = Path(root) if root is not None else Path(tempfile.mkdtemp(prefix="liquidssm_fixtures_"))
    for name in names if names is not None else list(DATASETS):
        if name not in DATASETS:
            raise KeyError(f"unknown dataset {name!r}; valid names: {', '.join(DATASETS)}")
        spec = DATASETS[name]
        if spec.missing(out) and spec.fixture is not None:
            spec.fixture(out)
    return out
