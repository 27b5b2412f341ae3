# A finished study as a versioned, self-contained archive (not part of rule all):
#   snakemake --cores 1 export --configfile <preset>
# Library: prunability.export; docs/export.md.

from prunability.export import study_inputs


rule export:
    """results/<study>/export/<study>-<version>.tar.gz: the table, measure descriptions, every model's checkpoints, summary and measures, the split as hashes, the resolved configuration, a DATASHEET.md and a MANIFEST. A study that is not finished stops the run before any job, naming what is missing."""
    input:
        unpack(
            lambda wildcards: study_inputs(
                RESULTS, config["study"], CELLS, config["measures"]["families"]
            )
        ),
    output:
        # a folder: the archive's name holds its content hash, known once it is written
        export=directory(f"{RESULTS}/export"),
    log:
        f"{LOGS}/export.log",
    conda:
        "../../envs/torch.yaml"
    resources:
        mem_mb=job_mem_mb,
        runtime=lambda wildcards, attempt: attempt * (10 + len(CELLS) // 10),
    params:
        study=config["study"],
        config=config,
        cells=CELLS,
        families=config["measures"]["families"],
    script:
        "../scripts/export.py"
