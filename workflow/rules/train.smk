# Stage 2: one model per grid cell, trained to the cross-entropy target.
# Library: prunability.train


rule train_model:
    """Train the cells of one job, one after the other; each resumes from results/<study>/checkpoints/<cell>/ after a kill."""
    input:
        split=rules.prepare_data.output.split,
    output:
        init=job_files(f"{MODELS}/{{cell}}/init.pt"),
        final=job_files(f"{MODELS}/{{cell}}/final.pt"),
        summary=job_files(f"{MODELS}/{{cell}}/train.json"),
        curve=job_files(f"{MODELS}/{{cell}}/curve.csv"),
    log:
        f"{LOGS}/train_model/{JOB}.log",
    benchmark:
        f"{BENCHMARKS}/train_model/{JOB}.tsv"
    group:
        "train_and_quick_measures"
    conda:
        "../../envs/torch.yaml"
    threads: 1
    resources:
        gpu=config["resources"]["gpus_per_job"],
        mem_mb=job_mem_mb,
        runtime=job_runtime("train"),
    params:
        # Each cell's hyperparameters are read from its output path, so these params
        # (and the rerun trigger on them) do not depend on how cells are grouped.
        hyperparameters=config["hyperparameters"],
        model=config["model"],
        # what is trained; when to checkpoint (train.checkpoint_*) changes no result, so
        # the script reads it from the config and changing it reruns nothing
        train={
            k: v for k, v in config["train"].items() if not k.startswith("checkpoint_")
        },
        device=config["device"],
        # the models folder, above the cell's one folder per grid axis
        models=lambda wildcards, output: str(
            Path(output.summary[0]).parents[len(config["grid"])]
        ),
        checkpoints=f"{RESULTS}/checkpoints",
    script:
        "../scripts/train_model.py"
