"""A finished study as a versioned, self-contained archive, and reading one back.

``export_study`` packs one study's population of trained models with their measures
into ``<study>-<version>.tar.gz``; ``StudyArchive`` (and ``load_model``) read a model,
the table and the split's description from that file alone, without the results
folder. docs/export.md is the user's page.

Layout: one top folder ``<study>-<version>/`` holding only regular files:

- ``DATASHEET.md``: written by ``datasheet``: what each column is, how the models were
  trained, how to load one;
- ``MANIFEST``: ``<sha256>  <path>`` of every other file (``sha256sum -c MANIFEST``
  checks them from inside the top folder);
- ``export.json``: the study, the version, the cells and families;
- ``config.yaml``: the resolved configuration (the schema's defaults filled in);
- ``table.csv``; ``measures.csv`` (name, family, orientation, equation, description,
  from the measure registry); ``columns.csv`` (every column of the table, described);
- ``split/split.json`` (source, classes, shape, normalisation statistics, the hash
  convention), ``split/train.csv`` and ``split/test.csv`` (index, label, SHA-256 of
  every image: the images themselves are not in the archive),
  ``split/label_noise.csv``;
- ``models/<cell>/`` ``init.pt``, ``final.pt`` (state_dicts), ``train.json``,
  ``curve.csv``; ``measures/<cell>/<family>.json``;
- ``platform.json`` where the study recorded one.

Version: ``<package version>+<content hash>``, the hash being the first 12 hex digits
of the SHA-256 of the MANIFEST lines of every file except the three that name the
version (DATASHEET.md, export.json, MANIFEST). The same study exported twice gets the
same version and the same bytes (fixed member order, times, owners and gzip header);
any changed file gives another version.

Nothing read from an archive runs code: checkpoints load with
``torch.load(..., weights_only=True)``; members must be regular files under the top
folder (no absolute paths, no ``..``, no links), each must match the MANIFEST, and
``extract`` uses tarfile's ``data`` filter.
"""

from .descriptions import GEN, IS, KUHN, TRAIN, column_descriptions, datasheet, measure_descriptions
from .layout import (
    DATASHEET,
    FORMAT,
    HASH_DIGITS,
    INFO,
    MANIFEST,
    MODEL_FILES,
    VERSIONED,
    ArchiveError,
    ExportError,
    content_version,
    manifest_lines,
)
from .reading import StudyArchive, extract, load_model
from .split import check_split, image_sha256, split_files
from .writing import StudyFiles, export_study, missing_files, study_inputs
