# Stage 2: one model per grid cell, trained to the cross-entropy target.
# Library: prunability.train


rule train_model:
    """Train one cell; resumes from results/<study>/checkpoints/<cell>/ after a kill."""
    input:
        split=rules.prepare_data.output.split,
    output:
        init=f"{MODELS}/{CELL}/init.pt",
        final=f"{MODELS}/{CELL}/final.pt",
        summary=f"{MODELS}/{CELL}/train.json",
        curve=f"{MODELS}/{CELL}/curve.csv",
    log:
        f"{LOGS}/train_model/{CELL}.log",
    benchmark:
        f"{BENCHMARKS}/train_model/{CELL}.tsv"
    conda:
        "../../envs/torch.yaml"
    threads: 1
    resources:
        gpu=config["resources"]["gpus_per_job"],
    params:
        hp=cell_hp,
        model=config["model"],
        train=config["train"],
        device=config["device"],
        checkpoint=f"{RESULTS}/checkpoints/{CELL}/in_progress.pt",
    script:
        "../scripts/train_model.py"
