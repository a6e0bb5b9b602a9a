# The paper-style report from every metrics.json; closes the MLflow pipeline run.


rule report:
    input:
        cfg=CFG,
        track=TRACK,
        metrics=all_metrics(),
        runs=all_rl_runs(),
    output:
        html=f"{R}/report/index.html",
        md=f"{R}/report/tables.md",
        tex=f"{R}/report/tables.tex",
    conda:
        ENV
    log:
        "logs/report.log",
    localrule: job_local("report")
    priority: job_priority("report")
    threads: job_threads("report")
    resources:
        **job_resources("report"),
    params:
        launch=launcher("report"),
        out=subpath(output.html, parent=True),
        curves=lambda wildcards, input: " ".join(f"{r}/summary.json" for r in input.runs),
    shell:
        keep_log(
            "{params.launch}speechrl report --config {input.cfg} --tracking {input.track} --out {params.out} "
            "--curves {params.curves} --metrics {input.metrics} >> {log} 2>&1"
        )
