# Evaluation of every system (base, SFT, each RL algorithm) on each task's test split.


rule evaluate:
    input:
        cfg=CFG,
        track=TRACK,
        data=f"{R}/data/{{task}}",
        model=system_model,
    output:
        metrics=f"{R}/eval/{{task}}/{{system}}/metrics.json",
        samples=f"{R}/eval/{{task}}/{{system}}/samples.jsonl",
    conda:
        ENV
    log:
        "logs/evaluate/{task}/{system}.log",
    threads: config["threads"]
    params:
        out=subpath(output.metrics, parent=True),
    shell:
        "speechrl evaluate --config {input.cfg} --tracking {input.track} --task {wildcards.task} "
        "--system {wildcards.system} --data {input.data} --model {input.model}/model --out {params.out} > {log} 2>&1"
