# Stage 3: the measures, one rule per family, one job and one JSON per model.
# Library: prunability.measures (one module per family). Each rule's params hold
# only its family's settings, so changing one reruns that family's jobs only.


rule measure_pruning:
    """Prunability, random-mask prunability and the kept count kappa, with the loss-versus-kept-fraction curves."""
    input:
        split=rules.prepare_data.output.split,
        init=rules.train_model.output.init,
        final=rules.train_model.output.final,
    output:
        f"{MEASURES}/{CELL}/pruning.json",
    log:
        f"{LOGS}/measure_pruning/{CELL}.log",
    benchmark:
        f"{BENCHMARKS}/measure_pruning/{CELL}.tsv"
    conda:
        "../../envs/torch.yaml"
    threads: 1
    resources:
        gpu=config["resources"]["gpus_per_job"],
    params:
        family="pruning",
        settings=config["measures"]["pruning"],
        hp=cell_hp,
        model=config["model"],
        device=config["device"],
    script:
        "../scripts/measure.py"


rule measure_norms:
    """Parameter count, norms, distance from initialisation, path norm and inverse margin (Jiang et al.)."""
    input:
        split=rules.prepare_data.output.split,
        init=rules.train_model.output.init,
        final=rules.train_model.output.final,
    output:
        f"{MEASURES}/{CELL}/norms.json",
    log:
        f"{LOGS}/measure_norms/{CELL}.log",
    benchmark:
        f"{BENCHMARKS}/measure_norms/{CELL}.tsv"
    conda:
        "../../envs/torch.yaml"
    threads: 1
    resources:
        gpu=config["resources"]["gpus_per_job"],
    params:
        family="norms",
        settings=config["measures"]["norms"],
        hp=cell_hp,
        model=config["model"],
        device=config["device"],
    script:
        "../scripts/measure.py"
