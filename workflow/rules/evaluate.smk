# Evaluation of every system (base, SFT, control, each RL system) and seed on each task's test split.


rule evaluate:
    input:
        cfg=f"{CFG_DIR}/{{task}}/evaluate.yaml",
        track=ancient(TRACK),  # bookkeeping: a new pipeline run reruns nothing
        data=f"{R}/data/{{task}}",
        tokens=tokens,
        model=system_model,
    output:
        metrics=f"{R}/eval/{{task}}/{{system}}/s{{seed}}/metrics.json",
        samples=f"{R}/eval/{{task}}/{{system}}/s{{seed}}/samples.jsonl",
    conda:
        ENV
    log:
        "logs/evaluate/{task}/{system}/s{seed}.log",
    localrule: job_local("evaluate")
    priority: job_priority("evaluate")
    threads: job_threads("evaluate")
    resources:
        **job_resources("evaluate"),
    params:
        launch=launcher("evaluate"),
        tokens=tokens_arg,
        out=subpath(output.metrics, parent=True),
    shell:
        keep_log(
            "{params.launch}speechrl evaluate --config {input.cfg} --tracking {input.track} --task {wildcards.task} --seed {wildcards.seed} "
            "--system {wildcards.system} --data {input.data} {params.tokens} --model {input.model}/model --out {params.out} >> {log} 2>&1"
        )
