# Evaluation of every system (base, SFT, control, each RL system) on each task's test split: one job per task x
# system evaluates all its seeds in one process (speechrl evaluate --seeds), each seed into its own folder.


rule evaluate:
    input:
        cfg=f"{CFG_DIR}/{{task}}/evaluate.yaml",
        track=ancient(TRACK),  # bookkeeping: a new pipeline run reruns nothing
        data=f"{R}/data/{{task}}",
        tokens=tokens,
        models=system_models,
    output:
        metrics=expand(f"{R}/eval/{{task}}/{{system}}/s{{seed}}/metrics.json", seed=SEEDS, allow_missing=True),
        samples=expand(f"{R}/eval/{{task}}/{{system}}/s{{seed}}/samples.jsonl", seed=SEEDS, allow_missing=True),
    conda:
        ENV
    log:
        "logs/evaluate/{task}/{system}.log",
    localrule: job_local("evaluate")
    priority: job_priority("evaluate")
    threads: job_threads("evaluate")
    resources:
        **job_resources("evaluate"),
    params:
        launch=launcher("evaluate"),
        tokens=tokens_arg,
        seeds=" ".join(map(str, SEEDS)),
        model=system_model_arg,
        out=eval_out_arg,
    shell:
        keep_log(
            "{params.launch}speechrl evaluate --config {input.cfg} --tracking {input.track} --task {wildcards.task} "
            "--system {wildcards.system} --seeds {params.seeds} --data {input.data} {params.tokens} "
            "--model '{params.model}' --out '{params.out}' >> {log} 2>&1"
        )
