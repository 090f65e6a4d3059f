rule evaluate:
    """No skill vs skill in context vs adapter, on the held-out split and evals.json."""
    input:
        spec=spec("evaluate"),
        skill=PARSED_SKILL,
        dataset=DATASET,
        model=MODEL,
        adapter=ADAPTER,
    output:
        report=EVAL_REPORT,
        markdown=report(EVAL_MARKDOWN, caption="../report/eval.rst", category="Skills",
                        subcategory="{skill}"),
        manifest=manifest("evaluate"),
    threads: MODEL_THREADS
    benchmark:
        benchmark_of("evaluate")
    resources:
        **resources_of("evaluate"),
        runtime=60,
    params:
        s2l=S2L,
        store=STORE,
    log:
        log_of("evaluate"),
    shell:
        "{params.s2l} evaluate --spec {input.spec} --skill {input.skill} --dataset {input.dataset}"
        " --model {input.model} --adapter {input.adapter} --out {output.report} --markdown {output.markdown}"
        " --manifest {output.manifest}"
        " {params.store} --threads {threads} --log {log}"
