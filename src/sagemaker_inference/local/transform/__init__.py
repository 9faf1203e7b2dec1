"""``sagemaker-inference transform``: a batch-transform job over local files, with SageMaker's rules.

Modules: ``config`` (the job's settings and their precedence), ``records`` (reading, decompressing and splitting
input objects as streams; packing records into requests), ``jsonpath`` (the filter subset SageMaker documents),
``dataprocessing`` (input filter, join with the input, output filter), ``job`` (requests in order with bounded
concurrency, assembly, resume), ``progress``, ``container`` (our server started for the job), ``cli``.
"""
