# The paper-style report from every metrics.json; closes the MLflow pipeline run.


rule report:
    input:
        cfg=CFG,
        track=TRACK,
        metrics=expand(f"{R}/eval/{{task}}/{{system}}/metrics.json", task=TASKS, system=SYSTEMS),
    output:
        html=f"{R}/report/index.html",
        md=f"{R}/report/tables.md",
        tex=f"{R}/report/tables.tex",
    conda:
        ENV
    log:
        "logs/report.log",
    params:
        out=subpath(output.html, parent=True),
    shell:
        "speechrl report --config {input.cfg} --tracking {input.track} --out {params.out} "
        "{input.metrics} > {log} 2>&1"
